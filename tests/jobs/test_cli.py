"""`lakelet run`, `runs` and `sql` from the command line: output, formats, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from lakelet.catalog import TableName
from lakelet.cli.main import main
from lakelet.project import init_project


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    project = init_project(tmp_path / "p")
    project.catalog.write(
        TableName("curated", "sales"),
        pa.table({"machine": ["m1", "m2", "m1"], "units": [1, 2, 3]}),
        "overwrite",
    )
    (project.root / "jobs" / "per_machine.sql").write_text(
        "SELECT machine, sum(units) AS units FROM curated.sales GROUP BY machine"
    )
    (project.root / "jobs" / "bad.sql").write_text("SELECT nope FROM curated.sales")
    with (project.root / "lakelet.toml").open("a") as f:
        f.write(
            '[jobs.per_machine]\nsql = "jobs/per_machine.sql"\noutput = "curated.per_machine"\n'
        )
        f.write('[jobs.bad]\nsql = "jobs/bad.sql"\noutput = "curated.bad"\n')
    return project.root


def run_cli(project_dir: Path, *args: str) -> int:
    return main(["--project", str(project_dir), *args])


def test_run_then_runs_then_sql(project_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(project_dir, "run", "per_machine", "--format", "json") == 0
    run = json.loads(capsys.readouterr().out)
    assert run["status"] == "succeeded" and run["rows_read"] == 3 and run["rows_written"] == 2

    assert run_cli(project_dir, "runs", "per_machine", "--format", "json") == 0
    runs = json.loads(capsys.readouterr().out)
    assert [r["run_id"] for r in runs] == [run["run_id"]]

    assert run_cli(project_dir, "runs", "--id", run["run_id"]) == 0
    assert run["run_id"] in capsys.readouterr().out

    sql = "SELECT machine, units FROM curated.per_machine ORDER BY machine"
    assert run_cli(project_dir, "sql", sql, "--format", "csv") == 0
    assert capsys.readouterr().out == "machine,units\nm1,4\nm2,2\n"


def test_failures_exit_2_with_a_message(
    project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(project_dir, "run", "bad") == 2
    err = capsys.readouterr().err
    assert "nope" in err and "Traceback" not in err
    assert run_cli(project_dir, "run", "nosuchjob") == 2
    assert "no job 'nosuchjob'" in capsys.readouterr().err
    assert run_cli(project_dir, "sql", "SELECT * FROM curated.missing") == 2
    assert "no table curated.missing" in capsys.readouterr().err
    assert run_cli(project_dir, "runs", "--id", "jr_missing") == 2
    assert run_cli(project_dir, "run", "per_machine", "--param", "novalue") == 2


def test_no_project_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--project", str(tmp_path / "nothing"), "ls"]) == 2
    assert "lakelet init" in capsys.readouterr().err


def test_bad_setting_flag(project_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(project_dir, "--set", "warehouse.url=x", "ls") == 2
    assert "did you mean 'uri'" in capsys.readouterr().err
