"""A raw CSV larger than the memory a job is given still loads, in bounded memory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROWS = 6_000_000
MEMORY_LIMIT_MB = 128

# Runs in a fresh interpreter, so its peak resident memory is this load's alone.
SCRIPT = """
import json, resource, sys
from pathlib import Path

import duckdb

from lakelet.catalog import Column, RawTable, TableName
from lakelet.catalog.bulk import write_query
from lakelet.catalog.rawscan import count_scan
from lakelet.jobs.session import Session
from lakelet.project import init_project

folder, rows, limit, route = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
project = init_project(folder / "project")
csv = Path(project.store.root) / "raw" / "big" / "big.csv"
csv.parent.mkdir(parents=True)
duckdb.execute(
    f"COPY (SELECT i AS id, 'machine-' || (i % 1000) AS machine, "
    f"round((i % 10000) * 0.37, 2) AS price, DATE '2026-01-01' + CAST(i % 365 AS INTEGER) "
    f"AS day, md5(CAST(i AS VARCHAR)) AS note FROM range({rows}) t(i)) TO '{csv}' (HEADER)"
)
columns = [Column("id", "BIGINT"), Column("machine", "VARCHAR"),
           Column("price", "DECIMAL(18,2)"), Column("day", "DATE"), Column("note", "VARCHAR")]
dialect = {"delimiter": ",", "quote": '"', "escape": '"', "header": True, "skip": 0}
project.catalog.register_raw(RawTable("raw", "big", "raw/big/", "csv", columns, dialect=dialect))
project.catalog.iceberg  # imported before measuring: start-up is not the load
import pyarrow.parquet  # noqa: F401  (add_files reads the footers with it)

before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
sql = "SELECT * FROM raw.big"
if route == "arrow":  # pyarrow reads, parallel writers write (a SELECT * job's route)
    from lakelet.catalog.bulk import write_tasks
    from lakelet.catalog.rawscan import ScanCount
    from lakelet.catalog.rawscan.arrowcsv import plan_arrow_read

    read = plan_arrow_read(project.catalog.raw_table(TableName("raw", "big")), [str(csv)])
    assert not isinstance(read, str), read
    written = write_tasks(project.catalog, project.store, TableName("curated", "big"),
                          read.schema, read.pieces(), read.read_piece, "overwrite")
    counted = ScanCount(written.rows, [])
else:
    with Session(project) as session:
        session.connection.execute(f"SET memory_limit = '{limit}'")
        session.bind_statement(sql)
        written = write_query(project.catalog, project.store, TableName("curated", "big"),
                              session.connection, sql, "overwrite")
        (bound,) = session.bound
        counted = count_scan(session.connection, bound.scan, accepted=written.rows)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tasks = project.catalog.load_iceberg(TableName("curated", "big")).scan().plan_files()
print(json.dumps({
    "csv_mb": csv.stat().st_size / 2**20,
    "growth_mb": (after - before) / 1024,
    "written": written.rows,
    "accepted": counted.accepted,
    "rejects": len(counted.rejects),
    "in_table": sum(task.file.record_count for task in tasks),
}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("route", ["duckdb", "arrow"])
def test_a_csv_larger_than_the_memory_limit_loads(tmp_path: Path, route: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path), str(ROWS), f"{MEMORY_LIMIT_MB}MB", route],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["csv_mb"] > 2 * MEMORY_LIMIT_MB
    assert got["written"] == got["accepted"] == got["in_table"] == ROWS
    assert got["rejects"] == 0
    # Holding the rows (as an Arrow table would) takes more than the file itself.
    assert got["growth_mb"] < 0.75 * got["csv_mb"], got
