"""Bookmarks: only new raw files and new Iceberg data are read; reset and rewind."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from lakelet.catalog import TableName
from lakelet.cli.main import main
from lakelet.crawler import crawler_spec, run_crawler
from lakelet.errors import ConfigError
from lakelet.jobs import JobRunFailed, query, run_job
from lakelet.jobs.bookmarks import bookmark_at
from lakelet.project import Project, init_project

OUT = TableName("curated", "events")


def raw_project(tmp_path: Path) -> Project:
    project = init_project(tmp_path / "p")
    (project.root / "jobs" / "copy.sql").write_text("SELECT id, amount FROM raw.sales")
    (project.root / "lakelet.toml").open("a").write(
        '\n[crawlers.sales]\npath = "raw/sales/"\n'
        '[jobs.copy]\nsql = "jobs/copy.sql"\noutput = "curated.events"\nmode = "append"\n'
        "bookmark = true\n"
    )
    project = Project.open(project.root)
    project.store.put("raw", "sales/a.csv", b"id,amount\n1,10\n2,20\n")
    run_crawler(project, "sales", crawler_spec(project, "sales"))
    return project


def ids(project: Project) -> list[int]:
    return sorted(r["id"] for r in query(project, "SELECT id FROM curated.events").to_pylist())


def test_only_new_files_are_read(tmp_path: Path) -> None:
    project = raw_project(tmp_path)
    first = run_job(project, "copy")
    assert first.rows_read == 2 and ids(project) == [1, 2]
    again = run_job(project, "copy")
    assert again.rows_read == 0 and ids(project) == [1, 2]
    project.store.put("raw", "sales/b.csv", b"id,amount\n3,30\n")
    third = run_job(project, "copy")
    assert third.rows_read == 1 and ids(project) == [1, 2, 3]
    # Touching a file without changing it reads nothing (content hash, not mtime).
    project.store.put("raw", "sales/b.csv", b"id,amount\n3,30\n")
    assert run_job(project, "copy").rows_read == 0
    bookmark = bookmark_at(project.catalog, OUT)
    assert sorted(bookmark.files["raw.sales"]) == ["a.csv", "b.csv"]


def test_reset_rebuilds_and_rewind_refuses_to_double_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = raw_project(tmp_path)  # its output has no _lakelet_file column
    first = run_job(project, "copy")
    project.store.put("raw", "sales/b.csv", b"id,amount\n3,30\n")
    second = run_job(project, "copy")
    root = str(project.root)
    # Rewinding re-reads b.csv, whose rows the output holds and cannot tell apart.
    assert main(["-C", root, "run", "copy", "--rewind-to", first.run_id]) == 2
    assert "raw/sales/b.csv" in capsys.readouterr().err
    assert ids(project) == [1, 2, 3]
    assert project.catalog.current_snapshot_id(OUT) == second.snapshot_written
    # A reset reads everything again and rebuilds the output from it.
    assert main(["-C", root, "run", "copy", "--reset-bookmark"]) == 0
    assert ids(project) == [1, 2, 3]
    assert sorted(bookmark_at(project.catalog, OUT).files["raw.sales"]) == ["a.csv", "b.csv"]
    assert main(["-C", root, "run", "copy", "--rewind-to", "jr_nope"]) == 2


def test_rewind_replaces_rows_when_the_output_keeps_their_file(tmp_path: Path) -> None:
    project = raw_project(tmp_path)
    (project.root / "jobs" / "copy.sql").write_text("SELECT * FROM raw.sales")
    first = run_job(project, "copy")
    project.store.put("raw", "sales/b.csv", b"id,amount\n3,30\n")
    run_job(project, "copy")
    rewound = run_job(project, "copy", rewind_to=first.run_id)
    assert rewound.rows_read == 1  # b.csv again, as after the first run
    assert ids(project) == [1, 2, 3]  # its rows replaced, not added twice


def test_iceberg_inputs_read_only_new_snapshots(tmp_path: Path) -> None:
    project = init_project(tmp_path / "p")
    source = TableName("curated", "src")
    project.catalog.write(source, pa.table({"id": [1, 2]}), "append")
    (project.root / "jobs" / "copy.sql").write_text("SELECT id FROM curated.src")
    (project.root / "lakelet.toml").open("a").write(
        '\n[jobs.copy]\nsql = "jobs/copy.sql"\noutput = "curated.events"\nmode = "append"\n'
        "bookmark = true\n"
    )
    project = Project.open(project.root)
    assert run_job(project, "copy").rows_written == 2
    assert run_job(project, "copy").rows_written == 0
    project.catalog.write(source, pa.table({"id": [3]}), "append")
    assert run_job(project, "copy").rows_written == 1
    assert ids(project) == [1, 2, 3]
    # A rewritten source is read in full.
    project.catalog.write(source, pa.table({"id": [7]}), "overwrite")
    assert run_job(project, "copy").rows_written == 1
    assert ids(project) == [1, 2, 3, 7]


def test_bookmarks_need_append_and_a_bookmarked_job(tmp_path: Path) -> None:
    project = raw_project(tmp_path)
    (project.root / "lakelet.toml").open("a").write(
        '[jobs.over]\nsql = "jobs/copy.sql"\noutput = "curated.o"\nbookmark = true\n'
        '[jobs.plain]\nsql = "jobs/copy.sql"\noutput = "curated.p"\n'
    )
    project = Project.open(project.root)
    with pytest.raises(ConfigError, match='needs mode = "append"'):
        run_job(project, "over")
    with pytest.raises(JobRunFailed, match="has no bookmark"):
        run_job(project, "plain", reset_bookmark=True)
