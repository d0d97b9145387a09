"""Jobs over Iceberg inputs: results, atomic writes, recorded runs, clear failures."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from lakelet.catalog import TableName
from lakelet.errors import JobNotFoundError, SqlError
from lakelet.jobs import JobRunFailed, RunStore, query, run_job
from lakelet.project import Project, init_project

SALES = TableName("curated", "sales")


def add_job(project: Project, name: str, sql: str, output: str, mode: str = "overwrite") -> None:
    (project.root / "jobs" / f"{name}.sql").write_text(sql, encoding="utf-8")
    with (project.root / "lakelet.toml").open("a", encoding="utf-8") as f:
        f.write(f'\n[jobs.{name}]\nsql = "jobs/{name}.sql"\noutput = "{output}"\nmode = "{mode}"\n')


@pytest.fixture
def project(tmp_path: Path) -> Project:
    project = init_project(tmp_path / "p")
    sales = pa.table(
        {
            "machine": ["m1", "m1", "m2", "m3", "m2"],
            "amount": pa.array(
                [Decimal("1.50"), Decimal("2.25"), Decimal("3.00"), None, Decimal("1.00")],
                pa.decimal128(10, 2),
            ),
        }
    )
    project.catalog.write(SALES, sales, "overwrite")
    add_job(
        project,
        "totals",
        "SELECT machine, sum(amount) AS revenue, count(*) AS n\n"
        "FROM curated.sales WHERE machine <> '${skip}' GROUP BY machine ORDER BY machine",
        "curated.totals",
    )
    return Project.open(project.root)


def test_run_writes_output_and_records_the_run(project: Project) -> None:
    record = run_job(project, "totals", {"skip": "m3"})
    assert record.status == "succeeded"
    out = query(project, "SELECT machine, revenue, n FROM curated.totals ORDER BY machine")
    assert out.to_pylist() == [
        {"machine": "m1", "revenue": Decimal("3.75"), "n": 2},
        {"machine": "m2", "revenue": Decimal("4.00"), "n": 2},
    ]
    assert record.rows_read == 5 and record.rows_written == 2 and record.rows_rejected == 0
    assert record.snapshots_read == {"curated.sales": project.catalog.current_snapshot_id(SALES)}
    assert record.snapshot_written == project.catalog.current_snapshot_id(
        TableName("curated", "totals")
    )
    stored = RunStore(project.metadata).get(record.run_id)
    assert (stored.status, stored.rows_read, stored.rows_written) == ("succeeded", 5, 2)
    assert stored.params == {"skip": "m3"}
    assert stored.duration_s is not None and stored.duration_s > 0


def test_overwrite_replaces_and_append_adds(project: Project) -> None:
    run_job(project, "totals", {"skip": "m3"})
    run_job(project, "totals", {"skip": "m3"})
    count = query(project, "SELECT count(*) AS c FROM curated.totals").to_pylist()
    assert count == [{"c": 2}]
    add_job(project, "log", "SELECT machine FROM curated.sales", "curated.log", mode="append")
    project = Project.open(project.root)
    run_job(project, "log")
    run_job(project, "log")
    assert query(project, "SELECT count(*) AS c FROM curated.log").to_pylist() == [{"c": 10}]


def test_sql_error_fails_the_run_and_writes_nothing(project: Project) -> None:
    add_job(project, "broken", "SELECT no_such_column FROM curated.sales", "curated.broken")
    project = Project.open(project.root)
    with pytest.raises(JobRunFailed) as info:
        run_job(project, "broken")
    assert info.value.exit_code == 2
    assert "no_such_column" in str(info.value)
    assert project.catalog.kind(TableName("curated", "broken")) is None
    (stored,) = RunStore(project.metadata).recent("broken")
    assert stored.status == "failed" and "no_such_column" in (stored.error or "")


def test_unknown_table_and_job_and_param(project: Project) -> None:
    add_job(project, "ghost", "SELECT * FROM curated.ghost", "curated.out")
    project = Project.open(project.root)
    with pytest.raises(JobRunFailed, match=r"no table curated\.ghost.*curated\.sales"):
        run_job(project, "ghost")
    with pytest.raises(JobNotFoundError, match="did you mean 'totals'"):
        run_job(project, "total")
    with pytest.raises(JobRunFailed, match=r"\$\{skip\} has no value"):
        run_job(project, "totals")


def test_failed_run_keeps_previous_output(project: Project) -> None:
    run_job(project, "totals", {"skip": "m3"})
    before = project.catalog.current_snapshot_id(TableName("curated", "totals"))
    (project.root / "jobs" / "totals.sql").write_text(
        "SELECT 1/0 AS x FROM curated.sales WHERE machine = '${skip}' AND error('boom') IS NULL"
    )
    with pytest.raises(JobRunFailed, match="boom"):
        run_job(Project.open(project.root), "totals", {"skip": "m1"})
    assert project.catalog.current_snapshot_id(TableName("curated", "totals")) == before


def test_query_errors_are_user_errors(project: Project) -> None:
    with pytest.raises(SqlError, match="syntax error"):
        query(project, "SELEC 1")
    with pytest.raises(SqlError, match="one statement"):
        query(project, "SELECT 1; SELECT 2")
    with pytest.raises(SqlError, match="unknown catalog"):
        query(project, "SELECT * FROM elsewhere.curated.sales")
