"""A crawl that only finds new files (``fastpath.only_added``) ends as the full path would.

Each case crawls the same lake in two projects, adds the same files, and crawls again:
once as usual and once with the shortcut switched off. Reports, catalog versions,
statistics and the manifest must agree, and the shortcut must (or must not) be taken.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import lakelet.crawler.fastpath as crawl_module
from lakelet.catalog import TableName
from lakelet.config import CrawlerSection
from lakelet.crawler import CrawlReport, run_crawler
from lakelet.crawler.manifest import Manifest
from lakelet.project import Project, init_project

TABLE = TableName("raw", "sales")
HEADER = "id,machine,price,day\n"


def _lake() -> dict[str, str]:
    files = {}
    for day in (1, 2):
        for site in (1, 2):
            for part in range(2):
                rows = "".join(
                    f"{site * 100 + part * 10 + i},m{i},{i}.25,2026-11-0{day}\n" for i in range(3)
                )
                files[f"sales/date=2026-11-0{day}/site={site}/part-{part}.csv"] = HEADER + rows
    return files


def _put(project: Project, files: dict[str, str]) -> None:
    for key, text in files.items():
        project.store.put("raw", key, text.encode())


def _crawl(project: Project, **options: Any) -> CrawlReport:
    spec = CrawlerSection(path="raw/sales/", **options)
    return run_crawler(project, "sales", spec)


def _outcome(project: Project, report: CrawlReport) -> dict[str, Any]:
    """Everything a crawl leaves behind that the two paths must agree on."""
    tables: list[tuple[Any, ...]] = []
    for t in report.tables:
        name = TableName("raw", t.name.split(".", 1)[1])
        current = project.catalog.raw.find(name)
        assert current is not None
        definition = {
            k: getattr(current, k)
            for k in ("location", "format", "columns", "partition_keys", "classification")
        }
        definition["dialect"] = current.dialect
        stats = project.catalog.raw.stats(name)
        tables.append((t.name, t.action, t.version, t.files, t.rows_estimate, t.warnings, t.diff))
        tables.append((current.version, current.status, definition, stats))
    seen = Manifest(project.metadata).load("sales")
    files = sorted((k, s.size, s.signature, s.table, s.schema) for k, s in seen.items())
    return {"tables": tables, "skipped": report.skipped, "files": files}


def _twice(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    added: dict[str, str],
    **options: Any,
) -> tuple[dict[str, Any], dict[str, Any], list[bool]]:
    """The outcome with the shortcut, without it, and whether the shortcut was taken."""
    taken: list[bool] = []
    real = crawl_module.only_added

    def spy(*args: Any) -> Any:
        result = real(*args)
        taken.append(result is not None)
        return result

    outcomes = []
    for label, shortcut in (("fast", spy), ("full", lambda *args: None)):
        project = init_project(tmp_path / label)
        _put(project, _lake())
        _crawl(project, **options)
        _put(project, added)
        monkeypatch.setattr(crawl_module, "only_added", shortcut)
        report = _crawl(project, **options)
        monkeypatch.setattr(crawl_module, "only_added", real)
        outcomes.append(_outcome(project, report))
    return outcomes[0], outcomes[1], taken


@pytest.mark.parametrize("grouping", ["schema", "folder"])
def test_a_new_file_in_an_existing_partition(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, grouping: str
) -> None:
    added = {"sales/date=2026-11-01/site=1/part-9.csv": HEADER + "9,m9,9.50,2026-11-01\n"}
    fast, full, taken = _twice(tmp_path, monkeypatch, added, grouping=grouping)
    assert taken == [True]
    assert fast == full
    report = fast["tables"][0]
    assert report[1:5] == ("unchanged", 1, 9, 25)
    stats = fast["tables"][1][3]
    assert stats["rows"] == 25 and stats["files"] == 9


def test_a_new_file_in_a_new_partition(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    added = {
        "sales/date=2026-12-01/site=7/part-0.csv": HEADER + "9,m9,9.50,2026-12-01\n",
        "sales/date=2026-12-01/site=8/part-0.csv": HEADER + "10,m1,1.50,2026-12-01\n",
    }
    fast, full, taken = _twice(tmp_path, monkeypatch, added)
    assert taken == [True]
    assert fast == full
    assert fast["tables"][0][1:4] == ("unchanged", 1, 10)
    assert fast["tables"][1][3]["columns"]["site"]["max"] == 8


def test_a_new_column_still_evolves_the_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = "id,machine,price,day,qty\n1,m,1.25,2026-11-02,4\n"
    added = {"sales/date=2026-11-02/site=1/part-9.csv": text}
    fast, full, taken = _twice(tmp_path, monkeypatch, added)
    assert taken == [False]
    assert fast == full
    assert fast["tables"][0][1:3] == ("updated", 2)
    assert [c.name for c in fast["tables"][1][2]["columns"]][-1] == "qty"


@pytest.mark.parametrize(
    "added",
    [
        {"sales/date=2026-11-01/site=abc/part-0.csv": HEADER + "1,m1,1.5,2026-11-01\n"},
        {"sales/date=2026-11-01/site=1/part-9.csv": HEADER + "x,m1,1.5,2026-11-01\n"},
        {"sales/date=2026-11-01/site=1/extra/part-0.csv": HEADER + "1,m1,1.5,2026-11-01\n"},
        {"sales/date=2026-11-01/site=1/part-9.csv": "id;machine;price;day\n1;m1;1.5;2026-11-01\n"},
        {"sales/other/part-0.json": '{"a": 1}\n'},
    ],
    ids=["partition-type", "wider-column", "sub-folder", "other-dialect", "other-format"],
)
def test_what_could_change_a_table_takes_the_full_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, added: dict[str, str]
) -> None:
    fast, full, taken = _twice(tmp_path, monkeypatch, added)
    assert taken == [False]
    assert fast == full


def test_a_removed_or_changed_file_takes_the_full_path(tmp_path: Path) -> None:
    project = init_project(tmp_path / "p")
    _put(project, _lake())
    _crawl(project)
    project.store.delete("raw", "sales/date=2026-11-01/site=1/part-0.csv")
    _put(project, {"sales/date=2026-11-01/site=1/part-9.csv": HEADER + "9,m9,9.50,2026-11-01\n"})
    report = _crawl(project)
    assert [(t.action, t.files) for t in report.tables] == [("unchanged", 8)]
    stats = project.catalog.raw.stats(TABLE)
    assert stats is not None and stats["rows"] == 22  # recomputed, not merged


def test_crawls_that_only_add_keep_agreeing(tmp_path: Path) -> None:
    """Several shortcut crawls in a row, then a full one: the same table and row count."""
    project = init_project(tmp_path / "p")
    _put(project, _lake())
    _crawl(project)
    for n in range(3):
        key = f"sales/date=2026-11-0{n + 3}/site=1/part-0.csv"
        _put(project, {key: HEADER + f"{n},m1,1.25,2026-11-01\n"})
        report = _crawl(project)
        assert (report.tables[0].action, report.tables[0].files) == ("unchanged", 9 + n)
    again = _crawl(project)
    assert (again.tables[0].files, again.tables[0].rows_estimate) == (11, 27)
    full = run_crawler(project, "sales", CrawlerSection(path="raw/sales/"), full=True)
    assert full.tables[0].action == "unchanged"
    assert (full.tables[0].files, full.tables[0].rows_estimate) == (11, 27)
