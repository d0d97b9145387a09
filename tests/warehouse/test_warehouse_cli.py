"""``lakelet load``: curated Iceberg tables into the project's warehouse."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from lakelet.catalog import Column, RawTable, TableName
from lakelet.cli.main import main
from lakelet.errors import TableNotFoundError, UserError
from lakelet.project import Project, init_project
from lakelet.warehouse.loading import load_table

SOURCE = TableName("curated", "daily")
SCHEMA = pa.schema([("id", pa.int64()), ("revenue", pa.decimal128(10, 2)), ("day", pa.date32())])


def daily(*rows: tuple[int, str]) -> pa.Table:
    return pa.Table.from_pylist(
        [{"id": i, "revenue": Decimal(r), "day": date(2026, 11, 27)} for i, r in rows],
        schema=SCHEMA,
    )


@pytest.fixture
def project(tmp_path: Path) -> Project:
    project = init_project(tmp_path / "vending")
    project.catalog.write(SOURCE, daily((1, "10.00"), (2, "20.50")), "overwrite")
    return project


def lakelet(project: Project, *args: str) -> int:
    return main(["--project", str(project.root), *args])


def warehouse_rows(project: Project, target: str) -> list[dict[str, Any]]:
    reopened = Project.open(project.root)  # what a later command sees
    return sorted(reopened.warehouse.read_arrow(target).to_pylist(), key=lambda r: r["id"])


def test_load_merges_by_key(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["load", "curated.daily", "--into", "analytics.daily", "--mode", "merge"]
    assert lakelet(project, *args, "--key", "id") == 0
    assert "analytics.daily" in capsys.readouterr().out
    assert (
        warehouse_rows(project, "analytics.daily") == daily((1, "10.00"), (2, "20.50")).to_pylist()
    )

    project.catalog.write(SOURCE, daily((2, "25.00"), (3, "5.00")), "overwrite")
    assert lakelet(project, *args, "--key", "id", "--format", "json") == 0
    reported = json.loads(capsys.readouterr().out)
    assert reported.pop("load_id")
    assert reported == {
        "source": "curated.daily",
        "target": "analytics.daily",
        "mode": "merge",
        "rows_loaded": 2,
        "rows_inserted": 1,
        "rows_updated": 1,
        "rows_in_target": 3,
        "created": False,
        "rows_rejected": 0,
        "dry_run": False,
        "errors": [],
    }
    assert (
        warehouse_rows(project, "analytics.daily")
        == daily((1, "10.00"), (2, "25.00"), (3, "5.00")).to_pylist()
    )
    assert project.settings.warehouse.uri.endswith(".lakelet/warehouse.duckdb")
    assert (project.root / ".lakelet" / "warehouse.duckdb").is_file()


def test_load_defaults_to_replacing_the_same_name(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    assert lakelet(project, "load", "curated.daily", "--format", "json") == 0
    reported = json.loads(capsys.readouterr().out)
    assert (reported["target"], reported["mode"], reported["created"]) == (
        "curated.daily",
        "replace",
        True,
    )
    assert len(warehouse_rows(project, "curated.daily")) == 2


def test_composite_keys_separated_by_commas(project: Project) -> None:
    args = ["load", "curated.daily", "--mode", "merge", "--key", "id,day"]
    assert lakelet(project, *args) == 0
    assert lakelet(project, *args) == 0
    assert len(warehouse_rows(project, "curated.daily")) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["curated.nothing"], "no table curated.nothing"),
        (["not-a-name"], "invalid"),
        (["curated.daily", "--into", "Analytics.Daily"], "invalid schema name"),
        (["curated.daily", "--into", "daily"], "SCHEMA.TABLE"),
        (["curated.daily", "--mode", "upsert"], "unknown load mode"),
        (["curated.daily", "--mode", "merge"], "needs key columns"),
        (["curated.daily", "--mode", "merge", "--key", "sku"], "'sku'"),
    ],
)
def test_bad_requests_exit_2(
    project: Project, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert lakelet(project, "load", *args) == 2
    assert message in capsys.readouterr().err.replace("\n", " ")
    assert Project.open(project.root).warehouse.tables() == []


def test_raw_tables_are_not_loaded(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    project.catalog.register_raw(
        RawTable("raw", "sales", "raw/sales/", "csv", columns=[Column("id", "BIGINT")])
    )
    assert lakelet(project, "load", "raw.sales") == 2
    assert "curated tables" in capsys.readouterr().err.replace("\n", " ")


def test_load_table_from_python(project: Project) -> None:
    result = load_table(project, SOURCE, "analytics.daily", mode="append")
    assert (result.created, result.rows_in_target) == (True, 2)
    result = load_table(project, SOURCE, "analytics.daily", mode="append")
    assert (result.created, result.rows_in_target) == (False, 4)
    with pytest.raises(TableNotFoundError):
        load_table(project, TableName("curated", "nothing"))
    with pytest.raises(UserError):
        load_table(project, SOURCE, "bad")


def test_rejected_rows_are_listed_and_allowed_by_max_errors(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    wide = pa.schema([("id", pa.int64()), ("revenue", pa.decimal128(14, 2))])
    rows = [{"id": 1, "revenue": Decimal("1.00")}, {"id": None, "revenue": Decimal("2.00")}]
    project.catalog.write(SOURCE, pa.Table.from_pylist(rows, schema=wide), "overwrite")
    args = ["load", "curated.daily", "--into", "analytics.daily", "--key", "id"]
    assert lakelet(project, *args, "--dry-run", "--max-errors", "1") == 0
    out = capsys.readouterr().out
    assert "key column 'id' is null" in out and "nothing changed" in out
    assert Project.open(project.root).warehouse.tables() == []
    assert lakelet(project, *args, "--max-errors", "1") == 0
    assert "1 row(s) rejected" in capsys.readouterr().out.replace("\n", " ")
    assert [r["id"] for r in warehouse_rows(project, "analytics.daily")] == [1]
    assert lakelet(project, *args, "--max-errors", "-1") == 2
