"""Child tables of a bookmarked job: a changed file or a rerun never doubles their rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lakelet.catalog import TableName
from lakelet.crawler import crawler_spec, run_crawler
from lakelet.jobs import JobRunFailed, query, run_job
from lakelet.jobs.bookmarks import PROVENANCE_COLUMN
from lakelet.jobs.commit import OutputCommit, ReprocessedFiles
from lakelet.project import Project, init_project

A = "raw/orders/a.jsonl"
B = "raw/orders/b.jsonl"


def lines(*orders: dict[str, Any]) -> bytes:
    return "".join(json.dumps(o) + "\n" for o in orders).encode()


def order(order_id: int, *skus: str) -> dict[str, Any]:
    return {"order_id": order_id, "items": [{"sku": s} for s in skus]}


@pytest.fixture
def project(tmp_path: Path) -> Project:
    project = init_project(tmp_path / "p")
    (project.root / "jobs" / "orders.sql").write_text("SELECT * FROM raw.orders")
    (project.root / "lakelet.toml").open("a").write(
        '\n[crawlers.orders]\npath = "raw/orders/"\n'
        '[jobs.orders]\nsql = "jobs/orders.sql"\noutput = "curated.orders"\n'
        'mode = "append"\nbookmark = true\n'
        '[[jobs.orders.steps]]\nbuiltin = "flatten"\narrays = "child_tables"\n'
        'key = "order_id"\n'
    )
    project = Project.open(project.root)
    project.store.put("raw", "orders/a.jsonl", lines(order(1, "a", "b"), order(2, "c")))
    project.store.put("raw", "orders/b.jsonl", lines(order(3, "d")))
    run_crawler(project, "orders", crawler_spec(project, "orders"))
    return project


def items(project: Project) -> list[tuple[Any, ...]]:
    table = query(
        project,
        f"SELECT order_id, items_index, items_sku, {PROVENANCE_COLUMN} AS f "
        "FROM curated.orders_items",
    )
    return sorted(
        (r["order_id"], r["items_index"], r["items_sku"], r["f"]) for r in table.to_pylist()
    )


def test_child_rows_carry_their_file_and_a_changed_file_replaces_them(project: Project) -> None:
    run_job(project, "orders")
    assert items(project) == [(1, 0, "a", A), (1, 1, "b", A), (2, 0, "c", A), (3, 0, "d", B)]

    project.store.put("raw", "orders/a.jsonl", lines(order(1, "a"), order(4, "e", "f")))
    run_job(project, "orders")
    assert items(project) == [(1, 0, "a", A), (3, 0, "d", B), (4, 0, "e", A), (4, 1, "f", A)]
    orders = query(project, "SELECT order_id FROM curated.orders ORDER BY 1").to_pylist()
    assert [r["order_id"] for r in orders] == [1, 3, 4]

    project.store.put("raw", "orders/a.jsonl", lines(order(1)))  # no items any more
    run_job(project, "orders")
    assert items(project) == [(3, 0, "d", B)]


def test_a_run_failing_after_its_children_does_not_double_them_on_rerun(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(self: OutputCommit, *args: Any, **kwargs: Any) -> Any:
        raise OSError("disk gone between the child tables and the output")

    with monkeypatch.context() as patched:
        patched.setattr(OutputCommit, "write", crash)
        with pytest.raises(JobRunFailed, match="disk gone"):
            run_job(project, "orders")
    assert len(items(project)) == 4  # the children were committed, the output was not
    assert project.catalog.kind(TableName("curated", "orders")) is None

    rerun = run_job(project, "orders")  # the bookmark did not move: everything again
    assert rerun.rows_written == 3
    assert items(project) == [(1, 0, "a", A), (1, 1, "b", A), (2, 0, "c", A), (3, 0, "d", B)]


def test_a_child_table_without_provenance_refuses_a_reread(project: Project) -> None:
    run_job(project, "orders")
    child = TableName("curated", "orders_items")
    old = query(project, "SELECT order_id, items_index, items_sku FROM curated.orders_items")
    project.catalog.write(child, old, "overwrite")  # as written before children kept it
    before = project.catalog.current_snapshot_id(TableName("curated", "orders"))

    project.store.put("raw", "orders/a.jsonl", lines(order(1, "a")))
    with pytest.raises(JobRunFailed) as failed:
        run_job(project, "orders")
    assert isinstance(failed.value.__cause__, ReprocessedFiles)
    assert "orders_items" in str(failed.value) and "--reset-bookmark" in str(failed.value)
    assert project.catalog.current_snapshot_id(TableName("curated", "orders")) == before
    assert query(project, "SELECT count(*) AS n FROM curated.orders_items").to_pylist() == [
        {"n": 4}
    ]
