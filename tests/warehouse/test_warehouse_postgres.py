"""The PostgreSQL warehouse on a real server: COPY, VARCHAR(n), connections, URIs."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pytest

from lakelet.errors import MissingExtraError, WarehouseError
from lakelet.warehouse import open_warehouse
from lakelet.warehouse.base import LOAD_ERRORS_TABLE
from lakelet.warehouse.postgres import PostgresWarehouse

TARGET = "analytics.sales"
BULK_ROWS = 100_000
BULK_SECONDS = 10.0  # typically ~1 s; row-by-row inserts would take minutes


@pytest.fixture
def warehouse(postgres_uri: str) -> PostgresWarehouse:
    return PostgresWarehouse(postgres_uri)


class Statements:
    """Every statement the warehouse sends, with COPY apart."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.executed: list[str] = []
        self.copies: list[str] = []
        execute, copy = psycopg.Cursor.execute, psycopg.Cursor.copy

        def spy_execute(cur: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
            self.executed.append(_text(query))
            return execute(cur, query, *args, **kwargs)

        def spy_copy(cur: Any, statement: Any, *args: Any, **kwargs: Any) -> Any:
            self.copies.append(_text(statement))
            return copy(cur, statement, *args, **kwargs)

        monkeypatch.setattr(psycopg.Cursor, "execute", spy_execute)
        monkeypatch.setattr(psycopg.Cursor, "copy", spy_copy)


def _text(query: Any) -> str:
    return query.decode() if isinstance(query, bytes) else str(query)


def test_a_large_load_is_one_copy(
    warehouse: PostgresWarehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    n = BULK_ROWS
    data = pa.table(
        {
            "id": pa.array(range(n), pa.int64()),
            "machine": pa.array([f"m{i % 97}" for i in range(n)]),
            "amount": pa.array(range(n), pa.float64()),
        }
    )
    statements = Statements(monkeypatch)
    started = time.monotonic()
    result = warehouse.load(data, TARGET, keys=["id"])
    elapsed = time.monotonic() - started
    assert result.rows_in_target == n
    assert len(statements.copies) == 1
    assert statements.copies[0].startswith('COPY "analytics"."sales"')
    assert not [s for s in statements.executed if s.lstrip().upper().startswith("INSERT")]
    assert elapsed < BULK_SECONDS
    back = warehouse.read_arrow(TARGET)
    assert back.num_rows == n and back.column("amount").to_pylist()[-1] == n - 1


def test_merge_copies_into_a_staging_table_in_one_transaction(
    warehouse: PostgresWarehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse.load(pa.table({"id": [1, 2], "v": ["a", "b"]}), TARGET, keys=["id"])
    statements = Statements(monkeypatch)
    result = warehouse.load(
        pa.table({"id": [2, 3], "v": ["B", "c"]}), TARGET, mode="merge", keys=["id"]
    )
    assert (result.rows_inserted, result.rows_updated, result.rows_in_target) == (1, 1, 3)
    assert statements.copies == ['COPY lakelet_staging ("id", "v") FROM STDIN (FORMAT csv)']
    kinds = [s.split()[0].upper() for s in statements.executed]
    assert "UPDATE" in kinds and "INSERT" in kinds
    rows = sorted(warehouse.read_arrow(TARGET).to_pylist(), key=lambda r: r["id"])
    assert rows == [{"id": 1, "v": "a"}, {"id": 2, "v": "B"}, {"id": 3, "v": "c"}]


def test_strings_too_long_for_varchar_n_are_load_errors(warehouse: PostgresWarehouse) -> None:
    with psycopg.connect(warehouse.uri, autocommit=True) as con:
        con.execute("CREATE SCHEMA analytics")
        con.execute(
            "CREATE TABLE analytics.codes (id bigint PRIMARY KEY, code varchar(3) NOT NULL)"
        )
    data = pa.table({"id": [1, 2, 3], "code": ["abc", "abcd", None]})
    result = warehouse.load(data, "analytics.codes", mode="append", max_errors=2)
    assert (result.rows_loaded, result.rows_rejected) == (1, 2)
    errors = sorted(warehouse.read_arrow(LOAD_ERRORS_TABLE).to_pylist(), key=lambda r: r["line"])
    assert [(e["line"], e["column_name"], e["value"]) for e in errors] == [
        (2, "code", "abcd"),
        (3, "code", None),
    ]
    assert "character varying(3)" in errors[0]["reason"]
    assert "NOT NULL" in errors[1]["reason"]


def test_text_values_survive_the_copy(warehouse: PostgresWarehouse) -> None:
    tricky = ["", 'quote " and, comma', "line\nbreak", "back\\slash", "ünïcode", None]
    data = pa.table(
        {
            "id": list(range(len(tricky))),
            "s": tricky,
            "b": [b"\x00\xff", b"", None, b"x", b"y", b"z"],
            "f": [float("inf"), float("-inf"), 0.1, None, 1e300, -0.0],
        }
    )
    warehouse.load(data, TARGET)
    back = sorted(warehouse.read_arrow(TARGET).to_pylist(), key=lambda r: r["id"])
    assert back == data.to_pylist()


def test_every_operation_closes_its_connection(
    warehouse: PostgresWarehouse, postgres_uri: str
) -> None:
    warehouse.load(pa.table({"id": [1]}), TARGET)
    warehouse.read_arrow(TARGET)
    warehouse.tables()
    database = postgres_uri.rsplit("/", 1)[1]
    with psycopg.connect(postgres_uri) as con:
        row = con.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [database],
        ).fetchone()
    assert row == (0,)


def test_an_unreachable_server_is_a_clear_error() -> None:
    warehouse = PostgresWarehouse("postgresql://me:secret@127.0.0.1:1/db")
    with pytest.raises(WarehouseError, match="cannot connect") as caught:
        warehouse.tables()
    assert "secret" not in str(caught.value)


def test_without_psycopg_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(MissingExtraError, match=r"lakelet\[postgres\]"):
        PostgresWarehouse("postgresql://me@127.0.0.1:1/db").tables()


def test_open_warehouse_by_scheme(tmp_path: Path) -> None:
    plain = open_warehouse("postgresql://u@h:5432/db", base=tmp_path)
    assert isinstance(plain, PostgresWarehouse) and plain.dialect == "postgres"
    redshift = open_warehouse("redshift://u@h:5439/dev", base=tmp_path)
    assert isinstance(redshift, PostgresWarehouse)
    assert (redshift.dialect, redshift.uri) == ("redshift", "postgresql://u@h:5439/dev")
