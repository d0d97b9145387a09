"""End to end: the reference pipeline's numbers against an independent computation.

The independent side reads the landed CSV files with Python's csv module, skips the rows
the generator declared malformed, and sums with Decimal; it shares no code with the
crawler, the jobs or the warehouse.
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from lakelet.catalog.names import TableName
from lakelet.demo.generate import Dataset, generate
from lakelet.demo.scenario import DemoOptions, DemoResult, run_scenario
from lakelet.jobs.session import query
from lakelet.project import Project

OPTIONS = DemoOptions(days=7, machines=3, seed=23, end=date(2026, 5, 4))
DATE_RE = re.compile(r"/date=(\d{4}-\d{2}-\d{2})/")


@dataclass
class Totals:
    transactions: int = 0
    units: int = 0
    revenue: Decimal = Decimal("0.00")

    def add(self, quantity: int, price: Decimal) -> None:
        self.transactions += 1
        self.units += quantity
        self.revenue += quantity * price


@dataclass(frozen=True)
class Expected:
    daily: dict[tuple[date, str], Totals]
    products: dict[str, Totals]


def independent_totals(lake: Path, dataset: Dataset) -> Expected:
    """Sum the sales files as landed, skipping exactly the declared malformed rows."""
    declared = {(m.location, m.line) for m in dataset.malformed}
    daily: dict[tuple[date, str], Totals] = defaultdict(Totals)
    products: dict[str, Totals] = defaultdict(Totals)
    paths = sorted((lake / "raw" / "sales").rglob("*.csv"))
    assert len(paths) == len(dataset.files_under("sales/"))
    for path in paths:
        location = path.relative_to(lake).as_posix()
        match = DATE_RE.search(location)
        assert match is not None
        day = date.fromisoformat(match.group(1))
        with path.open(newline="", encoding="utf-8") as stream:
            reader = csv.reader(stream)
            header = next(reader)
            for fields in reader:
                if (location, reader.line_num) in declared:
                    continue
                row = dict(zip(header, fields, strict=True))
                quantity, price = int(row["quantity"]), Decimal(row["unit_price"])
                daily[(day, row["machine_id"])].add(quantity, price)
                products[row["sku"]].add(quantity, price)
    return Expected(dict(daily), dict(products))


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> tuple[DemoResult, Project]:
    folder = tmp_path_factory.mktemp("demo") / "vending"
    result = run_scenario(folder, OPTIONS)
    return result, Project.open(folder)


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return generate(
        seed=OPTIONS.seed, days=OPTIONS.days, machines=OPTIONS.machines, end=OPTIONS.end
    )


@pytest.fixture(scope="module")
def expected(scenario: tuple[DemoResult, Project], dataset: Dataset) -> Expected:
    _, project = scenario
    return independent_totals(Path(project.store.root), dataset)


def curated(project: Project, name: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = project.catalog.read_arrow(TableName("curated", name)).to_pylist()
    return rows


def test_every_check_passes(scenario: tuple[DemoResult, Project], dataset: Dataset) -> None:
    result, _ = scenario
    assert len(dataset.malformed) == 8, "every fault kind is exercised"
    failed = [f"{c.name}: {c.detail}" for c in result.checks if not c.ok]
    assert failed == []
    assert result.ok
    assert [j.status for j in result.jobs] == ["succeeded", "succeeded"]


def test_daily_machine_sales_match_the_files(
    scenario: tuple[DemoResult, Project], expected: Expected, dataset: Dataset
) -> None:
    _, project = scenario
    cities = {m.machine_id: m.city for m in dataset.machines}
    rows = curated(project, "daily_machine_sales")
    got = {
        (r["sales_date"], r["machine_id"]): (r["transactions"], r["units"], r["revenue"])
        for r in rows
    }
    want = {key: (t.transactions, t.units, t.revenue) for key, t in expected.daily.items()}
    assert len(rows) == len(got)
    assert got == want
    assert all(r["city"] == cities[r["machine_id"]] for r in rows)


def test_top_products_match_the_files(
    scenario: tuple[DemoResult, Project], expected: Expected
) -> None:
    _, project = scenario
    rows = sorted(curated(project, "top_products"), key=lambda r: r["rank"])
    ranking = sorted(expected.products.items(), key=lambda kv: (-kv[1].revenue, kv[0]))
    assert [(r["rank"], r["sku"], r["units"], r["revenue"]) for r in rows] == [
        (rank, sku, t.units, t.revenue) for rank, (sku, t) in enumerate(ranking, start=1)
    ]


def test_rejected_rows_are_the_injected_ones(
    scenario: tuple[DemoResult, Project], dataset: Dataset
) -> None:
    result, _ = scenario
    assert {(r.file, r.line) for r in result.rejects} == {
        (m.location, m.line) for m in dataset.malformed
    }
    assert all(r.reason for r in result.rejects)
    sales = next(j for j in result.jobs if j.job == "top_products")
    assert sales.rows_rejected == len(dataset.malformed_under("sales/"))
    assert sales.rows_read == dataset.rows_under("sales/")


def test_warehouse_tables_equal_the_curated_ones(scenario: tuple[DemoResult, Project]) -> None:
    result, project = scenario
    for name, key in (
        ("daily_machine_sales", ("sales_date", "machine_id")),
        ("top_products", ("rank",)),
    ):
        lake_rows = sorted(curated(project, name), key=lambda r: tuple(r[k] for k in key))
        loaded = project.warehouse.read_arrow(f"analytics.{name}").to_pylist()
        warehouse_rows = sorted(loaded, key=lambda r: tuple(r[k] for k in key))
        assert warehouse_rows == lake_rows
    assert [(load.rows_loaded, load.rows_in_source) for load in result.loads] == [
        (len(curated(project, "daily_machine_sales")),) * 2,
        (len(curated(project, "top_products")),) * 2,
    ]


def test_the_project_is_an_ordinary_project(scenario: tuple[DemoResult, Project]) -> None:
    _, project = scenario
    assert set(project.settings.crawlers) == {"sales", "machines", "purchases", "notifications"}
    assert set(project.settings.jobs) == {
        "daily_machine_sales",
        "top_products",
        "purchases_by_machine",
    }
    assert project.settings.functions.app == "app:app"
    assert (project.root / "app.py").is_file()
    for job in project.settings.jobs.values():
        assert (project.root / job.sql).is_file()


def test_the_vending_flow_reaches_the_lake_the_crawler_and_the_job(
    scenario: tuple[DemoResult, Project],
) -> None:
    result, project = scenario
    books = result.vending
    assert books is not None
    approved = books["burst"]["approved"]
    assert 0 < approved < OPTIONS.purchases  # some are declined or invalid by design
    assert books["objects_in_lake"] == books["rows_crawled"] == books["job_purchases"] == approved
    crawled = query(project, "SELECT count(*) AS n FROM raw.purchases").to_pylist()
    assert crawled == [{"n": approved}]
    assert books["outbox_delivered"] == approved
    assert books["dead_letters"] == 0
