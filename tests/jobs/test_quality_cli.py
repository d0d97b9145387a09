"""`lakelet runs JOB --quality` and `lakelet runs --id RUN` show the rule results."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from lakelet.catalog import TableName
from lakelet.cli.main import main
from lakelet.project import init_project

RULES = [
    ('IsComplete "machine"', None),
    ('ColumnValues "units" between 0 and 10', "warn"),
    ("RowCount > 100", "fail"),
]


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    project = init_project(tmp_path / "p")
    project.catalog.write(
        TableName("curated", "sales"),
        pa.table({"machine": ["m1", None, "m2"], "units": [1, 2, 30]}),
        "overwrite",
    )
    (project.root / "jobs" / "clean.sql").write_text("SELECT * FROM curated.sales")
    (project.root / "jobs" / "strict.sql").write_text("SELECT * FROM curated.sales")
    with (project.root / "lakelet.toml").open("a") as f:
        f.write('[jobs.clean]\nsql = "jobs/clean.sql"\noutput = "curated.clean"\n')
        for rule, action in RULES[:2]:
            f.write(f"[[jobs.clean.quality]]\nrule = '{rule}'\n")
            if action:
                f.write(f'action = "{action}"\n')
        f.write('[jobs.strict]\nsql = "jobs/strict.sql"\noutput = "curated.strict"\n')
        f.write(f"[[jobs.strict.quality]]\nrule = '{RULES[2][0]}'\naction = \"fail\"\n")
    return project.root


def run_cli(project_dir: Path, *args: str) -> int:
    return main(["--project", str(project_dir), *args])


def test_runs_quality_lists_rule_results(
    project_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "250")  # whole lines, whatever the terminal
    assert run_cli(project_dir, "run", "clean", "--format", "json") == 0
    run = json.loads(capsys.readouterr().out)
    assert (run["rows_produced"], run["rows_written"], run["rows_quarantined"]) == (3, 2, 1)

    assert run_cli(project_dir, "runs", "clean", "--quality", "--format", "json") == 0
    results = json.loads(capsys.readouterr().out)
    assert [
        (r["run"], r["rule"], r["action"], r["passed"], r["failing_rows"]) for r in results
    ] == [
        (run["run_id"], 'IsComplete "machine"', "quarantine", False, 1),
        (run["run_id"], 'ColumnValues "units" between 0 and 10', "warn", False, 1),
    ]
    assert (
        results[1]["detail"] == "1 of 3 row(s) failed, e.g. units = 30, expected between 0 and 10"
    )

    assert run_cli(project_dir, "runs", "--id", run["run_id"], "--format", "json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert [q["rule"] for q in shown["quality"]] == [r[0] for r in RULES[:2]]
    assert shown["rows_quarantined"] == 1

    assert run_cli(project_dir, "runs", "--id", run["run_id"]) == 0
    text = capsys.readouterr().out
    assert 'ColumnValues "units" between 0 and 10' in text  # not eaten as markup
    assert "3 row(s) produced, 2 written, 1 quarantined" in text

    assert run_cli(project_dir, "runs", "clean", "--quality") == 0
    assert 'IsComplete "machine"' in capsys.readouterr().out


def test_a_failing_rule_exits_2_and_its_results_are_shown(
    project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(project_dir, "run", "strict", "--format", "json") == 2
    out = capsys.readouterr()
    run = json.loads(out.out)
    assert run["status"] == "failed" and "RowCount > 100" in out.err
    assert [(q["rule"], q["passed"]) for q in run["quality"]] == [("RowCount > 100", False)]

    assert run_cli(project_dir, "runs", "--id", run["run_id"], "--quality", "--format", "csv") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "run,job,rule,action,passed,failing_rows,detail"
    assert lines[1].startswith(f"{run['run_id']},strict,RowCount > 100,fail,False,0,")


def test_runs_quality_without_rules_says_so(
    project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(project_dir, "runs", "--quality") == 0
    assert "no data-quality results" in capsys.readouterr().err
