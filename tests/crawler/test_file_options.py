"""Files of one table with layouts of their own (a title line, no header) read right."""

from __future__ import annotations

import duckdb

from lakelet.catalog import TableName
from lakelet.catalog.rawscan import attach_store, plan_raw_scan, raw_files
from lakelet.config import CrawlerSection
from lakelet.crawler import run_crawler
from lakelet.jobs import query
from lakelet.project import Project

TITLED = b"Report 2026\nid,name,qty\n1,a,10\n2,b,20\n3,c,30\n"
PLAIN = b"id,name,qty\n4,d,40\n5,e,50\n"


def crawl(project: Project) -> None:
    run_crawler(project, "sales", CrawlerSection(path="raw/sales/"))


def rejects(project: Project) -> list[tuple[object, ...]]:
    table = project.catalog.raw_table(TableName("raw", "sales"))
    scan = plan_raw_scan(table, raw_files(project.store, table), scan_id="t")
    con = duckdb.connect()
    attach_store(con, project.store)
    con.sql(scan.select_sql).fetchall()  # DuckDB records rejects once the scan is read
    return con.sql(scan.rejects_sql).fetchall()


def ids(project: Project) -> list[int]:
    rows = query(project, "SELECT id FROM raw.sales ORDER BY id").to_pylist()
    return [r["id"] for r in rows]


def test_a_file_with_a_title_line_keeps_every_row(tmp_project: Project) -> None:
    tmp_project.store.put("raw", "sales/a.csv", TITLED)
    tmp_project.store.put("raw", "sales/b.csv", PLAIN)
    crawl(tmp_project)
    assert ids(tmp_project) == [1, 2, 3, 4, 5]
    assert rejects(tmp_project) == []


def test_a_file_without_a_header_keeps_its_first_row(tmp_project: Project) -> None:
    tmp_project.store.put("raw", "sales/a.csv", PLAIN)
    tmp_project.store.put("raw", "sales/b.csv", b"id,name,qty\n6,f,60\n")
    tmp_project.store.put("raw", "sales/c.csv", b"7,g,70\n8,h,80\n9,i,90\n")
    crawl(tmp_project)
    table = tmp_project.catalog.raw_table(TableName("raw", "sales"))
    assert table.dialect["header"] is True
    assert [c.name for c in table.columns][:3] == ["id", "name", "qty"]
    rows = query(tmp_project, "SELECT coalesce(id, col_0) AS id FROM raw.sales ORDER BY 1")
    assert [r["id"] for r in rows.to_pylist()] == [4, 5, 6, 7, 8, 9]
    assert rejects(tmp_project) == []


def test_conversion_rejects_are_on_the_files_own_lines(tmp_project: Project) -> None:
    tmp_project.store.put("raw", "sales/a.csv", PLAIN)
    tmp_project.store.put("raw", "sales/b.csv", b"id,name,qty\n6,f,60\n")
    titled = b"Title\n\nid,name,qty\n7,g,70\n8,h,80\n9,i,90\n"
    tmp_project.store.put("raw", "sales/c.csv", titled)
    crawl(tmp_project)
    tmp_project.store.put("raw", "sales/c.csv", titled.replace(b"80", b"x9"))  # not crawled
    found = rejects(tmp_project)
    assert [(str(r[0]).rsplit("/", 1)[1], r[1], r[4]) for r in found] == [("c.csv", 5, "8,h,x9")]
    assert ids(tmp_project) == [4, 5, 6, 7, 9]


def test_a_later_file_with_its_own_layout_is_read_right(tmp_project: Project) -> None:
    tmp_project.store.put("raw", "sales/b.csv", PLAIN)
    crawl(tmp_project)
    tmp_project.store.put("raw", "sales/a.csv", TITLED)
    crawl(tmp_project)
    assert ids(tmp_project) == [1, 2, 3, 4, 5]
    assert rejects(tmp_project) == []
