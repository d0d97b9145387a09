"""Schema evolution policies, on_delete, --plan and --undo."""

from __future__ import annotations

import pytest

from lakelet.catalog import Column, TableName
from lakelet.config import CrawlerSection
from lakelet.crawler import CrawlReport, run_crawler
from lakelet.crawler.policy import SchemaChangeRefused, evolve_columns, widen_type
from lakelet.crawler.undo import undo_crawl
from lakelet.errors import UserError
from lakelet.project import Project

V1 = b"id,price\n1,2\n2,3\n"
V2_WIDER = b"id,price,qty\n3,2.5,7\n"
SALES = TableName("raw", "sales")


def crawl(project: Project, **options: object) -> CrawlReport:
    spec = CrawlerSection(path="raw/sales/", **options)  # type: ignore[arg-type]
    return run_crawler(project, "sales", spec)


@pytest.mark.parametrize(
    ("old", "new", "widened"),
    [
        ("INTEGER", "BIGINT", "BIGINT"),
        ("BIGINT", "INTEGER", "BIGINT"),
        ("BIGINT", "DECIMAL(10,2)", "DECIMAL(21,2)"),
        ("DECIMAL(10,2)", "DOUBLE", "DOUBLE"),
        ("DOUBLE", "BIGINT", "DOUBLE"),
        ("FLOAT", "DOUBLE", "DOUBLE"),
        ("DOUBLE", "VARCHAR", "VARCHAR"),
        ("DATE", "TIMESTAMP", "TIMESTAMP"),
        ("BOOLEAN", "BIGINT", "VARCHAR"),
        ("DECIMAL(5,1)", "DECIMAL(10,3)", "DECIMAL(10,3)"),
    ],
)
def test_widening_ladder(old: str, new: str, widened: str) -> None:
    assert widen_type(old, new) == widened


def test_update_keeps_columns_and_never_narrows() -> None:
    old = [Column("id", "BIGINT"), Column("price", "DOUBLE"), Column("gone", "VARCHAR")]
    new = [Column("id", "INTEGER"), Column("price", "BIGINT"), Column("qty", "BIGINT")]
    assert evolve_columns(old, new) == [
        Column("id", "BIGINT"),
        Column("price", "DOUBLE"),
        Column("gone", "VARCHAR"),
        Column("qty", "BIGINT"),
    ]


def test_update_widens_and_adds_a_version(tmp_project: Project) -> None:
    tmp_project.store.put("raw", "sales/a.csv", V1)
    crawl(tmp_project)
    tmp_project.store.put("raw", "sales/b.csv", V2_WIDER)
    report = crawl(tmp_project)
    (table,) = report.tables
    assert (table.action, table.version) == ("updated", 2)
    assert "price BIGINT→DOUBLE" in table.to_dict()["changes"]
    current = tmp_project.catalog.raw_table(SALES)
    assert [(c.name, c.type) for c in current.columns] == [
        ("id", "BIGINT"),
        ("price", "DOUBLE"),
        ("qty", "BIGINT"),
    ]


def test_update_keeps_a_column_whose_files_are_gone(tmp_project: Project) -> None:
    tmp_project.store.put("raw", "sales/a.csv", V1)
    tmp_project.store.put("raw", "sales/b.csv", V2_WIDER)
    crawl(tmp_project)
    tmp_project.store.delete("raw", "sales/b.csv")
    report = crawl(tmp_project)
    assert report.tables[0].action == "unchanged"
    names = [c.name for c in tmp_project.catalog.raw_table(SALES).columns]
    assert names == ["id", "price", "qty"]


def test_log_reports_and_keeps_the_version(tmp_project: Project) -> None:
    tmp_project.store.put("raw", "sales/a.csv", V1)
    crawl(tmp_project, on_change="log")
    tmp_project.store.put("raw", "sales/b.csv", V2_WIDER)
    report = crawl(tmp_project, on_change="log")
    (table,) = report.tables
    assert (table.action, table.version) == ("logged", 1)
    assert [c.name for c in table.diff.columns.added] == ["qty"]
    assert len(tmp_project.catalog.raw.versions(SALES)) == 1


def test_fail_registers_nothing(tmp_project: Project) -> None:
    tmp_project.store.put("raw", "sales/a.csv", V1)
    crawl(tmp_project, on_change="fail")
    tmp_project.store.put("raw", "sales/b.csv", V2_WIDER)
    with pytest.raises(SchemaChangeRefused, match=r"raw\.sales: \+qty BIGINT"):
        crawl(tmp_project, on_change="fail")
    assert len(tmp_project.catalog.raw.versions(SALES)) == 1


@pytest.mark.parametrize(
    ("policy", "action", "listed"),
    [("deprecate", "deprecated", True), ("delete", "deleted", False)],
)
def test_on_delete(tmp_project: Project, policy: str, action: str, listed: bool) -> None:
    tmp_project.store.put("raw", "sales/machines/m.csv", b"machine,city\nm1,Lyon\n")
    tmp_project.store.put("raw", "sales/refunds/r.csv", b"refund,amount\n1,2.5\n")
    crawl(tmp_project, on_delete=policy)
    tmp_project.store.delete("raw", "sales/refunds/r.csv")
    report = crawl(tmp_project, on_delete=policy)
    assert report.table("refunds").action == action
    refunds = TableName("raw", "refunds")
    assert (refunds in tmp_project.catalog.raw.names()) is listed
    history = tmp_project.catalog.raw.versions(refunds)
    assert [v.status for v in history] == ["active", action]


def test_on_delete_log_keeps_the_table(tmp_project: Project) -> None:
    tmp_project.store.put("raw", "sales/machines/m.csv", b"machine,city\nm1,Lyon\n")
    tmp_project.store.put("raw", "sales/refunds/r.csv", b"refund,amount\n1,2.5\n")
    crawl(tmp_project, on_delete="log")
    tmp_project.store.delete("raw", "sales/refunds/r.csv")
    report = crawl(tmp_project, on_delete="log")
    assert report.table("refunds").action == "logged"
    assert tmp_project.catalog.raw_table(TableName("raw", "refunds")).status == "active"


def test_plan_changes_nothing_and_shows_the_diff(tmp_project: Project) -> None:
    tmp_project.store.put("raw", "sales/a.csv", V1)
    crawl(tmp_project)
    tmp_project.store.put("raw", "sales/b.csv", V2_WIDER)
    spec = CrawlerSection(path="raw/sales/")
    planned = run_crawler(tmp_project, "sales", spec, plan=True)
    assert (planned.tables[0].action, planned.tables[0].version) == ("updated", 2)
    assert len(tmp_project.catalog.raw.versions(SALES)) == 1
    # the plan remembered nothing: the real crawl still sees the new file
    assert crawl(tmp_project).tables[0].action == "updated"


def test_undo_restores_the_previous_version_as_a_new_one(tmp_project: Project) -> None:
    tmp_project.store.put("raw", "sales/a.csv", V1)
    crawl(tmp_project)
    tmp_project.store.put("raw", "sales/b.csv", V2_WIDER)
    crawl(tmp_project)

    report = undo_crawl(tmp_project, "sales")

    assert [(t.action, t.version) for t in report.tables] == [("restored", 3)]
    versions = tmp_project.catalog.raw.versions(SALES)
    assert [v.version for v in versions] == [1, 2, 3]
    assert versions[2].columns == versions[0].columns
    assert versions[2].properties["restored_from"] == 1
    # the first crawl can be undone too: the table it created is deleted
    assert [t.action for t in undo_crawl(tmp_project, "sales").tables] == ["deleted"]
    assert tmp_project.catalog.raw.find(SALES) is None
    with pytest.raises(UserError, match="no crawl to undo"):
        undo_crawl(tmp_project, "sales")


def test_undo_refuses_when_the_table_moved_on(tmp_project: Project) -> None:
    tmp_project.store.put("raw", "sales/a.csv", V1)
    crawl(tmp_project)
    table = tmp_project.catalog.raw_table(SALES)
    tmp_project.catalog.raw.register(table.with_status("deprecated"))
    with pytest.raises(UserError, match="not at version 1"):
        undo_crawl(tmp_project, "sales")
    assert tmp_project.catalog.raw.latest(SALES).version == 2  # type: ignore[union-attr]
