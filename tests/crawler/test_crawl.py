"""Crawls of a project's lake: tables, partitions, versions, reports."""

from __future__ import annotations

import gzip
import io
import json
from datetime import date

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakelet.catalog import Column, TableName
from lakelet.catalog.rawscan import attach_store, plan_raw_scan, raw_files
from lakelet.config import CrawlerSection
from lakelet.crawler import CrawlReport, crawler_spec, run_crawler
from lakelet.errors import CrawlerNotFoundError, UserError
from lakelet.project import Project

SALES_V1 = b"id,machine,price\n1,m1,1.5\n2,m2,2.5\n"
SALES_V2 = b"id,machine,price,qty\n3,m3,3.5,7\n"


def crawl(project: Project, path: str = "raw/sales/", **options: object) -> CrawlReport:
    return run_crawler(project, "sales", CrawlerSection(path=path, **options))  # type: ignore[arg-type]


def read(project: Project, name: str, columns: str = "*") -> list[tuple[object, ...]]:
    """The rows of a raw table read through rawscan, ordered."""
    table = project.catalog.raw_table(TableName.parse(name))
    scan = plan_raw_scan(table, raw_files(project.store, table), scan_id="t")
    con = duckdb.connect()
    attach_store(con, project.store)
    return con.sql(f"SELECT {columns} FROM ({scan.select_sql}) ORDER BY ALL").fetchall()


def test_sub_folders_become_tables_and_stray_files_do_not_break(tmp_project: Project) -> None:
    store = tmp_project.store
    store.put("raw", "sales/machines/m.csv", b"machine,city\nm1,Lyon\nm2,Nice\n")
    store.put("raw", "sales/refunds/r.jsonl", b'{"id": 1, "amount": 2.5}\n')
    store.put("raw", "sales/refunds/empty.jsonl", b"")
    store.put("raw", "sales/machines/_SUCCESS", b"")
    store.put("raw", "sales/machines/.hidden.csv", b"x\n1\n")
    store.put("raw", "sales/readme.md", b"# notes")

    report = crawl(tmp_project)

    assert [(t.name, t.action, t.version, t.files) for t in report.tables] == [
        ("raw.machines", "created", 1, 1),
        ("raw.refunds", "created", 1, 1),
    ]
    assert {(s.key, s.reason) for s in report.skipped} == {
        ("raw/sales/refunds/empty.jsonl", "empty file"),
        (
            "raw/sales/readme.md",
            "unknown format: no classifier was sure enough (best: builtin:csv at 10%: "
            "no delimiter splits the lines into two or more fields)",
        ),
    }
    machines = tmp_project.catalog.raw_table(TableName("raw", "machines"))
    assert machines.columns == [Column("machine", "VARCHAR"), Column("city", "VARCHAR")]
    assert machines.location == "raw/sales/machines/"
    assert machines.classification == "csv"
    assert machines.crawler == "sales"
    assert machines.properties["files"] == 1
    refunds = tmp_project.catalog.raw_table(TableName("raw", "refunds"))
    assert refunds.format == "json"
    assert refunds.columns == [Column("id", "BIGINT"), Column("amount", "DOUBLE")]
    assert read(tmp_project, "raw.machines") == [("m1", "Lyon"), ("m2", "Nice")]


def test_unreadable_files_are_skipped_with_a_reason(tmp_project: Project) -> None:
    store = tmp_project.store
    store.put("raw", "sales/a.jsonl", b'{"id": 1}\n')
    store.put("raw", "sales/latin1.jsonl", b'{"city": "K\xf6ln"}\n')
    store.put("raw", "sales/pretty.json", b'{\n  "id": 2\n}\n')
    store.put("raw", "sales/broken.parquet", b"PAR1 not really")
    report = crawl(tmp_project)
    assert [(t.name, t.files) for t in report.tables] == [("raw.sales", 1)]
    reasons = {s.key.rsplit("/", 1)[1]: s.reason for s in report.skipped}
    assert sorted(reasons) == ["broken.parquet", "latin1.jsonl", "pretty.json"]
    assert "UTF-8" in reasons["latin1.jsonl"]
    assert "expected JSON lines" in reasons["pretty.json"]


def test_gzipped_csv(tmp_project: Project) -> None:
    tmp_project.store.put("raw", "sales/a.csv.gz", gzip.compress("id,city\n1,Köln\n".encode()))
    tmp_project.store.put("raw", "sales/b.csv.gz", b"not gzip")
    report = crawl(tmp_project)
    table = tmp_project.catalog.raw_table(TableName("raw", "sales"))
    assert table.columns == [Column("id", "BIGINT"), Column("city", "VARCHAR")]
    assert "encoding" not in table.dialect
    assert [s.key for s in report.skipped] == ["raw/sales/b.csv.gz"]
    tmp_project.store.delete("raw", "sales/b.csv.gz")  # a corrupt file fails a read loudly
    assert read(tmp_project, "raw.sales") == [(1, "Köln")]


def test_hive_partitions_are_typed_columns(tmp_project: Project) -> None:
    store = tmp_project.store
    store.put("raw", "sales/date=2026-11-27/site=1/a.csv", SALES_V1)
    store.put("raw", "sales/date=2026-11-28/site=2/b.csv", b"id,machine,price\n9,m9,9.5\n")

    crawl(tmp_project)

    table = tmp_project.catalog.raw_table(TableName("raw", "sales"))
    assert table.partition_keys == [Column("date", "DATE"), Column("site", "BIGINT")]
    rows = read(tmp_project, "raw.sales", "id, typeof(date), CAST(date AS VARCHAR), site")
    assert rows == [
        (1, "DATE", "2026-11-27", 1),
        (2, "DATE", "2026-11-27", 1),
        (9, "DATE", "2026-11-28", 2),
    ]


def test_partition_key_named_like_a_column_keeps_the_file_values(tmp_project: Project) -> None:
    tmp_project.store.put("raw", "sales/machine=x/a.csv", SALES_V1)
    report = crawl(tmp_project)
    table = tmp_project.catalog.raw_table(TableName("raw", "sales"))
    assert table.partition_keys == []
    assert any("partition key 'machine'" in w for w in report.tables[0].warnings)
    assert read(tmp_project, "raw.sales", "machine") == [("m1",), ("m2",)]


def test_integer_partition_key(tmp_project: Project) -> None:
    store = tmp_project.store
    store.put("raw", "sales/year=2026/month=11/a.csv", SALES_V1)
    crawl(tmp_project)
    table = tmp_project.catalog.raw_table(TableName("raw", "sales"))
    assert table.partition_keys == [Column("year", "BIGINT"), Column("month", "BIGINT")]
    assert read(tmp_project, "raw.sales", "typeof(month), month + 1")[0] == ("BIGINT", 12)


def test_new_column_makes_version_two_with_a_diff(tmp_project: Project) -> None:
    store = tmp_project.store
    store.put("raw", "sales/2026-11-27.csv", SALES_V1)
    first = crawl(tmp_project)
    assert first.tables[0].action == "created"

    store.put("raw", "sales/2026-11-28.csv", SALES_V2)
    second = crawl(tmp_project)

    (table_report,) = second.tables
    assert (table_report.action, table_report.version) == ("updated", 2)
    assert table_report.diff.columns.added == [Column("qty", "BIGINT")]
    assert not table_report.diff.columns.removed and not table_report.diff.columns.changed
    assert table_report.to_dict()["changes"] == "+qty BIGINT; dialect.layouts changed"
    versions = tmp_project.catalog.raw.versions(TableName("raw", "sales"))
    assert [v.version for v in versions] == [1, 2]
    # the older file has no qty: it is read by its own header, NULL for the new column
    assert read(tmp_project, "raw.sales") == [
        (1, "m1", 1.5, None),
        (2, "m2", 2.5, None),
        (3, "m3", 3.5, 7),
    ]


def test_unchanged_crawl_keeps_the_version(tmp_project: Project) -> None:
    tmp_project.store.put("raw", "sales/a.csv", SALES_V1)
    crawl(tmp_project)
    tmp_project.store.put("raw", "sales/b.csv", b"id,machine,price\n5,m5,5.5\n")

    again = crawl(tmp_project)

    assert [(t.action, t.version) for t in again.tables] == [("unchanged", 1)]
    assert again.tables[0].diff.is_empty
    assert len(tmp_project.catalog.raw.versions(TableName("raw", "sales"))) == 1


def test_type_widening_across_files(tmp_project: Project) -> None:
    tmp_project.store.put("raw", "sales/a.csv", b"id,qty,day\n1,2,2026-11-27\n")
    tmp_project.store.put("raw", "sales/b.csv", b"id,qty,day\n2,2.5,2026-11-27 10:00:00\n")
    crawl(tmp_project)
    table = tmp_project.catalog.raw_table(TableName("raw", "sales"))
    assert table.columns == [
        Column("id", "BIGINT"),
        Column("qty", "DOUBLE"),
        Column("day", "TIMESTAMP"),
    ]


def test_mixed_formats_under_one_folder(tmp_project: Project) -> None:
    tmp_project.store.put("raw", "sales/a.csv", SALES_V1)
    tmp_project.store.put("raw", "sales/b.csv", SALES_V1)
    tmp_project.store.put("raw", "sales/c.jsonl", b'{"id": 7}\n')
    report = crawl(tmp_project)
    assert [(t.name, t.format) for t in report.tables] == [
        ("raw.sales", "csv"),
        ("raw.sales_json", "json"),
    ]
    assert read(tmp_project, "raw.sales_json") == [(7,)]
    assert len(read(tmp_project, "raw.sales")) == 4


def test_parquet_files(tmp_project: Project) -> None:
    buffer = io.BytesIO()
    pq.write_table(pa.table({"id": [1, 2], "machine": ["a", "b"]}), buffer)
    tmp_project.store.put("raw", "sales/date=2026-11-27/p.parquet", buffer.getvalue())
    report = crawl(tmp_project)
    assert report.tables[0].rows_estimate == 2
    assert read(tmp_project, "raw.sales", "id, machine, date") == [
        (1, "a", date(2026, 11, 27)),
        (2, "b", date(2026, 11, 27)),
    ]


def test_exclude_globs_apply_to_the_crawl_and_the_reads(tmp_project: Project) -> None:
    store = tmp_project.store
    store.put("raw", "sales/a.csv", SALES_V1)
    store.put("raw", "sales/a.tmp.csv", b"other,columns\nx,y\n")
    report = crawl(tmp_project, exclude=["*.tmp.csv"])
    assert report.tables[0].files == 1
    table = tmp_project.catalog.raw_table(TableName("raw", "sales"))
    assert table.dialect["exclude"] == ["*.tmp.csv"]
    assert [u.rsplit("/", 1)[-1] for u in raw_files(store, table)] == ["a.csv"]


def test_plan_registers_nothing(tmp_project: Project) -> None:
    tmp_project.store.put("raw", "sales/a.csv", SALES_V1)
    report = run_crawler(tmp_project, "sales", CrawlerSection(path="raw/sales/"), plan=True)
    assert [(t.action, t.version) for t in report.tables] == [("created", 1)]
    assert tmp_project.catalog.raw.find(TableName("raw", "sales")) is None


def test_iceberg_table_of_the_same_name_is_not_overwritten(tmp_project: Project) -> None:
    tmp_project.catalog.write(TableName("raw", "refunds"), pa.table({"x": [1]}), "overwrite")
    tmp_project.store.put("raw", "incoming/refunds/a.csv", SALES_V1)
    report = crawl(tmp_project, path="raw/incoming/")
    (table,) = report.tables
    assert (table.name, table.action, table.version) == ("raw.refunds", "skipped", None)
    assert "Iceberg table" in table.warnings[0]
    assert tmp_project.catalog.kind(TableName("raw", "refunds")) == "iceberg"


def test_iceberg_table_folders_are_not_crawled(tmp_project: Project) -> None:
    tmp_project.catalog.write(TableName("raw", "orders"), pa.table({"x": [1]}), "overwrite")
    tmp_project.store.put("raw", "machines/m.csv", b"machine\nm1\n")
    report = crawl(tmp_project, path="raw/")
    assert [t.name for t in report.tables] == ["raw.machines"]
    assert [(s.key, s.reason) for s in report.skipped] == [
        ("raw/orders/", "an Iceberg table's folder (read it as that table)")
    ]


def test_report_is_json_serialisable(tmp_project: Project) -> None:
    tmp_project.store.put("raw", "sales/a.csv", SALES_V1)
    data = json.loads(json.dumps(crawl(tmp_project).to_dict()))
    assert data["tables"][0]["name"] == "raw.sales"
    assert data["tables"][0]["diff"]["columns"]["added"][0] == {
        "name": "id",
        "type": "BIGINT",
        "nullable": True,
    }


def test_progress_reports_every_file(tmp_project: Project) -> None:
    for name in ("a", "b", "c"):
        tmp_project.store.put("raw", f"sales/{name}.csv", SALES_V1)
    calls: list[tuple[int, int, str]] = []
    run_crawler(
        tmp_project,
        "sales",
        CrawlerSection(path="raw/sales/"),
        progress=lambda done, total, key: calls.append((done, total, key)),
    )
    assert calls == [(i + 1, 3, f"raw/sales/{n}.csv") for i, n in enumerate("abc")]


def test_crawler_spec_lookup(tmp_project: Project) -> None:
    config = tmp_project.root / "lakelet.toml"
    config.write_text(
        config.read_text() + '\n[crawlers.sales]\npath = "raw/sales/"\nexclude = ["*.tmp"]\n'
    )
    project = Project.open(tmp_project.root)
    assert crawler_spec(project, "sales") == CrawlerSection(path="raw/sales/", exclude=["*.tmp"])
    with pytest.raises(CrawlerNotFoundError, match=r"did you mean 'sales'.*crawlers: sales"):
        crawler_spec(project, "sale")


def test_unknown_bucket_is_a_user_error(tmp_project: Project) -> None:
    with pytest.raises(UserError, match="names no bucket"):
        crawl(tmp_project, path="nowhere/sales/")


def test_crawl_on_both_backends(any_project: Project) -> None:
    store = any_project.store
    store.put("raw", "sales/date=2026-11-27/a.csv", SALES_V1)
    store.put("raw", "sales/date=2026-11-28/b.jsonl", b'{"id": 3}\n')
    report = crawl(any_project)
    assert [(t.name, t.action) for t in report.tables] == [
        ("raw.sales", "created"),
        ("raw.sales_json", "created"),
    ]
    rows = read(any_project, "raw.sales", "id, price, CAST(date AS VARCHAR)")
    assert rows == [(1, 1.5, "2026-11-27"), (2, 2.5, "2026-11-27")]
    assert read(any_project, "raw.sales_json", "id, CAST(date AS VARCHAR)") == [(3, "2026-11-28")]
