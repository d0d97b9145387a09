"""A project whose warehouse is PostgreSQL: ``lakelet load`` and the one SQL surface."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from lakelet.catalog import TableName
from lakelet.cli.main import main
from lakelet.jobs import query
from lakelet.project import Project, init_project
from lakelet.warehouse.base import LOAD_ERRORS_TABLE
from lakelet.warehouse.postgres import PostgresWarehouse

SOURCE = TableName("curated", "daily")
SCHEMA = pa.schema([("id", pa.int64()), ("revenue", pa.decimal128(12, 2)), ("day", pa.date32())])


def daily(*rows: tuple[int | None, str]) -> pa.Table:
    return pa.Table.from_pylist(
        [{"id": i, "revenue": Decimal(r), "day": date(2026, 11, 27)} for i, r in rows],
        schema=SCHEMA,
    )


@pytest.fixture
def project(tmp_path: Path, postgres_uri: str) -> Project:
    folder = tmp_path / "vending"
    folder.mkdir()
    (folder / "lakelet.toml").write_text(
        f'[project]\nname = "vending"\n\n[warehouse]\nuri = "{postgres_uri}"\n', encoding="utf-8"
    )
    project = init_project(folder)
    project.catalog.write(SOURCE, daily((1, "10.00"), (2, "20.50")), "overwrite")
    return project


def lakelet(root: Path, *args: str) -> int:
    return main(["--project", str(root), *args])


def test_cli_merges_into_postgres_given_by_set(
    tmp_path: Path, postgres_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = init_project(tmp_path / "local")  # its own warehouse would be DuckDB
    project.catalog.write(SOURCE, daily((1, "10.00"), (2, "20.50")), "overwrite")
    args = [
        "--set",
        f"warehouse.uri={postgres_uri}",
        "load",
        "curated.daily",
        "--into",
        "analytics.daily",
        "--mode",
        "merge",
        "--key",
        "id",
    ]
    assert lakelet(project.root, *args) == 0
    capsys.readouterr()
    project.catalog.write(SOURCE, daily((2, "25.00"), (3, "5.00")), "overwrite")
    assert lakelet(project.root, *args, "--format", "json") == 0
    reported = json.loads(capsys.readouterr().out)
    assert (reported["rows_inserted"], reported["rows_updated"]) == (1, 1)
    assert reported["rows_in_target"] == 3
    rows = PostgresWarehouse(postgres_uri).read_arrow("analytics.daily").to_pylist()
    assert sorted((r["id"], r["revenue"]) for r in rows) == [
        (1, Decimal("10.00")),
        (2, Decimal("25.00")),
        (3, Decimal("5.00")),
    ]
    assert not (project.root / ".lakelet" / "warehouse.duckdb").exists()


def test_cli_max_errors_and_dry_run(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    project.catalog.write(SOURCE, daily((1, "1.00"), (None, "2.00"), (3, "3.00")), "overwrite")
    base = ["load", "curated.daily", "--into", "analytics.daily", "--key", "id"]
    assert lakelet(project.root, *base) == 2
    assert "key column 'id' is null" in capsys.readouterr().err.replace("\n", " ")
    assert not project.warehouse.has_table("analytics.daily")

    assert lakelet(project.root, *base, "--max-errors", "1", "--dry-run") == 0
    out = capsys.readouterr().out
    assert "dry run" in out and "nothing changed" in out
    assert not project.warehouse.has_table("analytics.daily")

    assert lakelet(project.root, *base, "--max-errors", "1", "--format", "json") == 0
    reported = json.loads(capsys.readouterr().out)
    assert (reported["rows_loaded"], reported["rows_rejected"]) == (2, 1)
    errors = project.warehouse.read_arrow(LOAD_ERRORS_TABLE).to_pylist()
    assert {(e["source"], e["line"]) for e in errors} == {("curated.daily", 2)}
    assert len({e["load_id"] for e in errors}) == 2  # the failed load and this one


def test_one_sql_surface_joins_the_lake_and_postgres(project: Project) -> None:
    machines = pa.table({"id": [1, 2], "place": ["station", "school"]})
    project.warehouse.load(machines, "analytics.machines", keys=["id"])
    project.warehouse.load(daily((1, "7.00")), "analytics.daily")
    result = query(
        project,
        "SELECT m.place, d.revenue FROM curated.daily AS d "
        "JOIN analytics.machines AS m USING (id) ORDER BY m.place",
    )
    assert result.to_pylist() == [
        {"place": "school", "revenue": Decimal("20.50")},
        {"place": "station", "revenue": Decimal("10.00")},
    ]
    qualified = query(project, "SELECT sum(revenue) AS total FROM warehouse.analytics.daily")
    assert qualified.to_pylist() == [{"total": Decimal("7.00")}]
