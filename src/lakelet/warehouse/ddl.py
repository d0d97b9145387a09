"""DuckDB DDL from Arrow schemas: the typed tables of schema on write.

Each Arrow type maps to one explicit SQL type, so a loaded table's columns are declared,
not guessed from a ``CREATE TABLE AS``. Timestamps in seconds or milliseconds widen to
microseconds (``TIMESTAMP``), the precision every warehouse shares; types a warehouse
cannot hold without loss (half floats, 256-bit decimals, all-null columns) are refused
with the column's name instead of being coerced.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from lakelet.errors import LoadError

if TYPE_CHECKING:
    import pyarrow as pa

MAX_DECIMAL_PRECISION = 38

_INTEGERS = {
    "int8": "TINYINT",
    "int16": "SMALLINT",
    "int32": "INTEGER",
    "int64": "BIGINT",
    "uint8": "UTINYINT",
    "uint16": "USMALLINT",
    "uint32": "UINTEGER",
    "uint64": "UBIGINT",
}


def quote_identifier(name: str) -> str:
    """A double-quoted SQL identifier, safe for any column name."""
    return '"' + name.replace('"', '""') + '"'


def qualified_name(schema: str, table: str) -> str:
    return f"{quote_identifier(schema)}.{quote_identifier(table)}"


def column_type(column: str, dtype: pa.DataType) -> str:
    """The DuckDB type of a column holding ``dtype`` values; ``LoadError`` if none fits."""
    import pyarrow as pa

    types = pa.types
    if types.is_dictionary(dtype):
        return column_type(column, dtype.value_type)
    if types.is_boolean(dtype):
        return "BOOLEAN"
    if types.is_integer(dtype):
        return _INTEGERS[str(dtype)]
    if types.is_float32(dtype):
        return "FLOAT"
    if types.is_float64(dtype):
        return "DOUBLE"
    if types.is_decimal(dtype):
        if dtype.precision > MAX_DECIMAL_PRECISION:
            raise _unsupported(
                column, dtype, f"decimals hold at most {MAX_DECIMAL_PRECISION} digits"
            )
        return f"DECIMAL({dtype.precision},{dtype.scale})"
    if types.is_string(dtype) or types.is_large_string(dtype) or types.is_string_view(dtype):
        return "VARCHAR"
    if (
        types.is_binary(dtype)
        or types.is_large_binary(dtype)
        or types.is_fixed_size_binary(dtype)
        or types.is_binary_view(dtype)
    ):
        return "BLOB"
    if types.is_date(dtype):
        return "DATE"
    if types.is_time(dtype):
        return "TIME_NS" if dtype.unit == "ns" else "TIME"
    if types.is_timestamp(dtype):
        suffix = "_NS" if dtype.unit == "ns" else ""
        return f"TIMESTAMPTZ{suffix}" if dtype.tz else f"TIMESTAMP{suffix}"
    if types.is_duration(dtype) or types.is_interval(dtype):
        return "INTERVAL"
    if types.is_fixed_size_list(dtype):
        return f"{column_type(column, dtype.value_type)}[{dtype.list_size}]"
    if types.is_list(dtype) or types.is_large_list(dtype) or types.is_list_view(dtype):
        return f"{column_type(column, dtype.value_type)}[]"
    if types.is_map(dtype):
        key = column_type(column, dtype.key_type)
        return f"MAP({key}, {column_type(column, dtype.item_type)})"
    if types.is_struct(dtype):
        fields = (dtype.field(i) for i in range(dtype.num_fields))
        members = ", ".join(
            f"{quote_identifier(f.name)} {column_type(column, f.type)}" for f in fields
        )
        return f"STRUCT({members})"
    if types.is_null(dtype):
        raise _unsupported(column, dtype, "every value is null, so the column has no type")
    raise _unsupported(column, dtype, "the warehouse has no matching SQL type")


def create_table_sql(
    schema: str, table: str, arrow_schema: pa.Schema, keys: Sequence[str] = ()
) -> str:
    """``CREATE TABLE`` with one typed column per field and ``PRIMARY KEY (keys)``."""
    lines = [
        f"{quote_identifier(field.name)} {column_type(field.name, field.type)}"
        for field in arrow_schema
    ]
    if keys:
        lines.append(f"PRIMARY KEY ({', '.join(quote_identifier(k) for k in keys)})")
    body = ",\n  ".join(lines)
    return f"CREATE TABLE {qualified_name(schema, table)} (\n  {body}\n)"


def _unsupported(column: str, dtype: pa.DataType, why: str) -> LoadError:
    return LoadError(
        f"column {column!r} has type {dtype}, which cannot be loaded: {why}; "
        "cast it to a supported type in the job that writes the table"
    )
