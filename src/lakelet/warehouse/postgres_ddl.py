"""PostgreSQL and Redshift DDL from Arrow schemas, built as sqlglot expressions.

The statement is one sqlglot tree rendered in the target dialect, so the same load spec
becomes ``TEXT``/``JSONB``/``BYTEA`` on PostgreSQL and ``VARCHAR(MAX)``/``SUPER``/
``VARBYTE`` on Redshift, where ``DISTKEY``/``SORTKEY`` are added. Types without a
PostgreSQL equivalent narrow to one whose values are then checked row by row (unsigned
into the next larger signed type, nanoseconds into microseconds). Nested values (lists,
structs, maps) are stored as JSON; the column's Arrow type is kept in the column's
comment so that reading the table gives back the type that was loaded.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from lakelet.warehouse.ddl import column_type

if TYPE_CHECKING:
    import pyarrow as pa
    from sqlglot import exp

    from lakelet.warehouse.request import Target

Dialect = Literal["postgres", "redshift"]
ARROW_COMMENT = "lakelet:arrow="

_INTEGERS = {
    "int8": "SMALLINT",
    "int16": "SMALLINT",
    "int32": "INT",
    "int64": "BIGINT",
    "uint8": "SMALLINT",
    "uint16": "INT",
    "uint32": "BIGINT",
    "uint64": "DECIMAL(20, 0)",
}


def sql_type(column: str, dtype: pa.DataType, dialect: Dialect) -> exp.DataType:
    """The column type for ``dtype``; ``LoadError`` for types no warehouse holds."""
    import pyarrow as pa
    from sqlglot import exp

    column_type(column, dtype)  # the same refusals (null, half float, …) on every backend
    types = pa.types
    if types.is_dictionary(dtype):
        return sql_type(column, dtype.value_type, dialect)
    if is_nested(dtype):
        name = "SUPER" if dialect == "redshift" else "JSONB"
    elif types.is_boolean(dtype):
        name = "BOOLEAN"
    elif types.is_integer(dtype):
        name = _INTEGERS[str(dtype)]
    elif types.is_float32(dtype):
        name = "REAL"
    elif types.is_float64(dtype):
        name = "DOUBLE PRECISION"
    elif types.is_decimal(dtype):
        name = f"DECIMAL({dtype.precision}, {dtype.scale})"
    elif types.is_date(dtype):
        name = "DATE"
    elif types.is_time(dtype):
        name = "TIME"
    elif types.is_timestamp(dtype):
        name = "TIMESTAMPTZ" if dtype.tz else "TIMESTAMP"
    elif types.is_duration(dtype) or types.is_interval(dtype):
        name = "INTERVAL"
    elif column_type(column, dtype) == "BLOB":
        name = "BYTEA"
    else:  # every string type
        name = "TEXT"
    return exp.DataType.build(name, dialect="redshift" if name == "SUPER" else "postgres")


def canonical_type(sql: str) -> str:
    """A type as the warehouse reports it (``format_type``), in one spelling."""
    from sqlglot import exp
    from sqlglot.errors import ParseError

    try:
        return exp.DataType.build(sql, dialect="postgres").sql("postgres")
    except (ParseError, ValueError):
        return sql.upper()


def is_nested(dtype: pa.DataType) -> bool:
    import pyarrow as pa

    types = pa.types
    return bool(
        types.is_list(dtype)
        or types.is_large_list(dtype)
        or types.is_fixed_size_list(dtype)
        or types.is_list_view(dtype)
        or types.is_struct(dtype)
        or types.is_map(dtype)
    )


def create_table(
    target: Target,
    schema: pa.Schema,
    *,
    dialect: Dialect,
    keys: Sequence[str] = (),
    dist_key: str | None = None,
    sort_key: Sequence[str] = (),
) -> str:
    """``CREATE TABLE`` with typed columns, NOT NULL keys and ``PRIMARY KEY (keys)``.

    On Redshift, ``dist_key`` becomes ``DISTKEY(col)`` and ``sort_key`` a compound
    ``SORTKEY(cols)``; PostgreSQL has neither, so they are left out there.
    """
    from sqlglot import exp

    def ident(name: str) -> exp.Identifier:
        return exp.to_identifier(name, quoted=True)

    columns: list[exp.Expr] = []
    for field in schema:
        constraints = [exp.ColumnConstraint(kind=exp.NotNullColumnConstraint())]
        columns.append(
            exp.ColumnDef(
                this=ident(field.name),
                kind=sql_type(field.name, field.type, dialect),
                constraints=constraints if field.name in keys else [],
            )
        )
    if keys:
        columns.append(exp.PrimaryKey(expressions=[ident(k) for k in keys]))
    table = exp.Table(this=ident(target.table), db=ident(target.schema))
    properties: list[exp.Expr] = []
    if dialect == "redshift":
        if dist_key:
            properties.append(exp.DistKeyProperty(this=ident(dist_key)))
        if sort_key:
            properties.append(exp.SortKeyProperty(this=[ident(k) for k in sort_key], compound=True))
    create = exp.Create(
        kind="TABLE",
        this=exp.Schema(this=table, expressions=columns),
        properties=exp.Properties(expressions=properties) if properties else None,
    )
    return create.sql(dialect=dialect)


def arrow_comment(dtype: pa.DataType) -> str:
    """A column comment that records ``dtype`` exactly (Arrow IPC schema, base64)."""
    import pyarrow as pa

    encoded = pa.schema([pa.field("c", dtype)]).serialize().to_pybytes()
    return ARROW_COMMENT + base64.b64encode(encoded).decode("ascii")


def arrow_from_comment(comment: str | None) -> pa.DataType | None:
    import pyarrow as pa

    if not comment or not comment.startswith(ARROW_COMMENT):
        return None
    try:
        raw = base64.b64decode(comment[len(ARROW_COMMENT) :])
        return pa.ipc.read_schema(pa.py_buffer(raw)).field(0).type
    except (ValueError, pa.ArrowException):
        return None


def arrow_type(sql: str) -> tuple[pa.DataType, int | None]:
    """The Arrow type a column of type ``sql`` (``format_type``) reads as, and its length limit.

    Types without an exact Arrow match (``numeric`` without precision, ``json``, …) read
    as text.
    """
    import pyarrow as pa
    from sqlglot import exp
    from sqlglot.errors import ParseError

    try:
        parsed = exp.DataType.build(sql, dialect="postgres")
    except (ParseError, ValueError):
        return pa.string(), None
    kind = parsed.this
    T = exp.DataType.Type
    simple: dict[Any, pa.DataType] = {
        T.BOOLEAN: pa.bool_(),
        T.SMALLINT: pa.int16(),
        T.INT: pa.int32(),
        T.BIGINT: pa.int64(),
        T.FLOAT: pa.float32(),
        T.DOUBLE: pa.float64(),
        T.DATE: pa.date32(),
        T.TIME: pa.time64("us"),
        T.TIMESTAMP: pa.timestamp("us"),
        T.TIMESTAMPTZ: pa.timestamp("us", tz="UTC"),
        T.INTERVAL: pa.duration("us"),
        T.VARBINARY: pa.binary(),
    }
    if kind in simple:
        return simple[kind], None
    params = [int(p.name) for p in parsed.expressions if p.name.isdigit()]
    if kind == T.DECIMAL and params:
        precision, scale = [*params, 0][:2]
        return pa.decimal128(precision, scale), None
    if kind in (T.VARCHAR, T.CHAR, T.NCHAR, T.NVARCHAR):
        return pa.string(), params[0] if params else None
    return pa.string(), None
