"""The DuckDB file warehouse: never holds the file, never creates it to read it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from lakelet.errors import LoadError, TableNotFoundError, WarehouseError
from lakelet.warehouse import open_warehouse
from lakelet.warehouse.duckdb import DuckDBWarehouse

TARGET = "analytics.sales"
DATA = pa.table({"id": [1, 2, 3], "amount": [1.5, 2.5, 3.5]})


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "deep" / "state" / "warehouse.duckdb"


def write_in_another_process(path: Path) -> subprocess.CompletedProcess[str]:
    code = f"""
        import duckdb
        with duckdb.connect({str(path)!r}) as con:
            con.execute("CREATE TABLE IF NOT EXISTS main.touched (n INTEGER)")
            con.execute("INSERT INTO main.touched VALUES (1)")
        print("wrote")
    """
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60
    )


@contextmanager
def held_by_another_process(path: Path) -> Iterator[subprocess.Popen[str]]:
    """A process holding the file open read-write until the block ends."""
    code = f"""
        import sys, duckdb
        con = duckdb.connect({str(path)!r})
        print("holding", flush=True)
        sys.stdin.readline()
        con.close()
    """
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "holding"
        yield proc
    finally:
        if proc.poll() is None:
            proc.communicate("\n", timeout=30)


def test_every_operation_lets_go_of_the_file(path: Path) -> None:
    warehouse = DuckDBWarehouse(path, lock_timeout=0)
    warehouse.load(DATA, TARGET)
    warehouse.load(DATA, TARGET, mode="merge", keys=["id"])
    assert warehouse.tables() == [TARGET]
    assert warehouse.has_table(TARGET)
    assert warehouse.read_arrow(TARGET).num_rows == 3
    with pytest.raises(TableNotFoundError):
        warehouse.read_arrow("analytics.nothing")
    result = write_in_another_process(path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "wrote"


def test_a_failed_load_lets_go_of_the_file(path: Path) -> None:
    warehouse = DuckDBWarehouse(path, lock_timeout=0)
    warehouse.load(DATA, TARGET)
    too_far = pa.table({"at": pa.array([9 * 10**15], pa.timestamp("s"))})
    with pytest.raises(LoadError, match="nothing loaded"):
        warehouse.load(too_far, TARGET)
    assert write_in_another_process(path).returncode == 0


def test_load_creates_the_folders(path: Path) -> None:
    DuckDBWarehouse(path).load(DATA, TARGET)
    assert path.is_file()


def test_reads_never_create_the_file(path: Path) -> None:
    warehouse = DuckDBWarehouse(path)
    assert warehouse.tables() == []
    assert not warehouse.has_table(TARGET)
    with pytest.raises(TableNotFoundError):
        warehouse.read_arrow(TARGET)
    with duckdb.connect() as con, pytest.raises(TableNotFoundError):
        warehouse.register(con, TARGET, "sales")
    assert not path.exists() and not path.parent.exists()


def test_register_attaches_the_file_once_read_only(path: Path) -> None:
    warehouse = DuckDBWarehouse(path)
    warehouse.load(DATA, TARGET)
    warehouse.load(DATA, "analytics.other")
    with duckdb.connect() as con:
        warehouse.register(con, TARGET, "a")
        warehouse.register(con, "analytics.other", "b")
        warehouse.register(con, TARGET, "a")  # again: replaces the view
        attached = con.execute(
            "SELECT readonly FROM duckdb_databases() WHERE path = ?", [str(path.resolve())]
        ).fetchall()
        assert attached == [(True,)]
        assert con.execute("SELECT count(*) FROM a JOIN b USING (id)").fetchall() == [(3,)]
        with pytest.raises(duckdb.Error):
            con.execute("INSERT INTO a VALUES (9, 9.0)")


def test_register_picks_a_free_alias(path: Path) -> None:
    warehouse = DuckDBWarehouse(path)
    warehouse.load(DATA, TARGET)
    with duckdb.connect() as con:
        con.execute("ATTACH ':memory:' AS lakelet_warehouse")
        warehouse.register(con, TARGET, "sales")
        assert con.execute("SELECT sum(id) FROM sales").fetchall() == [(6,)]


def test_a_load_while_another_process_holds_the_file_fails_clearly(path: Path) -> None:
    warehouse = DuckDBWarehouse(path, lock_timeout=0.2)
    warehouse.load(DATA, TARGET)
    with held_by_another_process(path), pytest.raises(WarehouseError, match="in use"):
        warehouse.load(DATA, TARGET)
    assert warehouse.load(DATA, TARGET, mode="append").rows_in_target == 6


def test_a_load_waits_for_the_file_to_be_released(path: Path) -> None:
    warehouse = DuckDBWarehouse(path, lock_timeout=30)
    warehouse.load(DATA, TARGET)
    with held_by_another_process(path) as holder:
        release = threading.Timer(0.5, lambda: holder.communicate("\n", timeout=30))
        release.start()
        started = time.monotonic()
        result = warehouse.load(DATA, TARGET, mode="append")
        release.join()
    assert result.rows_in_target == 6
    assert time.monotonic() - started >= 0.4


def test_a_registered_connection_blocks_loads_in_the_same_process_until_closed(
    path: Path,
) -> None:
    warehouse = DuckDBWarehouse(path, lock_timeout=0)
    warehouse.load(DATA, TARGET)
    con = duckdb.connect()
    warehouse.register(con, TARGET, "sales")
    with pytest.raises(WarehouseError, match="in use"):
        warehouse.load(DATA, TARGET)
    assert warehouse.read_arrow(TARGET).num_rows == 3  # reading still works
    con.close()
    assert warehouse.load(DATA, TARGET, mode="append").rows_in_target == 6


def test_open_warehouse_resolves_the_project_path(tmp_path: Path) -> None:
    warehouse = open_warehouse("duckdb:///.lakelet/warehouse.duckdb", base=tmp_path)
    assert isinstance(warehouse, DuckDBWarehouse)
    assert warehouse.path == tmp_path / ".lakelet" / "warehouse.duckdb"


def test_register_reuses_a_connection_to_the_warehouse_file_itself(path: Path) -> None:
    warehouse = DuckDBWarehouse(path)
    warehouse.load(DATA, TARGET)
    with duckdb.connect(str(path), read_only=True) as con:
        warehouse.register(con, TARGET, "sales")
        assert con.execute("SELECT count(*) FROM sales").fetchall() == [(3,)]
        names = {
            row[0] for row in con.execute("SELECT database_name FROM duckdb_databases()").fetchall()
        }
        assert "lakelet_warehouse" not in names
