"""A changed raw file replaces the rows it produced before, in one commit with its bookmark."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pyiceberg.table import Transaction

from lakelet.catalog import TableName
from lakelet.crawler import crawler_spec, run_crawler
from lakelet.jobs import JobRunFailed, query, run_job
from lakelet.jobs.bookmarks import PROVENANCE_COLUMN, bookmark_at
from lakelet.jobs.commit import ReprocessedFiles
from lakelet.project import Project, init_project

OUT = TableName("curated", "events")


def project_with(tmp_path: Path, sql: str) -> Project:
    project = init_project(tmp_path / "p")
    (project.root / "jobs" / "copy.sql").write_text(sql)
    (project.root / "lakelet.toml").open("a").write(
        '\n[crawlers.sales]\npath = "raw/sales/"\n'
        '[jobs.copy]\nsql = "jobs/copy.sql"\noutput = "curated.events"\nmode = "append"\n'
        "bookmark = true\n"
    )
    project = Project.open(project.root)
    project.store.put("raw", "sales/day=1/a.csv", b"id,amount\n1,10\n2,20\n")
    project.store.put("raw", "sales/day=1/b.csv", b"id,amount\n3,30\n")
    run_crawler(project, "sales", crawler_spec(project, "sales"))
    return project


def rows(project: Project) -> list[tuple[Any, ...]]:
    table = query(project, f"SELECT id, amount, {PROVENANCE_COLUMN} AS f FROM curated.events")
    return sorted((r["id"], r["amount"], r["f"]) for r in table.to_pylist())


A = "raw/sales/day=1/a.csv"
B = "raw/sales/day=1/b.csv"
C = "raw/sales/day=2/c.csv"


def test_a_changed_file_replaces_its_rows(tmp_path: Path) -> None:
    project = project_with(tmp_path, "SELECT * FROM raw.sales")
    run_job(project, "copy")
    assert rows(project) == [(1, 10, A), (2, 20, A), (3, 30, B)]

    project.store.put("raw", "sales/day=1/a.csv", b"id,amount\n1,11\n4,40\n5,50\n")
    changed = run_job(project, "copy")
    assert (changed.rows_read, changed.rows_written) == (3, 3)
    assert rows(project) == [(1, 11, A), (3, 30, B), (4, 40, A), (5, 50, A)]

    # Rewritten identically (touched): nothing read, nothing changes.
    before = project.catalog.current_snapshot_id(OUT)
    project.store.put("raw", "sales/day=1/a.csv", b"id,amount\n1,11\n4,40\n5,50\n")
    touched = run_job(project, "copy")
    assert (touched.rows_read, touched.rows_written) == (0, 0)
    assert rows(project) == [(1, 11, A), (3, 30, B), (4, 40, A), (5, 50, A)]
    assert touched.snapshot_written != before  # the bookmark still commits

    # A new file is appended; the others keep their rows.
    project.store.put("raw", "sales/day=2/c.csv", b"id,amount\n6,60\n")
    added = run_job(project, "copy")
    assert added.rows_read == 1
    assert rows(project) == [(1, 11, A), (3, 30, B), (4, 40, A), (5, 50, A), (6, 60, C)]

    # A file emptied of rows takes its rows with it; the bookmark is still found
    # after a commit made of a delete and an append.
    project.store.put("raw", "sales/day=1/b.csv", b"id,amount\n")
    run_job(project, "copy")
    assert rows(project) == [(1, 11, A), (4, 40, A), (5, 50, A), (6, 60, C)]
    files = bookmark_at(project.catalog, OUT).files["raw.sales"]
    assert sorted(files) == ["day=1/a.csv", "day=1/b.csv", "day=2/c.csv"]
    assert run_job(project, "copy").rows_read == 0


def test_an_aggregate_per_file_is_replaced(tmp_path: Path) -> None:
    sql = (
        f"SELECT {PROVENANCE_COLUMN}, sum(amount) AS total, count(*) AS n "
        f"FROM raw.sales GROUP BY {PROVENANCE_COLUMN}"
    )
    project = project_with(tmp_path, sql)
    run_job(project, "copy")
    project.store.put("raw", "sales/day=1/a.csv", b"id,amount\n1,1\n")
    run_job(project, "copy")
    totals = query(project, f"SELECT {PROVENANCE_COLUMN} AS f, total, n FROM curated.events")
    assert sorted((r["f"], r["total"], r["n"]) for r in totals.to_pylist()) == [
        (A, 1, 1),
        (B, 30, 1),
    ]


def test_without_the_file_column_a_changed_file_fails_before_writing(tmp_path: Path) -> None:
    project = project_with(tmp_path, "SELECT id, amount FROM raw.sales")
    first = run_job(project, "copy")
    project.store.put("raw", "sales/day=1/a.csv", b"id,amount\n1,11\n")
    with pytest.raises(JobRunFailed) as failed:
        run_job(project, "copy")
    assert isinstance(failed.value.__cause__, ReprocessedFiles)
    assert failed.value.exit_code == 2
    message = str(failed.value)
    assert A in message and B not in message
    assert PROVENANCE_COLUMN in message and "--reset-bookmark" in message
    assert project.catalog.current_snapshot_id(OUT) == first.snapshot_written
    # A new file alone is still fine to append.
    project.store.put("raw", "sales/day=1/a.csv", b"id,amount\n1,10\n2,20\n")
    project.store.put("raw", "sales/day=2/c.csv", b"id,amount\n6,60\n")
    assert run_job(project, "copy").rows_written == 1


def test_an_output_written_without_the_column_is_refused_too(tmp_path: Path) -> None:
    project = project_with(tmp_path, "SELECT id, amount FROM raw.sales")
    run_job(project, "copy")
    (project.root / "jobs" / "copy.sql").write_text("SELECT * FROM raw.sales")
    project.store.put("raw", "sales/day=1/a.csv", b"id,amount\n1,11\n")
    with pytest.raises(JobRunFailed, match="written without a _lakelet_file column"):
        run_job(project, "copy")
    # The way out the message names: rebuild once; from then on files are replaced.
    run_job(project, "copy", reset_bookmark=True)
    assert rows(project) == [(1, 11, A), (3, 30, B)]
    project.store.put("raw", "sales/day=1/a.csv", b"id,amount\n1,12\n")
    run_job(project, "copy")
    assert rows(project) == [(1, 12, A), (3, 30, B)]


def test_a_crash_inside_the_commit_leaves_nothing_half_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = project_with(tmp_path, "SELECT * FROM raw.sales")
    run_job(project, "copy")
    committed = project.catalog.current_snapshot_id(OUT)
    project.store.put("raw", "sales/day=1/a.csv", b"id,amount\n1,11\n")
    project.store.put("raw", "sales/day=2/c.csv", b"id,amount\n6,60\n")

    def crash(self: Transaction) -> None:
        raise OSError("the machine lost power")  # after the delete and append were staged

    with monkeypatch.context() as patch:
        patch.setattr(Transaction, "commit_transaction", crash)
        with pytest.raises(JobRunFailed, match="lost power"):
            run_job(project, "copy")
    assert project.catalog.current_snapshot_id(OUT) == committed
    assert rows(project) == [(1, 10, A), (2, 20, A), (3, 30, B)]

    rerun = run_job(project, "copy")
    assert rerun.rows_read == 2  # nothing skipped: a.csv and c.csv again
    assert rows(project) == [(1, 11, A), (3, 30, B), (6, 60, C)]
