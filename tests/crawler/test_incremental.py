"""Incremental crawls through the manifest, bad input, statistics, grouping by schema."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

from lakelet.catalog import Column, TableName
from lakelet.config import CrawlerSection
from lakelet.crawler import CrawlReport, run_crawler
from lakelet.crawler.files import DataFile
from lakelet.crawler.grouping import group_by_folder, group_by_schema, levels_below
from lakelet.crawler.manifest import Manifest
from lakelet.errors import UserError
from lakelet.project import Project

SALES = b"id,machine,price\n1,m1,1.5\n2,m2,2.5\n"
TABLE = TableName("raw", "sales")


READ: dict[int, list[str]] = {}


def crawl(project: Project, full: bool = False, **options: object) -> CrawlReport:
    """Crawl, noting which files the crawl read (its progress calls)."""
    spec = CrawlerSection(path="raw/sales/", **options)  # type: ignore[arg-type]
    files: list[str] = []
    report = run_crawler(
        project, "sales", spec, full=full, progress=lambda d, t, k: files.append(k)
    )
    READ[id(report)] = files
    return report


def read_keys(report: CrawlReport) -> list[str]:
    return READ[id(report)]


def test_only_new_files_are_read(any_project: Project) -> None:
    store = any_project.store
    store.put("raw", "sales/date=2026-11-27/a.csv", SALES)
    store.put("raw", "sales/date=2026-11-27/b.csv", SALES)
    first = crawl(any_project)
    assert len(read_keys(first)) == 2

    nothing = crawl(any_project)
    assert read_keys(nothing) == []
    assert [(t.action, t.files) for t in nothing.tables] == [("unchanged", 2)]

    store.put("raw", "sales/date=2026-11-28/c.csv", b"id,machine,price\n3,m3,3.5\n")
    third = crawl(any_project)
    assert read_keys(third) == ["raw/sales/date=2026-11-28/c.csv"]
    assert third.tables[0].files == 3
    stats = any_project.catalog.raw.stats(TABLE)
    assert stats is not None and stats["rows"] == 5

    full = crawl(any_project, full=True)
    assert len(read_keys(full)) == 3 and full.full


def test_a_changed_file_is_read_again_and_a_touched_one_is_not(tmp_project: Project) -> None:
    store = tmp_project.store
    store.put("raw", "sales/a.csv", SALES)
    crawl(tmp_project)
    path = os.path.join(store.root, "raw", "sales", "a.csv")
    later = time.time() + 5
    os.utime(path, (later, later))
    touched = crawl(tmp_project)
    assert read_keys(touched) == ["raw/sales/a.csv"]  # looked at: size/mtime differ…
    assert touched.tables[0].action == "unchanged"  # …but the hash says same bytes
    store.put("raw", "sales/a.csv", b"id,machine,price,qty\n1,m1,1.5,4\n")
    changed = crawl(tmp_project)
    assert changed.tables[0].action == "updated"
    assert changed.tables[0].diff.columns.added == [Column("qty", "BIGINT")]


def test_removing_a_file_updates_statistics(tmp_project: Project) -> None:
    tmp_project.store.put("raw", "sales/a.csv", SALES)
    tmp_project.store.put("raw", "sales/b.csv", b"id,machine,price\n9,m9,\n")
    crawl(tmp_project)
    stats = tmp_project.catalog.raw.stats(TABLE)
    assert stats is not None
    assert stats["rows"] == 3
    price = stats["columns"]["price"]
    assert (price["nulls"], price["min"], price["max"]) == (1, 1.5, 2.5)
    assert stats["columns"]["machine"]["distinct"] == 3
    tmp_project.store.delete("raw", "sales/b.csv")
    crawl(tmp_project)
    stats = tmp_project.catalog.raw.stats(TABLE)
    assert stats is not None and stats["rows"] == 2
    assert stats["columns"]["price"]["nulls"] == 0


def test_partition_statistics(tmp_project: Project) -> None:
    tmp_project.store.put("raw", "sales/date=2026-11-27/a.csv", SALES)
    tmp_project.store.put("raw", "sales/date=2026-11-29/b.csv", SALES)
    crawl(tmp_project)
    stats = tmp_project.catalog.raw.stats(TABLE)
    assert stats is not None
    assert stats["columns"]["date"] == {
        "type": "DATE",
        "nulls": 0,
        "min": "2026-11-27",
        "max": "2026-11-29",
        "distinct": 2,
    }


def test_bad_input_is_skipped_with_reasons_and_loses_nothing(tmp_project: Project) -> None:
    store = tmp_project.store
    store.put("raw", "sales/date=1/good.csv", SALES)
    store.put("raw", "sales/date=1/garbage.csv", bytes(range(256)) * 40)
    store.put("raw", "sales/date=2/zero.csv", b"")
    store.put("raw", "sales/date=2/good.csv", SALES)
    report = crawl(tmp_project)
    assert [(t.name, t.files) for t in report.tables] == [("raw.sales", 2)]
    reasons = {
        s.key.rsplit("/", 2)[-2] + "/" + s.key.rsplit("/", 1)[-1]: s.reason for s in report.skipped
    }
    assert reasons == {
        "date=1/garbage.csv": "binary data, not text: not a CSV or JSON file",
        "date=2/zero.csv": "empty file",
    }
    # the skipped files are remembered with their reason and still reported
    again = crawl(tmp_project)
    assert read_keys(again) == []
    assert {s.key for s in again.skipped} == {s.key for s in report.skipped}


def test_a_file_that_disappears_during_the_crawl(
    tmp_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lakelet.crawler import crawler as crawler_module
    from lakelet.crawler.files import list_files

    store = tmp_project.store
    store.put("raw", "sales/a.csv", SALES)
    store.put("raw", "sales/b.csv", SALES)
    real = list_files

    def list_then_delete(*args: Any) -> Any:
        listing = real(*args)
        store.delete("raw", "sales/b.csv")
        return listing

    monkeypatch.setattr(crawler_module, "list_files", list_then_delete)
    report = crawl(tmp_project)
    assert [t.files for t in report.tables] == [1]
    (skipped,) = report.skipped
    assert skipped.key == "raw/sales/b.csv" and "disappear" in skipped.reason


def test_sampling_never_narrows_a_type(tmp_project: Project) -> None:
    header = "id,price\n"
    for i in range(6):
        tmp_project.store.put("raw", f"sales/f{i}.csv", f"{header}{i},{i}\n".encode())
    tmp_project.store.put("raw", "sales/f3b.csv", f"{header}7,7.25\n".encode())
    crawl(tmp_project, sample_files=1)
    columns = tmp_project.catalog.raw_table(TABLE).columns
    assert columns == [Column("id", "BIGINT"), Column("price", "DOUBLE")]
    manifest = Manifest(tmp_project.metadata).load("sales")
    assert manifest[("raw", "sales/f3b.csv")].schema.rows == 1  # type: ignore[union-attr]


def test_settings_change_recrawls_everything(tmp_project: Project) -> None:
    tmp_project.store.put("raw", "sales/a.csv", SALES)
    crawl(tmp_project)
    changed = crawl(tmp_project, exclude=["*.tmp"])
    assert changed.full and read_keys(changed) == ["raw/sales/a.csv"]


def _file(relative: str, fmt: str = "csv") -> DataFile:
    return DataFile("raw", f"sales/{relative}", relative, f"/lake/raw/sales/{relative}", 10, fmt)


def test_schema_grouping_merges_compatible_folders_into_partitions() -> None:
    files = [_file("2026/01/a.csv"), _file("2026/02/b.csv"), _file("2027/01/c.csv")]
    shape = ("csv", frozenset({"id", "price"}))
    groups = group_by_schema("raw", "sales/", files, {f.key: shape for f in files})
    assert [(g.name, g.location, g.nested, len(g.files)) for g in groups] == [
        ("sales", "raw/sales/", True, 3)
    ]


def test_schema_grouping_splits_folders_that_disagree_but_not_for_a_stray_file() -> None:
    machines = [_file("machines/m1.csv"), _file("machines/m2.csv"), _file("machines/odd.csv")]
    refunds = [_file("refunds/r.csv")]
    own = [_file("date=1/s.csv")]
    profiles = {f.key: ("csv", frozenset({"machine", "city"})) for f in machines}
    profiles["sales/machines/odd.csv"] = ("csv", frozenset({"x", "y", "z"}))
    profiles["sales/refunds/r.csv"] = ("csv", frozenset({"refund", "amount"}))
    profiles["sales/date=1/s.csv"] = ("csv", frozenset({"id", "price"}))
    groups = group_by_schema("raw", "sales/", machines + refunds + own, profiles)
    assert [(g.name, g.nested, len(g.files)) for g in groups] == [
        ("sales", False, 1),
        ("machines", True, 3),
        ("refunds", True, 1),
    ]


def test_schema_grouping_gives_partition_n_columns(tmp_project: Project) -> None:
    tmp_project.store.put("raw", "sales/2026/11/a.csv", SALES)
    tmp_project.store.put("raw", "sales/2026/12/b.csv", b"id,machine,price\n3,m3,3.5\n")
    tmp_project.store.put("raw", "sales/2027/01/c.csv", b"id,machine,price\n4,m4,4.5\n")
    report = crawl(tmp_project)
    assert [t.name for t in report.tables] == ["raw.sales"]
    table = tmp_project.catalog.raw_table(TABLE)
    assert table.partition_keys == [
        Column("partition_0", "BIGINT"),
        Column("partition_1", "BIGINT"),
    ]
    stats = tmp_project.catalog.raw.stats(TABLE)
    assert stats is not None and stats["columns"]["partition_0"]["max"] == 2027


def test_folder_grouping_and_table_level() -> None:
    files = [_file("eu/fr/a.csv"), _file("eu/de/b.csv"), _file("us/c.csv"), _file("x.csv")]
    by_level = group_by_folder("raw", "sales/", files, levels_below("sales/", 4))
    assert [(g.location, g.nested) for g in by_level] == [
        ("raw/sales/", False),
        ("raw/sales/eu/de/", True),
        ("raw/sales/eu/fr/", True),
        ("raw/sales/us/", False),
    ]
    with pytest.raises(UserError, match="table_level = 1 is above the crawl path"):
        levels_below("sales/", 1)


def test_table_level_option_in_a_crawl(tmp_project: Project) -> None:
    tmp_project.store.put("raw", "sales/machines/m.csv", b"id,price\n1,2\n")
    tmp_project.store.put("raw", "sales/refunds/r.csv", b"id,price\n1,2\n")
    merged = crawl(tmp_project)
    assert [t.name for t in merged.tables] == ["raw.sales"]
    split = crawl(tmp_project, grouping="folder")
    assert sorted(t.name for t in split.tables) == ["raw.machines", "raw.refunds"]
