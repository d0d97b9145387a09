"""The warehouse: schema-on-write tables, by URI scheme (DuckDB file by default).

* ``duckdb:///path.duckdb`` (relative to the project) or ``duckdb:////abs/path.duckdb``
* ``postgresql://user:password@host:port/db`` (or ``postgres://``): a PostgreSQL server
* ``redshift://user:password@host:port/db``: the same PostgreSQL wire protocol, with
  DDL in Redshift's dialect (``VARCHAR(MAX)``, ``SUPER``, ``DISTKEY``/``SORTKEY``)
"""

from __future__ import annotations

from pathlib import Path

from lakelet.errors import ConfigError
from lakelet.warehouse.base import LOAD_MODES, LoadMode, LoadResult, RowError, Warehouse

__all__ = ["LOAD_MODES", "LoadMode", "LoadResult", "RowError", "Warehouse", "open_warehouse"]


def open_warehouse(uri: str, *, base: Path) -> Warehouse:
    if uri.startswith("duckdb://"):
        from lakelet.warehouse.duckdb import DuckDBWarehouse

        raw = uri[len("duckdb://") :].removeprefix("/")
        path = Path(raw)
        return DuckDBWarehouse(path if path.is_absolute() else base / path)
    if uri.startswith(("postgresql://", "postgres://")):
        from lakelet.warehouse.postgres import PostgresWarehouse

        return PostgresWarehouse(uri)
    if uri.startswith("redshift://"):
        from lakelet.warehouse.postgres import PostgresWarehouse

        return PostgresWarehouse("postgresql://" + uri[len("redshift://") :], dialect="redshift")
    raise ConfigError(
        f"warehouse.uri = {uri!r}: supported are duckdb:///path.duckdb (relative to the "
        "project), duckdb:////absolute/path.duckdb, postgresql://user@host:port/database "
        "and redshift://user@host:port/database (PostgreSQL wire, Redshift DDL)"
    )
