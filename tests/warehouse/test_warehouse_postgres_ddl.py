"""PostgreSQL and Redshift DDL from Arrow: golden types, and Redshift SQL that parses back."""

from __future__ import annotations

import pyarrow as pa
import pytest
import sqlglot
from sqlglot import exp

from lakelet.errors import LoadError
from lakelet.warehouse.postgres import PostgresWarehouse
from lakelet.warehouse.postgres_ddl import (
    arrow_comment,
    arrow_from_comment,
    arrow_type,
    create_table,
)
from lakelet.warehouse.request import Target

SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("machine", pa.string()),
        ("amount", pa.decimal128(10, 2)),
        ("sold_at", pa.timestamp("us", tz="UTC")),
        ("photo", pa.binary()),
        ("tags", pa.list_(pa.string())),
        ("count", pa.uint64()),
    ]
)
GOLDEN = {
    "postgres": (
        'CREATE TABLE "analytics"."sales" ("id" BIGINT NOT NULL, "machine" TEXT, '
        '"amount" DECIMAL(10, 2), "sold_at" TIMESTAMPTZ, "photo" BYTEA, "tags" JSONB, '
        '"count" DECIMAL(20, 0), PRIMARY KEY ("id"))'
    ),
    "redshift": (
        'CREATE TABLE "analytics"."sales" ("id" BIGINT NOT NULL, "machine" VARCHAR(MAX), '
        '"amount" DECIMAL(10, 2), "sold_at" TIMESTAMP WITH TIME ZONE, "photo" VARBYTE, '
        '"tags" SUPER, "count" DECIMAL(20, 0), PRIMARY KEY ("id")) '
        'DISTKEY("id") COMPOUND SORTKEY("sold_at", "id")'
    ),
}


@pytest.mark.parametrize("dialect", ["postgres", "redshift"])
def test_create_table_golden(dialect: str) -> None:
    sql = create_table(
        Target("analytics", "sales"),
        SCHEMA,
        dialect=dialect,  # type: ignore[arg-type]
        keys=["id"],
        dist_key="id",
        sort_key=["sold_at", "id"],
    )
    assert sql == GOLDEN[dialect]


def test_redshift_ddl_parses_back_with_its_keys() -> None:
    sql = create_table(
        Target("analytics", "sales"),
        SCHEMA,
        dialect="redshift",
        keys=["id"],
        dist_key="machine",
        sort_key=["sold_at"],
    )
    parsed = sqlglot.parse_one(sql, read="redshift")
    assert isinstance(parsed, exp.Create)
    dist = parsed.find(exp.DistKeyProperty)
    sort = parsed.find(exp.SortKeyProperty)
    assert dist is not None and dist.this.name == "machine"
    assert sort is not None and [k.name for k in sort.this] == ["sold_at"]
    columns = {c.name: c.args["kind"].sql("redshift") for c in parsed.find_all(exp.ColumnDef)}
    assert columns["tags"] == "SUPER" and columns["machine"] == "VARCHAR(MAX)"
    assert parsed.sql("redshift") == sql  # nothing lost on the way back


def test_postgres_ddl_leaves_out_redshift_keys() -> None:
    sql = create_table(
        Target("a", "b"), pa.schema([("id", pa.int32())]), dialect="postgres", dist_key="id"
    )
    assert sql == 'CREATE TABLE "a"."b" ("id" INT)'
    assert sqlglot.parse_one(sql, read="postgres").sql("postgres") == sql


@pytest.mark.parametrize(
    ("sql", "expected", "length"),
    [
        ("bigint", pa.int64(), None),
        ("numeric(10,2)", pa.decimal128(10, 2), None),
        ("character varying(12)", pa.string(), 12),
        ("timestamp with time zone", pa.timestamp("us", tz="UTC"), None),
        ("timestamp without time zone", pa.timestamp("us"), None),
        ("double precision", pa.float64(), None),
        ("bytea", pa.binary(), None),
        ("uuid", pa.string(), None),
    ],
)
def test_warehouse_types_read_as_arrow(sql: str, expected: pa.DataType, length: int | None) -> None:
    assert arrow_type(sql) == (expected, length)


def test_nested_types_survive_a_column_comment() -> None:
    nested = pa.struct([("row", pa.int32()), ("tags", pa.list_(pa.string()))])
    assert arrow_from_comment(arrow_comment(nested)) == nested
    assert arrow_from_comment("a comment someone wrote") is None


def test_redshift_keys_must_be_columns_before_anything_connects() -> None:
    warehouse = PostgresWarehouse("postgresql://nobody@127.0.0.1:1/none", dialect="redshift")
    data = pa.table({"id": [1]})
    with pytest.raises(LoadError, match="distribution key column 'sku'"):
        warehouse.load(data, "analytics.t", dist_key="sku")
    with pytest.raises(LoadError, match="sort key column 'day'"):
        warehouse.load(data, "analytics.t", sort_key=["day"])
