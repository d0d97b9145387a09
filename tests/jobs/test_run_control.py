"""Run states, retries with backoff, timeouts and max_concurrent_runs."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from lakelet.catalog import TableName
from lakelet.errors import CatalogError, ConfigError
from lakelet.jobs import JobRunFailed, RunRecord, RunStore, run_job
from lakelet.project import Project, init_project


def project_with(tmp_path: Path, sql: str, extra: str = "") -> Project:
    project = init_project(tmp_path / "p")
    project.catalog.write(TableName("curated", "src"), pa.table({"x": [1, 2, 3]}), "overwrite")
    (project.root / "jobs" / "j.sql").write_text(sql)
    (project.root / "lakelet.toml").open("a").write(
        f'\n[jobs.j]\nsql = "jobs/j.sql"\noutput = "curated.out"\n{extra}\n'
    )
    return Project.open(project.root)


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("lakelet.jobs.runner.RETRY_BACKOFF_S", 0.01)


def statuses(project: Project) -> list[tuple[int, str]]:
    runs = RunStore(project.metadata).recent("j")
    return sorted((r.attempt, r.status) for r in runs)


def test_a_timeout_interrupts_the_query_and_is_retried(tmp_path: Path) -> None:
    slow = "SELECT count(*) AS n FROM range(100000000000) a, (SELECT * FROM curated.src) b"
    project = project_with(tmp_path, slow, "timeout = 1\nmax_retries = 1")
    started = datetime.now(UTC)
    with pytest.raises(JobRunFailed, match="exceeded its timeout of 1 s"):
        run_job(project, "j")
    assert (datetime.now(UTC) - started).total_seconds() < 20
    assert statuses(project) == [(0, "timeout"), (1, "timeout")]
    assert project.catalog.kind(TableName("curated", "out")) is None


def test_a_fault_is_retried_and_the_retry_succeeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lakelet.catalog.bulk as bulk

    project = project_with(tmp_path, "SELECT x FROM curated.src", "max_retries = 2")
    real = bulk.write_query  # the job has no rules: it streams its rows (bulk write)
    calls = {"n": 0}

    def flaky(*args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] == 1:
            raise CatalogError("the catalog database is locked")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(bulk, "write_query", flaky)
    record = run_job(project, "j")
    assert (record.attempt, record.status, record.rows_written) == (1, "succeeded", 3)
    assert statuses(project) == [(0, "failed"), (1, "succeeded")]


def test_user_errors_are_not_retried(tmp_path: Path) -> None:
    project = project_with(tmp_path, "SELECT nope FROM curated.src", "max_retries = 3")
    with pytest.raises(JobRunFailed) as info:
        run_job(project, "j")
    assert info.value.exit_code == 2
    assert statuses(project) == [(0, "failed")]


def _active_run(project: Project, pid: int) -> None:
    RunStore(project.metadata).start(
        RunRecord(
            run_id=f"jr_other_{pid}",
            job="j",
            status="running",
            engine="duckdb",
            started_at=datetime.now(UTC),
            output="curated.out",
            mode="overwrite",
            pid=pid,
        )
    )


def test_max_concurrent_runs(tmp_path: Path) -> None:
    project = project_with(tmp_path, "SELECT x FROM curated.src")
    _active_run(project, os.getpid())  # alive: this very process
    with pytest.raises(JobRunFailed, match="already has 1 run") as info:
        run_job(project, "j")
    assert info.value.exit_code == 2
    RunStore(project.metadata).set_status("jr_other_" + str(os.getpid()), "succeeded")
    _active_run(project, 2**22 + 12345)  # no such process: a crashed run
    assert run_job(project, "j").status == "succeeded"
    crashed = RunStore(project.metadata).get(f"jr_other_{2**22 + 12345}")
    assert crashed.status == "failed" and "process ended" in (crashed.error or "")


@pytest.mark.parametrize("extra", ["max_retries = -1", "timeout = 0", "max_concurrent_runs = 0"])
def test_bad_run_settings(tmp_path: Path, extra: str) -> None:
    project = project_with(tmp_path, "SELECT 1", extra)
    with pytest.raises(ConfigError, match="must be at least"):
        run_job(project, "j")
