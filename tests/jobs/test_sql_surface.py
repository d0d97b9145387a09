"""One statement over a crawled raw table, an Iceberg table and a warehouse table."""

from __future__ import annotations

import pyarrow as pa
import pytest

from lakelet.catalog import TableName
from lakelet.crawler import crawler_spec, run_crawler
from lakelet.errors import SqlError, TableNotFoundError
from lakelet.jobs import Session, query
from lakelet.jobs.sqltext import TableRef
from lakelet.project import Project

# 20 good rows (m1: 10 x 1 unit, m2: 10 x 2 units) and one bad value on file line 6.
_ROWS = [f"m{1 + i % 2},{1 + i % 2}" for i in range(20)]
SALES_CSV = ("machine,units\n" + "\n".join([*_ROWS[:4], "m1,oops", *_ROWS[4:]]) + "\n").encode()


@pytest.fixture
def layered(tmp_project: Project) -> Project:
    project = tmp_project
    project.store.put("raw", "sales/part-0.csv", SALES_CSV)
    with (project.root / "lakelet.toml").open("a") as f:
        f.write('\n[crawlers.sales]\npath = "raw/sales/"\ndatabase = "raw"\n')
    project = Project.open(project.root)
    run_crawler(project, "sales", crawler_spec(project, "sales"))
    machines = pa.table({"machine": ["m1", "m2"], "city": ["Lisbon", "Porto"]})
    project.catalog.write(TableName("curated", "machines"), machines, "overwrite")
    targets = pa.table({"machine": ["m1", "m2"], "target": [4, 10]})
    project.warehouse.load(targets, "analytics.targets", mode="replace")
    # The same name in the catalog and the warehouse: the catalog wins unqualified.
    project.warehouse.load(pa.table({"machine": ["wh"], "city": ["x"]}), "curated.machines")
    return project


def test_a_join_across_raw_curated_and_warehouse(layered: Project) -> None:
    rows = query(
        layered,
        """
        SELECT s.machine, m.city, sum(s.units) AS units, t.target
        FROM raw.sales s
        JOIN curated.machines m USING (machine)
        JOIN analytics.targets t USING (machine)
        GROUP BY ALL ORDER BY s.machine
        """,
    ).to_pylist()
    assert rows == [
        {"machine": "m1", "city": "Lisbon", "units": 10, "target": 4},
        {"machine": "m2", "city": "Porto", "units": 20, "target": 10},
    ]


def test_catalog_names_win_and_warehouse_prefix_reaches_the_other(layered: Project) -> None:
    catalog_side = query(layered, "SELECT machine FROM curated.machines ORDER BY 1").to_pylist()
    assert catalog_side == [{"machine": "m1"}, {"machine": "m2"}]
    warehouse_side = query(layered, "SELECT machine FROM warehouse.curated.machines").to_pylist()
    assert warehouse_side == [{"machine": "wh"}]


def test_raw_rejects_are_reported_with_file_and_line(layered: Project) -> None:
    with Session(layered) as session:
        session.execute("SELECT count(*) FROM raw.sales")
        ref = TableRef("raw", "sales")
        assert session.count(ref) == 20
        (reject,) = session.rejects()
    assert reject.table == "raw.sales"
    assert reject.file.endswith("sales/part-0.csv")
    assert reject.line == 6
    assert "oops" in reject.reason or "units" in reject.reason


def test_the_warehouse_is_free_after_a_query(layered: Project) -> None:
    query(layered, "SELECT * FROM analytics.targets")
    result = layered.warehouse.load(
        pa.table({"machine": ["m3"], "target": [1]}), "analytics.targets", mode="append"
    )
    assert result.rows_in_target == 3


def test_unknown_names(layered: Project) -> None:
    with pytest.raises(TableNotFoundError, match=r"analytics\.targets \(warehouse\)"):
        query(layered, "SELECT * FROM analytics.nothing")
    with pytest.raises(TableNotFoundError, match=r"no table analytics\.nothing in the warehouse"):
        query(layered, "SELECT * FROM warehouse.analytics.nothing")
    with pytest.raises(SqlError):
        query(layered, "SELECT * FROM raw.sales WHERE")
