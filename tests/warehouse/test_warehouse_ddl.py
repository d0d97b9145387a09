"""Arrow → DuckDB column types: golden mapping, checked against DuckDB itself."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest

from lakelet.errors import LoadError
from lakelet.warehouse.ddl import column_type, create_table_sql, quote_identifier

# Arrow type → (type in our DDL, type as DuckDB reports it once the table exists)
GOLDEN: list[tuple[pa.DataType, str, str]] = [
    (pa.bool_(), "BOOLEAN", "BOOLEAN"),
    (pa.int8(), "TINYINT", "TINYINT"),
    (pa.int16(), "SMALLINT", "SMALLINT"),
    (pa.int32(), "INTEGER", "INTEGER"),
    (pa.int64(), "BIGINT", "BIGINT"),
    (pa.uint8(), "UTINYINT", "UTINYINT"),
    (pa.uint64(), "UBIGINT", "UBIGINT"),
    (pa.float32(), "FLOAT", "FLOAT"),
    (pa.float64(), "DOUBLE", "DOUBLE"),
    (pa.decimal128(10, 2), "DECIMAL(10,2)", "DECIMAL(10,2)"),
    (pa.decimal128(38, 0), "DECIMAL(38,0)", "DECIMAL(38,0)"),
    (pa.string(), "VARCHAR", "VARCHAR"),
    (pa.large_string(), "VARCHAR", "VARCHAR"),
    (pa.string_view(), "VARCHAR", "VARCHAR"),
    (pa.dictionary(pa.int32(), pa.string()), "VARCHAR", "VARCHAR"),
    (pa.binary(), "BLOB", "BLOB"),
    (pa.binary(16), "BLOB", "BLOB"),
    (pa.date32(), "DATE", "DATE"),
    (pa.date64(), "DATE", "DATE"),
    (pa.time64("us"), "TIME", "TIME"),
    (pa.time64("ns"), "TIME_NS", "TIME_NS"),
    (pa.timestamp("s"), "TIMESTAMP", "TIMESTAMP"),
    (pa.timestamp("ms"), "TIMESTAMP", "TIMESTAMP"),
    (pa.timestamp("us"), "TIMESTAMP", "TIMESTAMP"),
    (pa.timestamp("ns"), "TIMESTAMP_NS", "TIMESTAMP_NS"),
    (pa.timestamp("us", tz="UTC"), "TIMESTAMPTZ", "TIMESTAMP WITH TIME ZONE"),
    (pa.duration("us"), "INTERVAL", "INTERVAL"),
    (pa.list_(pa.int64()), "BIGINT[]", "BIGINT[]"),
    (pa.large_list(pa.string()), "VARCHAR[]", "VARCHAR[]"),
    (pa.list_(pa.float64(), 3), "DOUBLE[3]", "DOUBLE[3]"),
    (pa.map_(pa.string(), pa.int32()), "MAP(VARCHAR, INTEGER)", "MAP(VARCHAR, INTEGER)"),
    (
        pa.struct([("qty", pa.int32()), ("tags", pa.list_(pa.string()))]),
        'STRUCT("qty" INTEGER, "tags" VARCHAR[])',
        "STRUCT(qty INTEGER, tags VARCHAR[])",
    ),
]


@pytest.mark.parametrize(("arrow_type", "ddl", "reported"), GOLDEN, ids=lambda v: str(v))
def test_column_types(arrow_type: pa.DataType, ddl: str, reported: str) -> None:
    assert column_type("c", arrow_type) == ddl
    sql = create_table_sql("s", "t", pa.schema([("c", arrow_type)]))
    with duckdb.connect() as con:
        con.execute("CREATE SCHEMA s")
        con.execute(sql)
        assert con.execute("DESCRIBE s.t").fetchall()[0][1] == reported


@pytest.mark.parametrize(
    ("arrow_type", "why"),
    [
        (pa.null(), "every value is null"),
        (pa.float16(), "no matching SQL type"),
        (pa.decimal256(40, 2), "at most 38 digits"),
        (pa.list_(pa.null()), "every value is null"),
    ],
)
def test_unsupported_types_name_the_column(arrow_type: pa.DataType, why: str) -> None:
    with pytest.raises(LoadError, match=f"'price'.*{why}"):
        column_type("price", arrow_type)


def test_create_table_quotes_names_and_declares_the_key() -> None:
    schema = pa.schema([("select", pa.int64()), ('we"ird name', pa.string())])
    sql = create_table_sql("order", "from", schema, keys=["select"])
    with duckdb.connect() as con:
        con.execute('CREATE SCHEMA "order"')
        con.execute(sql)
        con.execute("""INSERT INTO "order"."from" VALUES (1, 'a')""")
        with pytest.raises(duckdb.ConstraintException):
            con.execute("""INSERT INTO "order"."from" VALUES (1, 'b')""")
        columns = [row[0] for row in con.execute('DESCRIBE "order"."from"').fetchall()]
    assert columns == ["select", 'we"ird name']


def test_quote_identifier_doubles_quotes() -> None:
    assert quote_identifier('a"b') == '"a""b"'
