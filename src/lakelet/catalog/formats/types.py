"""Arrow schemas as DuckDB column types, the type language of raw tables."""

from __future__ import annotations

import pyarrow as pa


def duckdb_columns(schema: pa.Schema) -> list[tuple[str, str]]:
    """``(name, DuckDB type)`` per column, as DuckDB itself maps the Arrow types."""
    import duckdb

    con = duckdb.connect()
    try:
        con.register("empty_arrow", schema.empty_table())
        return [(str(r[0]), str(r[1])) for r in con.execute("DESCRIBE empty_arrow").fetchall()]
    finally:
        con.close()
