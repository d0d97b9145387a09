"""Golden files for every kind of mess: bytes in, the reader's decisions and rows out."""

from __future__ import annotations

import codecs

import pytest

from lakelet.crawler.messy.encoding import detect_encoding
from lakelet.crawler.messy.parse import Dialect
from lakelet.crawler.messy.reader import ReadResult, read_csv_bytes

CLEAN = [["1", "2024-01-05", "3.5", "red"], ["2", "2024-01-06", "4.25", "blue"]]
CLEAN += [["3", "2024-01-07", "5.0", "green"], ["4", "2024-01-08", "6.75", "black"]]
HEADER = ["id", "day", "price", "colour"]


def lines(rows: list[list[str]], delimiter: str = ",", newline: str = "\n") -> str:
    return "".join(delimiter.join(r) + newline for r in rows)


def read(text: str | bytes) -> ReadResult:
    return read_csv_bytes(text.encode() if isinstance(text, str) else text)


def only_table(result: ReadResult) -> tuple[list[str], list[list[str]]]:
    assert len(result.tables) == 1
    return result.tables[0].header, result.tables[0].rows


# --- encodings ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (codecs.BOM_UTF8 + "name\nKöln\n".encode(), "utf-8"),
        ("name\nKöln\n".encode(), "utf-8"),
        ("name\nKöln\n".encode("utf-16"), "utf-16-le"),
        ("name\nKöln\n".encode("utf-16-le"), "utf-16-le"),
        ("name\nKöln\n".encode("utf-16-be"), "utf-16-be"),
        ("name\nKöln€\n".encode("cp1252"), "cp1252"),
        (b"name\nK\xf6ln\x81\n", "latin-1"),
    ],
)
def test_encodings(data: bytes, encoding: str) -> None:
    assert detect_encoding(data).name == encoding
    header, rows = only_table(read(data))
    assert header == ["name"]
    assert rows[0][0].startswith("Köln") or rows[0][0] == "K\xf6ln\x81"


def test_bom_is_not_part_of_the_first_name() -> None:
    header, _ = only_table(read(codecs.BOM_UTF8 + lines([HEADER, *CLEAN]).encode()))
    assert header[0] == "id"


# --- dialects ----------------------------------------------------------------------


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|", ", "])
def test_any_delimiter(delimiter: str) -> None:
    result = read(lines([HEADER, *CLEAN], delimiter))
    assert result.dialect.delimiter == delimiter
    assert only_table(result) == (HEADER, CLEAN)


def test_single_quote_character() -> None:
    text = "id,name,qty\n1,'Smith, J',2\n2,'Doe, A',3\n3,'Roe, B',4\n"
    result = read(text)
    assert result.dialect == Dialect(",", "'", "")
    assert only_table(result)[1] == [
        ["1", "Smith, J", "2"],
        ["2", "Doe, A", "3"],
        ["3", "Roe, B", "4"],
    ]


def test_backslash_escape() -> None:
    text = 'id,size,qty\n1,"5\\" screen, wide",2\n2,"7\\" screen, tall",3\n3,"plain",4\n'
    result = read(text)
    assert result.dialect == Dialect(",", '"', "\\")
    assert only_table(result)[1][0] == ["1", '5" screen, wide', "2"]


def test_doubled_quotes_and_multiline_fields() -> None:
    text = 'id,note,qty\n1,"say ""hi""",2\n2,"two\nlines",3\n3,x,4\n'
    _, rows = only_table(read(text))
    assert rows == [["1", 'say "hi"', "2"], ["2", "two\nlines", "3"], ["3", "x", "4"]]
    assert read(text).tables[0].row_lines == [2, 3, 5]


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_record_delimiters(newline: str) -> None:
    result = read(lines([HEADER, *CLEAN], newline=newline))
    assert result.detection.newline == newline
    assert only_table(result) == (HEADER, CLEAN)


# --- layout ------------------------------------------------------------------------


def test_preamble_lines_are_skipped() -> None:
    text = "Sales report\nExported 2024-02-01,,,\n,,,\n" + lines([HEADER, *CLEAN])
    result = read(text)
    table = result.tables[0]
    assert [r.line for r in table.preamble] == [1, 2, 3]
    assert (table.header, table.rows) == (HEADER, CLEAN)


def test_footnotes_are_not_rows() -> None:
    text = lines([HEADER, *CLEAN]) + "\nSource: the shop\n* prices in EUR,,,\n"
    table = read(text).tables[0]
    assert table.rows == CLEAN
    assert [r.line for r in table.footnotes] == [7, 8]
    assert table.rejects == []


def test_multi_row_header_is_joined() -> None:
    units = ["", "", "EUR", ""]
    table = read(lines([HEADER, units, *CLEAN])).tables[0]
    assert len(table.header_rows) == 2
    assert table.header == ["id", "day", "price EUR", "colour"]
    assert table.rows == CLEAN


def test_missing_header_gets_generated_names() -> None:
    table = read(lines(CLEAN)).tables[0]
    assert not table.has_header
    assert table.names == ["col_0", "col_1", "col_2", "col_3"]
    assert table.rows == CLEAN


def test_text_only_table_with_distinct_first_row_has_a_header() -> None:
    table = read("name,city\nann,oslo\nbob,rome\n").tables[0]
    assert table.header == ["name", "city"]


def test_several_tables_split_on_a_repeated_header() -> None:
    result = read(lines([HEADER, *CLEAN[:2], HEADER, *CLEAN[2:]]))
    assert [t.rows for t in result.tables] == [CLEAN[:2], CLEAN[2:]]
    assert all(t.header == HEADER for t in result.tables)


def test_several_tables_split_on_a_new_width() -> None:
    other = [["k", "v"], ["a", "1"], ["b", "2"], ["c", "3"]]
    result = read(lines([HEADER, *CLEAN]) + "\n" + lines(other))
    assert len(result.tables) == 2
    assert result.tables[0].rows == CLEAN
    assert (result.tables[1].header, result.tables[1].rows) == (other[0], other[1:])


def test_rows_with_too_few_or_too_many_fields_are_rejected_with_line() -> None:
    bad = [["9", "2024-01-09", "1.0"], ["8", "2024-01-10", "2.0", "tan", "extra"]]
    table = read(lines([HEADER, CLEAN[0], bad[0], CLEAN[1], bad[1], *CLEAN[2:]])).tables[0]
    assert table.rows == CLEAN
    assert [(r.line, r.reason) for r in table.rejects] == [
        (3, "3 fields where the table has 4"),
        (5, "5 fields where the table has 4"),
    ]


def test_trailing_empty_fields_fit() -> None:
    table = read(lines([HEADER, *CLEAN]).replace("\n", ",,\n", 2)).tables[0]
    assert (table.header, table.rows, table.rejects) == (HEADER, CLEAN, [])


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('2,"2024-01-06,4.25,blue', ["2", '"2024-01-06', "4.25", "blue"]),
        ('2,2024-01-06,""4.25",blue', ["2", "2024-01-06", '"4.25', "blue"]),
        ('2,2024-01-06,4.25,"', ["2", "2024-01-06", "4.25", '"']),
    ],
)
def test_stray_quotes_cost_one_line(line: str, expected: list[str]) -> None:
    text = lines([HEADER, CLEAN[0]]) + line + "\n" + lines(CLEAN[2:])
    result = read(text)
    table = result.tables[0]
    assert table.rows == [CLEAN[0], expected, *CLEAN[2:]]
    assert result.repaired_lines == [3]


def test_empty_file_has_no_table() -> None:
    assert read(b"").tables == []


def test_header_only_file() -> None:
    header, rows = only_table(read(lines([HEADER])))
    assert (header, rows) == (HEADER, [])
