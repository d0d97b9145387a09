"""The warehouse behaviour suite runs against every backend listed in ``BACKENDS``.

A backend provides a fresh, empty warehouse and a way to read a table's column types as
its database reports them, so the suite can check schema on write literally.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from lakelet.warehouse import Warehouse
from lakelet.warehouse.duckdb import DuckDBWarehouse

BACKENDS = ["duckdb"]

ColumnTypes = Callable[[str], dict[str, str]]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def warehouse(backend: str, tmp_path: Path) -> Warehouse:
    if backend == "duckdb":
        # No waiting on locks: a test that leaves the file open must fail, not stall.
        return DuckDBWarehouse(tmp_path / "state" / "warehouse.duckdb", lock_timeout=0)
    raise AssertionError(f"no fixture for backend {backend}")


@pytest.fixture
def column_types(backend: str, warehouse: Warehouse) -> ColumnTypes:
    """``target`` → {column: SQL type}, read from the database's information_schema."""

    def duckdb_types(target: str) -> dict[str, str]:
        assert isinstance(warehouse, DuckDBWarehouse)
        schema, table = target.split(".")
        with duckdb.connect(str(warehouse.path), read_only=True) as con:
            rows = con.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
                [schema, table],
            ).fetchall()
        return {str(name): str(sql_type) for name, sql_type in rows}

    if backend == "duckdb":
        return duckdb_types
    raise AssertionError(f"no column_types for backend {backend}")
