"""The warehouse behaviour suite runs against every backend listed in ``BACKENDS``.

A backend provides a fresh, empty warehouse and a way to read a table's column types as
its database reports them, so the suite can check schema on write literally. The
PostgreSQL backend gets a new database on the session's test server for every test
(which marks the test ``integration``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import duckdb
import psycopg
import pytest
from pgserver import PostgresServer

from lakelet.warehouse import Warehouse
from lakelet.warehouse.duckdb import DuckDBWarehouse
from lakelet.warehouse.postgres import PostgresWarehouse

# The PostgreSQL database is asked for inside ``warehouse``, which the automatic marking
# of tests using ``postgres_server`` cannot see: mark it here.
BACKENDS = ["duckdb", pytest.param("postgres", marks=pytest.mark.integration)]

ColumnTypes = Callable[[str], dict[str, str]]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def postgres_uri(postgres_server: PostgresServer) -> str:
    """A new, empty database on the test server."""
    return str(postgres_server.create_database(f"wh_{uuid.uuid4().hex[:12]}"))


@pytest.fixture
def warehouse(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Warehouse:
    if backend == "duckdb":
        # No waiting on locks: a test that leaves the file open must fail, not stall.
        return DuckDBWarehouse(tmp_path / "state" / "warehouse.duckdb", lock_timeout=0)
    if backend == "postgres":
        return PostgresWarehouse(request.getfixturevalue("postgres_uri"))
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

    def postgres_types(target: str) -> dict[str, str]:
        assert isinstance(warehouse, PostgresWarehouse)
        schema, table = target.split(".")
        with psycopg.connect(warehouse.uri) as con:
            rows = con.execute(
                "SELECT a.attname, format_type(a.atttypid, a.atttypmod) "
                "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 "
                "AND NOT a.attisdropped ORDER BY a.attnum",
                [schema, table],
            ).fetchall()
        return {str(name): str(sql_type) for name, sql_type in rows}

    if backend == "duckdb":
        return duckdb_types
    if backend == "postgres":
        return postgres_types
    raise AssertionError(f"no column_types for backend {backend}")
