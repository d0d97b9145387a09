"""Rules in a job's run: quarantine table, fail writes nothing, warn records, accounting."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa

from lakelet.catalog import TableName
from lakelet.crawler import crawler_spec, run_crawler
from lakelet.errors import ConfigError
from lakelet.jobs import JobRunFailed, RunStore, query, run_job
from lakelet.jobs.runs import job_runs
from lakelet.project import Project, init_project

SALES = TableName("curated", "sales")
OUTPUT = TableName("curated", "clean")
QUARANTINE = TableName("quarantine", "clean")
ROWS: list[dict[str, Any]] = [
    {"id": 1, "machine": "m1", "amount": Decimal("1.50"), "day": date(2026, 5, 1)},
    {"id": 2, "machine": None, "amount": Decimal("2.25"), "day": date(2026, 5, 2)},
    {"id": 3, "machine": "m2", "amount": Decimal("-3.00"), "day": date(2026, 5, 3)},
    {"id": 4, "machine": "m2", "amount": None, "day": None},
]


def add_job(project: Path, name: str, sql: str, rules: list[tuple[str, str | None]]) -> None:
    (project / "jobs" / f"{name}.sql").write_text(sql, encoding="utf-8")
    text = f'\n[jobs.{name}]\nsql = "jobs/{name}.sql"\noutput = "curated.{name}"\n'
    for rule, action in rules:
        text += f"[[jobs.{name}.quality]]\nrule = '{rule}'\n"
        if action:
            text += f'action = "{action}"\n'
    with (project / "lakelet.toml").open("a", encoding="utf-8") as f:
        f.write(text)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    project = init_project(tmp_path / "p")
    schema = pa.schema(
        [
            ("id", pa.int64()),
            ("machine", pa.string()),
            ("amount", pa.decimal128(10, 2)),
            ("day", pa.date32()),
        ]
    )
    project.catalog.write(SALES, pa.Table.from_pylist(ROWS, schema=schema), "overwrite")
    return project


def test_row_rules_quarantine_rows_with_run_rule_reason_and_the_row(project: Project) -> None:
    add_job(
        project.root,
        "clean",
        "SELECT * FROM curated.sales",
        [('IsComplete "machine"', None), ('ColumnValues "amount" >= 0', "quarantine")],
    )
    record = run_job(Project.open(project.root), "clean")
    assert record.status == "succeeded"
    assert (record.rows_produced, record.rows_written, record.rows_quarantined) == (4, 1, 3)
    assert query(project, "SELECT id FROM curated.clean").to_pylist() == [{"id": 1}]

    held = project.catalog.read_arrow(QUARANTINE).sort_by("reason").to_pylist()
    assert [h["run_id"] for h in held] == [record.run_id] * 3
    assert [(h["rule"], h["reason"]) for h in held] == [
        ('ColumnValues "amount" >= 0', "amount = -3.00, expected >= 0"),
        ('ColumnValues "amount" >= 0', "amount = NULL, expected >= 0"),
        ('IsComplete "machine"', "machine is NULL"),
    ]
    for h in held:
        assert abs((h["quarantined_at"] - record.started_at).total_seconds()) < 60
    # The original row round-trips through its JSON text.
    originals = {r["id"]: r for r in ROWS}
    for h in held:
        row = json.loads(h["row"], parse_float=Decimal)
        original = originals[row["id"]]
        assert set(row) == set(original)
        assert row["machine"] == original["machine"]
        assert (row["amount"] is None) == (original["amount"] is None)
        if original["amount"] is not None:
            assert Decimal(row["amount"]) == original["amount"]
        parsed_day = None if row["day"] is None else date.fromisoformat(row["day"])
        assert parsed_day == original["day"]

    # A second run appends to the same quarantine under its own run id.
    second = run_job(Project.open(project.root), "clean")
    runs = query(project, "SELECT run_id, count(*) AS n FROM quarantine.clean GROUP BY 1")
    assert sorted((r["run_id"], r["n"]) for r in runs.to_pylist()) == sorted(
        [(record.run_id, 3), (second.run_id, 3)]
    )


def test_fail_action_writes_nothing_and_keeps_the_previous_snapshot(project: Project) -> None:
    add_job(
        project.root,
        "strict",
        "SELECT * FROM curated.sales",
        [('IsComplete "machine"', None), ('ColumnValues "amount" >= 0', "fail")],
    )
    # An earlier version of the output table the failing job would overwrite.
    project = Project.open(project.root)
    project.catalog.write(TableName("curated", "strict"), pa.table({"id": [42]}), "overwrite")
    before = project.catalog.current_snapshot_id(TableName("curated", "strict"))

    with pytest.raises(JobRunFailed, match="nothing was written") as info:
        run_job(project, "strict")
    assert info.value.exit_code == 2
    assert project.catalog.current_snapshot_id(TableName("curated", "strict")) == before
    assert project.catalog.kind(TableName("quarantine", "strict")) is None  # not even that

    (stored,) = RunStore(project.metadata).recent("strict")
    assert stored.status == "failed" and stored.rows_written == 0
    assert stored.rows_produced == 4 and stored.rows_quarantined == 0
    assert [(q.rule, q.action, q.passed, q.failing_rows) for q in stored.quality] == [
        ('IsComplete "machine"', "quarantine", False, 1),
        ('ColumnValues "amount" >= 0', "fail", False, 2),
    ]


def test_warn_records_only(project: Project) -> None:
    add_job(
        project.root,
        "clean",
        "SELECT * FROM curated.sales",
        [('IsComplete "machine"', "warn"), ("RowCount between 10 and 20", None)],
    )
    record = run_job(Project.open(project.root), "clean")
    assert (record.rows_written, record.rows_quarantined) == (4, 0)
    assert project.catalog.kind(QUARANTINE) is None
    stored = RunStore(project.metadata).get(record.run_id)
    assert [(q.action, q.passed, q.failing_rows) for q in stored.quality] == [
        ("warn", False, 1),
        ("warn", False, 0),
    ]
    assert stored.quality[1].detail == "row count 4, expected between 10 and 20"


def test_bad_rules_fail_before_the_run_starts(project: Project) -> None:
    add_job(project.root, "typo", "SELECT * FROM curated.sales", [("IsComplete machine", None)])
    add_job(project.root, "held", "SELECT * FROM curated.sales", [("RowCount > 0", "quarantine")])
    add_job(project.root, "ghost", "SELECT * FROM curated.sales", [('IsUnique "nope"', None)])
    project = Project.open(project.root)
    with pytest.raises(ConfigError, match=r"jobs\.typo\.quality\[0\]: .*at column 12"):
        run_job(project, "typo")
    with pytest.raises(ConfigError, match=r"jobs\.held\.quality\[0\]: .*needs a row rule"):
        run_job(project, "held")
    assert RunStore(project.metadata).recent() == []  # no run was started for either
    with pytest.raises(JobRunFailed, match="has no column 'nope'") as info:
        run_job(project, "ghost")
    assert info.value.exit_code == 2
    assert project.catalog.kind(TableName("curated", "ghost")) is None


# 20 good rows (m1: 10 x 1 unit, m2: 10 x 2 units) and one bad value on file line 6.
_CSV_ROWS = [f"m{1 + i % 2},{1 + i % 2}" for i in range(20)]
SALES_CSV = "machine,units\n" + "\n".join([*_CSV_ROWS[:4], "m1,oops", *_CSV_ROWS[4:]]) + "\n"


def test_accounting_of_a_pass_through_job(tmp_project: Project) -> None:
    project = tmp_project
    project.store.put("raw", "sales/part-0.csv", SALES_CSV.encode())
    with (project.root / "lakelet.toml").open("a") as f:
        f.write('\n[crawlers.sales]\npath = "raw/sales/"\ndatabase = "raw"\n')
    project = Project.open(project.root)
    run_crawler(project, "sales", crawler_spec(project, "sales"))
    add_job(
        project.root,
        "clean",
        "SELECT * FROM raw.sales WHERE units IS NULL OR units IS NOT NULL",
        [('ColumnValues "machine" in ["m1"]', None), ("RowCount > 0", "warn")],
    )
    record = run_job(Project.open(project.root), "clean")

    # Counted by hand: 21 data lines, one unreadable; the 10 m2 rows are quarantined.
    assert record.rows_read == 21 and record.rows_rejected == 1
    assert (record.rows_produced, record.rows_written, record.rows_quarantined) == (20, 10, 10)
    # The invariants, as stored.
    stored = RunStore(project.metadata).get(record.run_id)
    assert stored.rows_read == stored.rows_written + stored.rows_quarantined + stored.rows_rejected
    assert stored.rows_produced == stored.rows_written + stored.rows_quarantined
    (source,) = stored.inputs
    assert source.rows_read == stored.rows_produced + source.rows_rejected
    assert len(stored.rejects) == stored.rows_rejected
    # ... and against what the tables hold.
    written = query(project, "SELECT count(*) AS n FROM curated.clean").to_pylist()
    held = query(
        project,
        f"SELECT count(*) AS n FROM quarantine.clean WHERE run_id = '{record.run_id}'",
    ).to_pylist()
    assert (written[0]["n"], held[0]["n"]) == (stored.rows_written, stored.rows_quarantined)


def test_an_older_runs_table_gains_rows_produced(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    old = sa.MetaData()
    sa.Table("job_runs", old, *[c._copy() for c in job_runs.columns if c.name != "rows_produced"])
    old.create_all(engine)
    store = RunStore(engine)
    from lakelet.jobs.runs import RunRecord

    record = RunRecord(
        run_id="jr_1",
        job="j",
        status="running",
        engine="duckdb",
        started_at=datetime(2026, 1, 1),
        output="c.t",
        mode="overwrite",
        rows_produced=7,
    )
    store.start(record)
    assert store.get("jr_1").rows_produced == 7
