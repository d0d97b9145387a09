"""Golden tests: a CSV file in, the schema and dialect the crawler must infer out."""

from __future__ import annotations

from collections.abc import Callable

from lakelet.crawler.csv import detect_encoding, quotes_at_boundaries
from lakelet.crawler.schema import Field, FileSchema

Infer = Callable[..., FileSchema]


def test_typed_columns_and_dialect(csv_schema: Infer) -> None:
    schema = csv_schema(
        "id,machine,price,sold_at,day,paid\n"
        "1,m1,1.50,2026-11-27 10:00:00,2026-11-27,true\n"
        "2,m2,2.00,2026-11-27 11:30:00,2026-11-27,false\n"
        "3,m3,0.75,2026-11-28 09:15:00,2026-11-28,true\n"
    )
    assert schema.fields == [
        Field("id", "BIGINT"),
        Field("machine", "VARCHAR"),
        Field("price", "DECIMAL(18,2)"),
        Field("sold_at", "TIMESTAMP"),
        Field("day", "DATE"),
        Field("paid", "BOOLEAN"),
    ]
    assert schema.dialect == {
        "delimiter": ",",
        "quote": '"',
        "escape": '"',
        "header": True,
        "skip": 0,
        "newline": "\\n",
        "comment": "",
        "types": {"sold_at": {"format": "iso8601"}, "day": {"format": "%Y-%m-%d"}},
    }
    assert schema.rows == 3


def test_semicolons_and_day_first_dates(csv_schema: Infer) -> None:
    schema = csv_schema("code;label;day\n1;x;27/11/2026\n2;y;28/11/2026\n3;z;01/12/2026\n")
    assert schema.fields == [
        Field("code", "BIGINT"),
        Field("label", "VARCHAR"),
        Field("day", "DATE"),
    ]
    assert schema.dialect["delimiter"] == ";"
    assert schema.dialect["types"]["day"] == {"format": "%d/%m/%Y"}


def test_headerless_tabs(csv_schema: Infer) -> None:
    schema = csv_schema("1\tx\t2.5\n2\ty\t3.5\n3\tz\t4.25\n", name="data.tsv")
    assert schema.fields == [
        Field("col_0", "BIGINT"),
        Field("col_1", "VARCHAR"),
        Field("col_2", "DECIMAL(18,2)"),
    ]
    assert schema.dialect["header"] is False
    assert schema.dialect["delimiter"] == "\t"


def test_quoted_fields(csv_schema: Infer) -> None:
    schema = csv_schema('id,name,note\n1,"Smith, J","say ""hi"""\n2,Doe,plain\n')
    assert schema.fields == [
        Field("id", "BIGINT"),
        Field("name", "VARCHAR"),
        Field("note", "VARCHAR"),
    ]
    assert (schema.dialect["quote"], schema.dialect["escape"]) == ('"', '"')


def test_a_few_bad_values_keep_the_majority_type(csv_schema: Infer) -> None:
    good = "".join(f"{i},m{i},{i}.25\n" for i in range(150))
    schema = csv_schema("id,machine,price\n" + good + "150,m150,abc\n")
    assert schema.fields == [
        Field("id", "BIGINT"),
        Field("machine", "VARCHAR"),
        Field("price", "DECIMAL(18,2)"),
    ]


def test_null_tokens_do_not_make_a_column_text(csv_schema: Infer) -> None:
    rows = "".join(f"{i},{i if i % 2 else 'n/a'}\n" for i in range(100))
    schema = csv_schema("id,reading\n" + rows)
    assert schema.fields == [Field("id", "BIGINT"), Field("reading", "BIGINT")]
    assert schema.dialect["types"]["reading"] == {"nulls": ["n/a"]}


def test_mostly_text_stays_varchar(csv_schema: Infer) -> None:
    rows = "".join(f"{i},{i if i % 2 else 'high'}\n" for i in range(100))
    schema = csv_schema("id,reading\n" + rows)
    assert schema.fields == [Field("id", "BIGINT"), Field("reading", "VARCHAR")]


def test_integers_with_a_few_decimals_become_exact_decimals(csv_schema: Infer) -> None:
    rows = "".join(f"{i},{i}\n" for i in range(100)) + "100,2.5\n101,3.5\n"
    schema = csv_schema("id,qty\n" + rows)
    assert schema.fields == [Field("id", "BIGINT"), Field("qty", "DECIMAL(18,1)")]


def test_currency_and_percent_are_numbers(csv_schema: Infer) -> None:
    schema = csv_schema("item,amount,share\na,$74.69,12.5%\nb,$1.00,7%\nc,-$5.25,0.5%\n")
    assert schema.fields == [
        Field("item", "VARCHAR"),
        Field("amount", "DECIMAL(18,2)"),
        Field("share", "DECIMAL(18,1)"),
    ]
    assert schema.dialect["types"]["amount"] == {"format": "currency", "currency": "$"}
    assert schema.dialect["types"]["share"] == {"format": "percent"}


def test_header_only_file_has_untyped_columns(csv_schema: Infer) -> None:
    schema = csv_schema("id,machine,price\n")
    assert schema.fields == [Field("id", None), Field("machine", None), Field("price", None)]
    assert schema.rows == 0


def test_empty_column_is_untyped(csv_schema: Infer) -> None:
    schema = csv_schema("id,note\n1,\n2,\n")
    assert schema.fields == [Field("id", "BIGINT"), Field("note", None)]


def test_values_of_megabytes_are_sampled(csv_schema: Infer) -> None:
    big = "x" * 1_500_000  # longer than a small read buffer holds
    schema = csv_schema(f"id,blob\n1,{big}\n2,y\n3,{big}\n")
    assert schema.fields == [Field("id", "BIGINT"), Field("blob", "VARCHAR")]
    assert schema.rows == 3


def test_latin1_file(csv_schema: Infer) -> None:
    schema = csv_schema(b"id,city\n1,K\xf6ln\n2,M\xfcnchen\n")
    assert schema.dialect["encoding"] == "latin-1"
    assert schema.fields == [Field("id", "BIGINT"), Field("city", "VARCHAR")]


def test_unterminated_quote_still_means_quoting(csv_schema: Infer) -> None:
    good = "".join(f"{i},m{i},{i}.5\n" for i in range(30))
    schema = csv_schema("id,machine,price\n" + good + '30,"m30,1.5\n31,m31,2.5\n')
    assert schema.dialect["delimiter"] == ","
    assert (schema.dialect["quote"], schema.dialect["escape"]) == ('"', '"')
    assert [f.name for f in schema.fields] == ["id", "machine", "price"]


def test_inch_marks_are_not_quotes(csv_schema: Infer) -> None:
    # A " inside an unquoted field is text under RFC 4180 quoting (DuckDB agrees).
    schema = csv_schema('id,size\n1,5" screen\n2,7" screen\n3,9" screen\n')
    assert (schema.dialect["quote"], schema.dialect["header"]) == ('"', True)
    assert schema.fields == [Field("id", "BIGINT"), Field("size", "VARCHAR")]


def test_quotes_at_boundaries() -> None:
    assert quotes_at_boundaries('1,"a,b"\n2,c\n', ",")
    assert quotes_at_boundaries('1,"a\n', ",")
    assert not quotes_at_boundaries('1,5" screen\n', ",")
    assert not quotes_at_boundaries("1,a\n", ",")


def test_detect_encoding() -> None:
    assert detect_encoding("Köln".encode()) is None
    assert detect_encoding("Köln".encode("latin-1")) == "latin-1"
    assert detect_encoding("id".encode("utf-16")) == "utf-16"
    # a multi-byte character cut by the sample's end is still UTF-8
    assert detect_encoding("aö".encode()[:-1]) is None


def test_double_quote_escapes_itself_even_if_the_sample_never_does(csv_schema: Infer) -> None:
    schema = csv_schema('id,name\n1,"Smith, J"\n2,"Doe, A"\n')
    assert (schema.dialect["quote"], schema.dialect["escape"]) == ('"', '"')
