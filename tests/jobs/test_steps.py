"""Transform steps: SQL files, Python functions and built-ins chained after a job's SQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from lakelet.catalog import TableName
from lakelet.errors import ConfigError, JobError, UserError
from lakelet.jobs import JobRunFailed, query, run_job
from lakelet.jobs.children import (
    ChildQualityFailed,
    ChildrenWritten,
    relationalize,
    write_children,
)
from lakelet.jobs.quality import check_quality
from lakelet.jobs.session import Session
from lakelet.jobs.spec import job_spec
from lakelet.jobs.steps import run_steps, run_steps_with_children
from lakelet.project import Project, init_project

STEP_MODULE = """
import pyarrow as pa
import pyarrow.compute as pc


def add_vat(table, context):
    rate = float(context.params.get("vat", "0.2"))
    return table.append_column("gross", pc.multiply(table["amount"], 1 + rate))


def from_scratch(table, context):
    assert table is None
    machines = context.read("curated.machines")
    return pa.table({"machines": [machines.num_rows]})


def broken(table, context):
    raise RuntimeError("the step broke")
"""


@pytest.fixture
def project(tmp_path: Path) -> Project:
    project = init_project(tmp_path / "p")
    raw = pa.table(
        {
            "id": [1, 1, 2, 3],
            "seen": [1, 2, 1, 1],
            "amount": ["10", "12", "20", "x"],
            "info": [{"city": "Lisbon", "geo": {"lat": 1.5}}] * 4,
        }
    )
    project.catalog.write(TableName("curated", "events"), raw, "overwrite")
    project.catalog.write(
        TableName("curated", "machines"), pa.table({"id": [1, 2], "name": ["a", "b"]}), "overwrite"
    )
    (project.root / "steps_module.py").write_text(STEP_MODULE)
    (project.root / "jobs" / "base.sql").write_text("SELECT * FROM curated.events WHERE id < 3")
    (project.root / "jobs" / "more.sql").write_text("SELECT *, amount * 2 AS double FROM input")
    return project


def add_job(project: Project, text: str) -> Project:
    (project.root / "lakelet.toml").open("a").write(text)
    return Project.open(project.root)


def test_a_chain_of_builtins_sql_and_python(project: Project) -> None:
    project = add_job(
        project,
        """
[jobs.chain]
sql = "jobs/base.sql"
output = "curated.chain"
[[jobs.chain.steps]]
builtin = "dedupe"
keys = ["id"]
order_by = "seen DESC"
[[jobs.chain.steps]]
builtin = "resolve_choice"
mapping = { amount = "DOUBLE" }
[[jobs.chain.steps]]
builtin = "flatten"
[[jobs.chain.steps]]
builtin = "join"
table = "curated.machines"
on = ["id"]
[[jobs.chain.steps]]
sql = "jobs/more.sql"
[[jobs.chain.steps]]
python = "steps_module:add_vat"
[[jobs.chain.steps]]
builtin = "apply_mapping"
mapping = { machine = "name", net = "amount", gross = "gross:DECIMAL(10,2)", lat = "info_geo_lat" }
""",
    )
    record = run_job(project, "chain", {"vat": "0.5"})
    rows = query(project, "SELECT * FROM curated.chain ORDER BY machine").to_pylist()
    from decimal import Decimal

    assert rows == [
        {"machine": "a", "net": 12.0, "gross": Decimal("18.00"), "lat": 1.5},
        {"machine": "b", "net": 20.0, "gross": Decimal("30.00"), "lat": 1.5},
    ]
    assert {i.table for i in record.inputs} == {"curated.events", "curated.machines"}


def test_a_job_of_python_steps_only(project: Project) -> None:
    project = add_job(
        project,
        '\n[jobs.py]\noutput = "curated.py"\n'
        '[[jobs.py.steps]]\npython = "steps_module:from_scratch"\n',
    )
    run_job(project, "py")
    assert query(project, "SELECT * FROM curated.py").to_pylist() == [{"machines": 2}]


def test_resolve_choice_never_coerces_silently(project: Project) -> None:
    project = add_job(
        project,
        '\n[jobs.all]\nsql = "jobs/all.sql"\noutput = "curated.all"\n'
        '[[jobs.all.steps]]\nbuiltin = "resolve_choice"\nmapping = { amount = "INTEGER" }\n',
    )
    (project.root / "jobs" / "all.sql").write_text("SELECT * FROM curated.events")
    with pytest.raises(JobRunFailed, match="'x'"):
        run_job(project, "all")


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ('builtin = "explode"', "use one of apply_mapping"),
        ('builtin = "dedupe"', "needs its options"),
        ('python = "no_colon"', "module:function"),
        ('sql = "jobs/missing.sql"', "no SQL file"),
        ('sql = "jobs/more.sql"\npython = "m:f"', "exactly one of"),
    ],
)
def test_bad_steps_are_refused_before_running(project: Project, step: str, message: str) -> None:
    project = add_job(
        project,
        f'\n[jobs.bad]\nsql = "jobs/base.sql"\noutput = "curated.b"\n[[jobs.bad.steps]]\n{step}\n',
    )
    with pytest.raises(ConfigError, match=message):
        run_job(project, "bad")


def test_step_errors_name_the_step(project: Project) -> None:
    project = add_job(
        project,
        '\n[jobs.oops]\nsql = "jobs/base.sql"\noutput = "curated.o"\n'
        '[[jobs.oops.steps]]\npython = "steps_module:broken"\n',
    )
    with pytest.raises(JobRunFailed, match=r"steps\[0\] failed: RuntimeError: the step broke"):
        run_job(project, "oops")


# --- flatten with child tables (Glue's Relationalize) ---------------------------------

ORDERS = TableName("curated", "orders")
ORDER_ROWS = pa.table(
    {
        "order_id": [1, 2, 3],
        "customer": [{"name": "Ana", "tags": ["vip", "new"]}, None, {"name": "Rui", "tags": []}],
        "items": [
            [{"sku": "a", "qty": 2, "parts": [10, 11]}, {"sku": "b", "qty": 1, "parts": []}],
            None,
            [None, {"sku": "c", "qty": 5, "parts": None}],
        ],
        "grid": [[[1, 2], [3]], [], [None, [4]]],
    }
)


def relationalized(key: str | None = "order_id", table: pa.Table = ORDER_ROWS) -> Any:
    return relationalize(table, output=ORDERS, key=key)


def child(made: Any, name: str) -> list[dict[str, Any]]:
    (found,) = [c for c in made.children if c.name == TableName("curated", name)]
    rows: list[dict[str, Any]] = found.table.to_pylist()
    return rows


def test_relationalize_moves_arrays_into_keyed_child_tables() -> None:
    made = relationalized()
    assert made.key == "order_id"
    assert made.parent.column_names == ["order_id", "customer_name"]
    assert made.parent.column("customer_name").to_pylist() == ["Ana", None, "Rui"]
    assert [str(c.name) for c in made.children] == [
        "curated.orders_customer_tags",
        "curated.orders_items",
        "curated.orders_items_parts",
        "curated.orders_grid",
        "curated.orders_grid_item",
    ]
    # An array inside a struct; an empty array (order 3) and a NULL struct give no rows.
    assert child(made, "orders_customer_tags") == [
        {"order_id": 1, "customer_tags_index": 0, "customer_tags": "vip"},
        {"order_id": 1, "customer_tags_index": 1, "customer_tags": "new"},
    ]
    # Struct elements become columns; a NULL element keeps its position; NULL array: no rows.
    assert child(made, "orders_items") == [
        {"order_id": 1, "items_index": 0, "items_sku": "a", "items_qty": 2},
        {"order_id": 1, "items_index": 1, "items_sku": "b", "items_qty": 1},
        {"order_id": 3, "items_index": 0, "items_sku": None, "items_qty": None},
        {"order_id": 3, "items_index": 1, "items_sku": "c", "items_qty": 5},
    ]
    # A nested array carries every ancestor's position back to its parent row.
    assert child(made, "orders_items_parts") == [
        {"order_id": 1, "items_index": 0, "items_parts_index": 0, "items_parts": 10},
        {"order_id": 1, "items_index": 0, "items_parts_index": 1, "items_parts": 11},
    ]
    keys = {c.path: c.keys for c in made.children}
    assert keys["items_parts"] == ("order_id", "items_index")
    # An array of arrays: one row per inner array, then one per inner element.
    assert child(made, "orders_grid") == [
        {"order_id": 1, "grid_index": 0},
        {"order_id": 1, "grid_index": 1},
        {"order_id": 3, "grid_index": 0},
        {"order_id": 3, "grid_index": 1},
    ]
    assert child(made, "orders_grid_item") == [
        {"order_id": 1, "grid_index": 0, "grid_item_index": 0, "grid_item": 1},
        {"order_id": 1, "grid_index": 0, "grid_item_index": 1, "grid_item": 2},
        {"order_id": 1, "grid_index": 1, "grid_item_index": 0, "grid_item": 3},
        {"order_id": 3, "grid_index": 1, "grid_item_index": 0, "grid_item": 4},
    ]


def test_relationalize_counts_nothing_for_null_lists_whatever_their_offsets() -> None:
    # A NULL slot may still span values in Arrow's buffers; they are not elements.
    lists = pa.ListArray.from_arrays(
        pa.array([0, 2, 4, 5]), pa.array([1, 2, 3, 4, 5]), mask=pa.array([False, True, False])
    )
    made = relationalized(table=pa.table({"order_id": [7, 8, 9], "v": lists}))
    assert child(made, "orders_v") == [
        {"order_id": 7, "v_index": 0, "v": 1},
        {"order_id": 7, "v_index": 1, "v": 2},
        {"order_id": 9, "v_index": 0, "v": 5},
    ]


def test_relationalize_an_empty_table_keeps_the_child_schemas() -> None:
    made = relationalized(table=ORDER_ROWS.slice(0, 0))
    assert made.parent.num_rows == 0
    items = next(c.table for c in made.children if c.path == "items")
    assert items.num_rows == 0
    assert items.column_names == ["order_id", "items_index", "items_sku", "items_qty"]


def test_a_generated_row_id_is_stable_and_unique() -> None:
    twice = pa.concat_tables([ORDER_ROWS.slice(2, 1), ORDER_ROWS.slice(2, 1)])  # same row
    made = relationalized(key=None, table=pa.concat_tables([ORDER_ROWS, twice]))
    ids = made.parent.column("row_id").to_pylist()
    assert made.parent.column_names[0] == "row_id"
    assert len(set(ids)) == 5  # identical rows still get their own ids
    again = relationalized(key=None, table=pa.concat_tables([ORDER_ROWS, twice]))
    assert again.parent.column("row_id").to_pylist() == ids
    items = child(made, "orders_items")
    assert {r["row_id"] for r in items} == {ids[0], ids[2], ids[3], ids[4]}
    assert [r["items_index"] for r in items if r["row_id"] == ids[4]] == [0, 1]


@pytest.mark.parametrize(
    ("key", "table", "message"),
    [
        ("order_id", pa.table({"order_id": [1, 1], "v": [[1], [2]]}), "not unique: 1 occurs 2"),
        ("order_id", pa.table({"order_id": [1, None], "v": [[1], [2]]}), "NULL in 1 row"),
        ("id", ORDER_ROWS, "key 'id' is not a column"),
        (None, pa.table({"row_id": [1], "v": [[1]]}), "already has a column 'row_id'"),
        ("order_id", pa.table({"order_id": [1], "order": [[{"id": 1}]]}), "two columns"),
    ],
)
def test_relationalize_refuses_keys_that_cannot_name_a_parent(
    key: str | None, table: pa.Table, message: str
) -> None:
    with pytest.raises(UserError, match=message):
        relationalized(key=key, table=table)


ORDERS_JOB = """
[jobs.orders]
sql = "jobs/orders.sql"
output = "curated.orders"
mode = "{mode}"
[[jobs.orders.steps]]
builtin = "flatten"
arrays = "child_tables"
{key}
"""


@pytest.fixture
def orders(project: Project) -> Project:
    project.catalog.write(TableName("staging", "orders"), ORDER_ROWS, "overwrite")
    (project.root / "jobs" / "orders.sql").write_text("SELECT * FROM staging.orders")
    return project


def run_with_children(project: Project, job: str, run_id: str) -> ChildrenWritten:
    """What the runner does with child tables: steps, rules, children, then the output."""
    spec = job_spec(project, job)
    with Session(project) as session:
        result = session.execute(spec.sql, source=spec.source)
        result, children = run_steps_with_children(session, spec, result, {})
    outcome = check_quality(project, spec, result, run_id)
    assert not outcome.blocking
    written = write_children(project, spec, children, run_id)
    project.catalog.write(spec.output, outcome.passed, spec.mode)
    return written


def test_child_tables_are_written_with_the_jobs_mode_and_join_back(orders: Project) -> None:
    project = add_job(orders, ORDERS_JOB.format(mode="append", key='key = "order_id"'))
    written = run_with_children(project, "orders", "jr_1")
    assert [(str(w.table), w.rows) for w in written.writes] == [
        ("curated.orders_customer_tags", 2),
        ("curated.orders_items", 4),
        ("curated.orders_items_parts", 2),
        ("curated.orders_grid", 4),
        ("curated.orders_grid_item", 4),
    ]
    joined = query(
        project,
        "SELECT o.order_id, i.items_sku, p.items_parts FROM curated.orders o "
        "JOIN curated.orders_items i USING (order_id) "
        "JOIN curated.orders_items_parts p USING (order_id, items_index) ORDER BY 3",
    ).to_pylist()
    assert joined == [
        {"order_id": 1, "items_sku": "a", "items_parts": 10},
        {"order_id": 1, "items_sku": "a", "items_parts": 11},
    ]
    run_with_children(project, "orders", "jr_2")  # append: every child table grows
    assert query(project, "SELECT count(*) AS n FROM curated.orders_items").to_pylist() == [
        {"n": 8}
    ]


def test_child_table_rules_run_before_any_child_is_written(orders: Project) -> None:
    project = add_job(
        orders,
        ORDERS_JOB.format(mode="overwrite", key="")
        + '[[tables."curated.orders_items".quality]]\nrule = \'IsComplete "items_sku"\'\n'
        + '[[tables."curated.orders_grid_item".quality]]\nrule = "RowCount < 3"\n'
        + 'action = "fail"\n',
    )
    with pytest.raises(ChildQualityFailed, match=r'orders_grid_item"\.quality\[0\]: RowCount'):
        run_with_children(project, "orders", "jr_1")
    assert project.catalog.kind(TableName("curated", "orders_items")) is None
    assert project.catalog.kind(TableName("quarantine", "orders")) is None

    toml = project.root / "lakelet.toml"
    toml.write_text(toml.read_text().replace("RowCount < 3", "RowCount < 5"))
    written = run_with_children(Project.open(project.root), "orders", "jr_2")
    assert [(r.source, r.passed, r.failing_rows) for r in written.quality] == [
        ('tables."curated.orders_items".quality[0]', False, 1),
        ('tables."curated.orders_grid_item".quality[0]', True, 0),
    ]
    assert written.quarantined == 1
    assert query(project, "SELECT count(*) AS n FROM curated.orders_items").to_pylist() == [
        {"n": 3}
    ]
    held = project.catalog.read_arrow(TableName("quarantine", "orders")).to_pylist()
    assert [(h["run_id"], h["reason"]) for h in held] == [("jr_2", "items_sku is NULL")]


def test_a_later_step_must_keep_the_parent_key(orders: Project) -> None:
    project = add_job(
        orders,
        ORDERS_JOB.format(mode="overwrite", key="")
        + '[[jobs.orders.steps]]\nbuiltin = "apply_mapping"\nmapping = { id = "order_id" }\n',
    )
    with pytest.raises(ConfigError, match="dropped the parent key 'row_id'"):
        run_with_children(project, "orders", "jr_1")


def test_run_steps_refuses_to_drop_child_tables(orders: Project) -> None:
    project = add_job(orders, ORDERS_JOB.format(mode="overwrite", key=""))
    spec = job_spec(project, "orders")
    with Session(project) as session, pytest.raises(JobError, match="makes child tables"):
        run_steps(session, spec, session.execute(spec.sql), {})


def test_flatten_keeps_arrays_as_lists_by_default(orders: Project) -> None:
    project = add_job(
        orders, ORDERS_JOB.format(mode="overwrite", key="").replace('arrays = "child_tables"', "")
    )
    spec = job_spec(project, "orders")
    with Session(project) as session:
        table, children = run_steps_with_children(session, spec, session.execute(spec.sql), {})
    assert children == []
    assert table.column_names == ["order_id", "customer_name", "customer_tags", "items", "grid"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ('builtin = "dedupe"\nkeys = ["id"]\narrays = "child_tables"', "options of builtin"),
        ('builtin = "flatten"\nkey = "id"', 'for arrays = "child_tables"'),
        ('builtin = "flatten"\narrays = "tables"', "is not one of"),
    ],
)
def test_bad_child_table_options_are_refused(project: Project, options: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        add_job(
            project,
            f'\n[jobs.bad]\nsql = "jobs/base.sql"\noutput = "curated.b"\n'
            f"[[jobs.bad.steps]]\n{options}\n",
        )
        run_job(Project.open(project.root), "bad")


def test_a_run_writes_child_tables_after_its_rules(orders: Project) -> None:
    project = add_job(
        orders,
        ORDERS_JOB.format(mode="append", key='key = "order_id"')
        + '[[tables."curated.orders_items".quality]]\nrule = \'IsComplete "items_sku"\'\n',
    )
    record = run_job(project, "orders")
    assert record.rows_written == 3
    assert [(r.source, r.failing_rows) for r in record.quality] == [
        ('tables."curated.orders_items".quality[0]', 1)
    ]
    assert query(project, "SELECT count(*) AS n FROM curated.orders_items").to_pylist() == [
        {"n": 3}
    ]
    toml = project.root / "lakelet.toml"
    toml.write_text(toml.read_text() + 'action = "fail"\n')
    with pytest.raises(JobRunFailed, match="child tables failed, nothing was written"):
        run_job(Project.open(project.root), "orders")
    assert query(project, "SELECT count(*) AS n FROM curated.orders").to_pylist() == [{"n": 3}]
    assert query(project, "SELECT count(*) AS n FROM curated.orders_items").to_pylist() == [
        {"n": 3}
    ]
