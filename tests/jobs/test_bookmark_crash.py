"""A bookmarked job killed mid-run (SIGKILL), then run again: no duplicates, nothing skipped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lakelet.catalog import TableName
from lakelet.crawler import crawler_spec, run_crawler
from lakelet.jobs import RunStore, query, run_job
from lakelet.project import Project, init_project

OUT = TableName("curated", "events")
# ${spin} keeps the query busy long enough to be killed in the middle of it.
SQL = (
    "SELECT * FROM raw.sales "
    "WHERE (SELECT count(*) FROM range(${spin}) t(i) WHERE hash(i) % 7 = 0) >= 0"
)
START_TIMEOUT_S = 60.0


def project_with(tmp_path: Path) -> Project:
    project = init_project(tmp_path / "p")
    (project.root / "jobs" / "copy.sql").write_text(SQL)
    (project.root / "lakelet.toml").open("a").write(
        '\n[crawlers.sales]\npath = "raw/sales/"\n'
        '[jobs.copy]\nsql = "jobs/copy.sql"\noutput = "curated.events"\nmode = "append"\n'
        "bookmark = true\n"
    )
    project = Project.open(project.root)
    project.store.put("raw", "sales/a.csv", b"id,amount\n1,10\n2,20\n")
    project.store.put("raw", "sales/b.csv", b"id,amount\n3,30\n")
    run_crawler(project, "sales", crawler_spec(project, "sales"))
    return project


def rows(project: Project) -> list[tuple[int, int, str]]:
    table = query(project, "SELECT id, amount, _lakelet_file AS f FROM curated.events")
    return sorted((r["id"], r["amount"], r["f"]) for r in table.to_pylist())


def wait_until_running(project: Project, process: subprocess.Popen[bytes]) -> str:
    runs = RunStore(project.metadata)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        assert process.poll() is None, "the run ended before it could be killed"
        running = [r for r in runs.recent("copy") if r.status == "running"]
        if running:
            return running[0].run_id
        time.sleep(0.05)
    pytest.fail("the run never started")


@pytest.mark.slow
def test_a_run_killed_mid_run_is_redone_exactly(tmp_path: Path) -> None:
    project = project_with(tmp_path)
    run_job(project, "copy", {"spin": "0"})
    committed = project.catalog.current_snapshot_id(OUT)
    project.store.put("raw", "sales/a.csv", b"id,amount\n1,11\n4,40\n")  # changed
    project.store.put("raw", "sales/c.csv", b"id,amount\n5,50\n")  # new

    command = [sys.executable, "-m", "lakelet", "-C", str(project.root), "run", "copy"]
    process = subprocess.Popen(
        [*command, "-p", f"spin={10**13}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        killed = wait_until_running(project, process)
        time.sleep(0.5)  # past hashing the files, inside the query
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == -signal.SIGKILL

    assert project.catalog.current_snapshot_id(OUT) == committed  # nothing written
    assert rows(project) == [
        (1, 10, "raw/sales/a.csv"),
        (2, 20, "raw/sales/a.csv"),
        (3, 30, "raw/sales/b.csv"),
    ]

    rerun = run_job(project, "copy", {"spin": "0"})
    assert rerun.rows_read == 3  # a.csv and c.csv: the killed run recorded no progress
    assert rows(project) == [
        (1, 11, "raw/sales/a.csv"),
        (3, 30, "raw/sales/b.csv"),
        (4, 40, "raw/sales/a.csv"),
        (5, 50, "raw/sales/c.csv"),
    ]
    assert RunStore(project.metadata).get(killed).status == "failed"  # its process ended
