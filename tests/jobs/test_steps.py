"""Transform steps: SQL files, Python functions and built-ins chained after a job's SQL."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from lakelet.catalog import TableName
from lakelet.errors import ConfigError
from lakelet.jobs import JobRunFailed, query, run_job
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
