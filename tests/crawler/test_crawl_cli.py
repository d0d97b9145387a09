"""``lakelet crawl`` through the real entry point."""

from __future__ import annotations

import json

import pytest

from lakelet.catalog import TableName
from lakelet.cli.main import main
from lakelet.project import Project

SALES = b"id,machine,price\n1,m1,1.5\n2,m2,2.5\n"


def _add_crawler(project: Project) -> None:
    config = project.root / "lakelet.toml"
    config.write_text(
        config.read_text() + '\n[crawlers.sales]\npath = "raw/sales/"\ndatabase = "lake"\n'
    )


def test_crawl_named_crawler_json(tmp_project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    _add_crawler(tmp_project)
    tmp_project.store.put("raw", "sales/date=2026-11-27/a.csv", SALES)

    assert main(["-C", str(tmp_project.root), "crawl", "sales", "--format", "json"]) == 0

    report = json.loads(capsys.readouterr().out)
    assert report["crawler"] == "sales"
    (table,) = report["tables"]
    assert (table["name"], table["action"], table["version"]) == ("lake.sales", "created", 1)
    assert table["diff"]["partition_keys"]["added"] == [
        {"name": "date", "type": "DATE", "nullable": True}
    ]


def test_crawl_path_prints_a_report(
    tmp_project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    tmp_project.store.put("raw", "sales/a.csv", SALES)
    args = ["-C", str(tmp_project.root), "crawl", "--path", "raw/sales/", "--database", "raw"]

    assert main(args) == 0
    first = capsys.readouterr().out
    assert "raw.sales" in first and "created" in first and "+ price DECIMAL(18,1)" in first

    assert main([*args, "--name", "manual"]) == 0
    assert "unchanged" in capsys.readouterr().out
    # unchanged: the recorded crawler is still the first one
    assert tmp_project.catalog.raw_table(TableName("raw", "sales")).crawler == "sales"


def test_crawl_csv_output(tmp_project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    tmp_project.store.put("raw", "sales/a.csv", SALES)
    args = ["-C", str(tmp_project.root), "crawl", "--path", "raw/sales/", "--format", "csv"]
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "name,action,version,format,files,rows_estimate,changes"
    assert lines[1].startswith("raw.sales,created,1,csv,1,2,")


def test_crawl_plan_registers_nothing(
    tmp_project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    tmp_project.store.put("raw", "sales/a.csv", SALES)
    args = ["-C", str(tmp_project.root), "crawl", "--path", "raw/sales", "--plan"]
    assert main([*args, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["plan"] is True
    assert main(["-C", str(tmp_project.root), "tables", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["crawl", "sale"], "no crawler 'sale'"),
        (["crawl"], "name a crawler"),
        (["crawl", "sales", "--path", "raw/sales/"], "not both"),
        (["crawl", "--path", "nowhere/x/"], "names no bucket"),
        (["crawl", "--path", "raw/x/", "--database", "Bad-Name"], "invalid database name"),
    ],
)
def test_crawl_user_errors_exit_2(
    tmp_project: Project, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    _add_crawler(tmp_project)
    assert main(["-C", str(tmp_project.root), *args]) == 2
    assert message in capsys.readouterr().err


def test_a_path_with_no_objects_is_an_error(
    tmp_project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["-C", str(tmp_project.root), "crawl", "--path", "raw/nonexist/", "--database", "raw"]
    assert main(args) == 2
    assert "no objects under 'raw/nonexist/'" in capsys.readouterr().err
