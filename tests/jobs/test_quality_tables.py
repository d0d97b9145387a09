"""Rules declared per table: merged into every run writing it, and `lakelet check TABLE`."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pytest
import sqlalchemy as sa

from lakelet.catalog import TableName
from lakelet.errors import ConfigError, NotFoundError
from lakelet.jobs import JobRunFailed, RunStore, query, run_job
from lakelet.jobs.quality.results import ensure_quality_table, load_results
from lakelet.jobs.quality.tables import check_table
from lakelet.project import Project, init_project

SALES = TableName("curated", "sales")
SALES_ROWS = pa.table(
    {"id": [1, 2, 3, 4], "machine": ["m1", None, "m2", "m2"], "units": [1, 2, -3, 4]}
)


def append(project: Project, text: str) -> Project:
    with (project.root / "lakelet.toml").open("a", encoding="utf-8") as f:
        f.write(text)
    return Project.open(project.root)


def table_rules(table: str, *rules: tuple[str, str | None]) -> str:
    text = ""
    for rule, action in rules:
        text += f"[[tables.\"{table}\".quality]]\nrule = '{rule}'\n"
        if action:
            text += f'action = "{action}"\n'
    return text


@pytest.fixture
def project(tmp_path: Path) -> Project:
    project = init_project(tmp_path / "p")
    project.catalog.write(SALES, SALES_ROWS, "overwrite")
    (project.root / "jobs" / "clean.sql").write_text("SELECT * FROM curated.sales")
    return append(
        project,
        '\n[jobs.clean]\nsql = "jobs/clean.sql"\noutput = "curated.clean"\n'
        "[[jobs.clean.quality]]\nrule = 'IsComplete \"machine\"'\n",
    )


def test_a_run_checks_the_rules_of_the_table_it_writes(project: Project) -> None:
    project = append(
        project,
        table_rules(
            "curated.clean",
            ('ColumnValues "units" >= 0', None),
            ("RowCount > 0", "warn"),
        )
        # rules of another table do not apply to this run
        + table_rules("curated.other", ("RowCount > 100", "fail")),
    )
    record = run_job(project, "clean")
    assert [(r.source, r.rule, r.action, r.passed, r.failing_rows) for r in record.quality] == [
        ("jobs.clean.quality[0]", 'IsComplete "machine"', "quarantine", False, 1),
        ('tables."curated.clean".quality[0]', 'ColumnValues "units" >= 0', "quarantine", False, 1),
        ('tables."curated.clean".quality[1]', "RowCount > 0", "warn", True, 0),
    ]
    assert (record.rows_written, record.rows_quarantined) == (2, 2)
    assert query(project, "SELECT id FROM curated.clean ORDER BY id").to_pylist() == [
        {"id": 1},
        {"id": 4},
    ]
    held = project.catalog.read_arrow(TableName("quarantine", "clean")).sort_by("rule")
    assert held.column("rule").to_pylist() == ['ColumnValues "units" >= 0', 'IsComplete "machine"']
    # The sources are stored with the run.
    stored = RunStore(project.metadata).get(record.run_id).quality
    assert [r.source for r in stored] == [r.source for r in record.quality]


def test_a_failing_table_rule_stops_a_job_without_rules_of_its_own(project: Project) -> None:
    (project.root / "jobs" / "copy.sql").write_text("SELECT * FROM curated.sales")
    project = append(
        project,
        '[jobs.copy]\nsql = "jobs/copy.sql"\noutput = "curated.copy"\n'
        + table_rules("curated.copy", ("RowCount > 10", "fail")),
    )
    with pytest.raises(JobRunFailed, match=r"RowCount > 10 \(row count 4") as failure:
        run_job(project, "copy")
    assert failure.value.exit_code == 2
    assert project.catalog.kind(TableName("curated", "copy")) is None
    assert failure.value.record.quality[0].source == 'tables."curated.copy".quality[0]'


def test_a_table_rule_naming_a_missing_column_names_the_table_key(project: Project) -> None:
    project = append(project, table_rules("curated.clean", ('IsComplete "machin"', None)))
    with pytest.raises(JobRunFailed, match=r'tables\."curated.clean"\.quality\[0\].*did you mean'):
        run_job(project, "clean")


def test_check_table_evaluates_the_current_rows_and_writes_nothing(project: Project) -> None:
    project = append(
        project,
        table_rules(
            "curated.sales",
            ('IsComplete "machine"', None),
            ('IsUnique "machine"', "warn"),
            ("RowCount between 1 and 10", "fail"),
        ),
    )
    before = project.catalog.current_snapshot_id(SALES)
    report = check_table(project, "curated.sales")
    assert (report.table, report.rows, report.snapshot_id) == ("curated.sales", 4, before)
    assert [(r.rule, r.passed, r.failing_rows) for r in report.results] == [
        ('IsComplete "machine"', False, 1),
        ('IsUnique "machine"', False, 2),
        ("RowCount between 1 and 10", True, 0),
    ]
    assert report.blocking == []
    assert project.catalog.current_snapshot_id(SALES) == before
    assert project.catalog.kind(TableName("quarantine", "sales")) is None


def test_check_table_without_rules_says_how_to_declare_them(project: Project) -> None:
    with pytest.raises(NotFoundError, match=r'add \[\[tables\."curated.sales"\.quality\]\]'):
        check_table(project, "curated.sales")


def test_an_older_results_table_gets_the_source_column(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'm.db'}")
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE job_quality (id INTEGER PRIMARY KEY, run_id VARCHAR(40) NOT NULL, "
                "position INTEGER NOT NULL, rule TEXT NOT NULL, action VARCHAR(16) NOT NULL, "
                "passed BOOLEAN NOT NULL, failing_rows BIGINT NOT NULL, detail TEXT NOT NULL)"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO job_quality VALUES (1, 'jr_old', 0, 'RowCount > 0', 'warn', 1, 0, '')"
            )
        )
    ensure_quality_table(engine)
    ensure_quality_table(engine)  # idempotent
    with engine.connect() as conn:
        (old,) = load_results(conn, ["jr_old"])["jr_old"]
    assert (old.rule, old.source) == ("RowCount > 0", "")


# --- lakelet check ---------------------------------------------------------------------


@pytest.fixture
def cli() -> Iterator[Callable[..., int]]:
    """``lakelet``'s entry point with the check command (registered here until main has it)."""
    from lakelet.cli import main as cli_main
    from lakelet.cli import quality

    commands = cli_main.app.registered_commands
    added = not any(c.name == "check" for c in commands)
    if added:
        quality.register(cli_main.app)
    yield cli_main.main
    if added:
        commands[:] = [c for c in commands if c.name != "check"]


def test_lakelet_check_prints_results_and_exits_2_on_a_failing_fail_rule(
    project: Project,
    cli: Callable[..., int],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    args = ["-C", str(project.root), "check", "curated.sales"]
    append(project, table_rules("curated.sales", ('IsComplete "machine"', None)))
    assert cli([*args]) == 0
    out = capsys.readouterr().out
    assert "curated.sales" in out and "4 row(s), 0 of 1 rule(s) passed" in out
    assert "1 of 4 row(s) failed" in out

    append(project, table_rules("curated.sales", ("RowCount > 10", "fail")))
    assert cli([*args, "--format", "json"]) == 2
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert (report["table"], report["rows"], report["passed"]) == ("curated.sales", 4, False)
    assert [(r["source"], r["action"], r["passed"]) for r in report["results"]] == [
        ('tables."curated.sales".quality[0]', "quarantine", False),
        ('tables."curated.sales".quality[1]', "fail", False),
    ]
    assert "'RowCount > 10'" in captured.err


def test_lakelet_check_errors_are_user_errors(
    project: Project, cli: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(["-C", str(project.root), "check", "curated.sales"]) == 2
    assert "no data-quality rules for curated.sales" in capsys.readouterr().err
    assert cli(["-C", str(project.root), "check", "sales"]) == 2
    assert "invalid table name 'sales'" in capsys.readouterr().err
    append(project, table_rules("curated.nothing", ("RowCount > 0", None)))
    assert cli(["-C", str(project.root), "check", "curated.nothing"]) == 2
    assert "no table curated.nothing" in capsys.readouterr().err


def test_a_bad_table_section_fails_at_load(project: Project) -> None:
    with pytest.raises(ConfigError, match=r'tables\."curated.sales"\.quality\[0\]'):
        append(project, table_rules("curated.sales", ("IsComplete machine", None)))
