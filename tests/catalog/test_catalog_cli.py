"""``lakelet tables`` and ``lakelet show`` through the real entry point."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from lakelet.catalog import TableName
from lakelet.cli.main import main
from lakelet.config import CrawlerSection
from lakelet.crawler import run_crawler
from lakelet.project import Project


@pytest.fixture
def project(tmp_project: Project) -> Project:
    """Raw table ``raw.sales`` in two versions and Iceberg table ``curated.daily``."""
    store = tmp_project.store
    store.put("raw", "sales/date=2026-11-27/a.csv", b"id,price\n1,1.5\n")
    run_crawler(tmp_project, "sales", CrawlerSection(path="raw/sales/"))
    store.put("raw", "sales/date=2026-11-28/b.csv", b"id,price,qty\n2,2.5,3\n")
    run_crawler(tmp_project, "sales", CrawlerSection(path="raw/sales/"))
    daily = TableName("curated", "daily")
    tmp_project.catalog.write(daily, pa.table({"day": ["2026-11-27"], "n": [1]}), "overwrite")
    tmp_project.catalog.write(daily, pa.table({"day": ["2026-11-28"], "n": [2]}), "append")
    return tmp_project


def _run(project: Project, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["-C", str(project.root), *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_tables_json(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(project, capsys, "tables", "--format", "json")
    assert code == 0
    rows = json.loads(out)
    assert [(r["table"], r["kind"], r["format"], r["columns"], r["version"]) for r in rows] == [
        ("curated.daily", "iceberg", "parquet", 2, rows[0]["version"]),
        ("raw.sales", "raw", "csv", 4, "v2"),
    ]
    assert rows[0]["version"].startswith("snapshot ")
    assert rows[1]["location"] == "raw/sales/"


def test_tables_of_one_database(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(project, capsys, "tables", "raw")
    assert code == 0
    assert "raw.sales" in out and "curated.daily" not in out
    code, _, err = _run(project, capsys, "tables", "nope")
    assert code == 2
    assert "no database 'nope'" in err and "curated, raw" in err


def test_show_raw_table(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(project, capsys, "show", "raw.sales", "--format", "json")
    assert code == 0
    details = json.loads(out)
    assert details["kind"] == "raw"
    assert details["format"] == details["classification"] == "csv"
    assert details["dialect"]["delimiter"] == ","
    assert details["columns"] == [
        {"name": "id", "type": "BIGINT"},
        {"name": "price", "type": "DECIMAL(18,1)"},
        {"name": "qty", "type": "BIGINT"},
    ]
    assert details["partition_keys"] == [{"name": "date", "type": "DATE"}]
    assert [(v["version"], v["crawler"]) for v in details["versions"]] == [
        (1, "sales"),
        (2, "sales"),
    ]
    assert details["versions"][1]["changes"].startswith("+qty BIGINT")

    code, out, _ = _run(project, capsys, "show", "raw.sales")
    assert code == 0
    assert "versions" in out and "+qty BIGINT" in out and "partition keys" in out


def test_show_iceberg_table(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(project, capsys, "show", "curated.daily", "--format", "json")
    assert code == 0
    details = json.loads(out)
    assert details["kind"] == "iceberg"
    assert [c["name"] for c in details["columns"]] == ["day", "n"]
    assert [(s["operation"], s["added_rows"]) for s in details["snapshots"]] == [
        ("append", 1),
        ("append", 1),
    ]
    assert details["current_snapshot_id"] == details["snapshots"][-1]["snapshot_id"]

    code, out, _ = _run(project, capsys, "show", "curated.daily")
    assert code == 0 and "snapshots" in out


def test_show_unknown_table_exits_2(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(project, capsys, "show", "raw.nope")
    assert code == 2
    assert "no table raw.nope" in err and "raw.sales" in err and "curated.daily" in err
    code, _, err = _run(project, capsys, "show", "sales")
    assert code == 2
    assert "DATABASE.TABLE" in err
