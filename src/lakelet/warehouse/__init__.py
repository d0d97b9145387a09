"""The warehouse: schema-on-write tables, by URI scheme (DuckDB file by default)."""

from __future__ import annotations

from pathlib import Path

from lakelet.errors import ConfigError
from lakelet.warehouse.base import LOAD_MODES, LoadMode, LoadResult, Warehouse

__all__ = ["LOAD_MODES", "LoadMode", "LoadResult", "Warehouse", "open_warehouse"]


def open_warehouse(uri: str, *, base: Path) -> Warehouse:
    if uri.startswith("duckdb://"):
        from lakelet.warehouse.duckdb import DuckDBWarehouse

        raw = uri[len("duckdb://") :].removeprefix("/")
        path = Path(raw)
        return DuckDBWarehouse(path if path.is_absolute() else base / path)
    raise ConfigError(
        f"warehouse.uri = {uri!r}: supported is duckdb:///path.duckdb "
        "(relative to the project) or duckdb:////absolute/path.duckdb"
    )
