"""Job triggers: parsing, schedules and arrivals that make a job due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lakelet.errors import ConfigError
from lakelet.jobs import run_job
from lakelet.jobs.triggers import Trigger, due_jobs, job_triggers
from lakelet.project import Project, init_project


def project_with(tmp_path: Path, trigger: str) -> Project:
    project = init_project(tmp_path / "p")
    (project.root / "jobs" / "j.sql").write_text("SELECT 1 AS one")
    (project.root / "lakelet.toml").open("a").write(
        f'\n[jobs.j]\nsql = "jobs/j.sql"\noutput = "curated.j"\ntrigger = {trigger}\n'
    )
    return Project.open(project.root)


def test_parsing() -> None:
    parsed = job_triggers("j", {"after": "job:a", "logic": "any", "schedule": "rate(1 hour)"})
    assert parsed.after == Trigger(("job:a",), "succeeded", "any")
    assert parsed.schedule == "rate(1 hour)" and parsed.arrival is None
    with pytest.raises(ConfigError, match=r"jobs\.j\.trigger: unknown key 'shedule'"):
        job_triggers("j", {"shedule": "rate(1 hour)"})
    with pytest.raises(ConfigError):
        job_triggers("j", {"schedule": "every hour"})
    with pytest.raises(ConfigError, match="lake path"):
        job_triggers("j", {"arrival": "sales"})


def test_a_schedule_is_due_until_the_job_runs(tmp_path: Path) -> None:
    project = project_with(tmp_path, '{ schedule = "rate(1 hour)" }')
    assert due_jobs(project) == [("j", "schedule rate(1 hour) fired")]
    run_job(project, "j")
    assert due_jobs(project) == []
    assert due_jobs(project, datetime.now(UTC) + timedelta(hours=2)) == [
        ("j", "schedule rate(1 hour) fired")
    ]


def test_an_arrival_makes_the_job_due_once(tmp_path: Path) -> None:
    project = project_with(tmp_path, '{ arrival = "raw/sales/" }')
    assert due_jobs(project) == []
    project.store.put("raw", "other/x.csv", b"a\n1\n")
    assert due_jobs(project) == []
    project.store.put("raw", "sales/x.csv", b"a\n1\n")
    assert due_jobs(project) == [("j", "new objects under raw/sales/")]
    run_job(project, "j")
    assert due_jobs(project) == []


def test_cli_runs_the_due_jobs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from lakelet.cli.main import main

    project = project_with(tmp_path, '{ schedule = "rate(1 day)" }')
    assert main(["-C", str(project.root), "run", "--due", "--format", "json"]) == 0
    (ran,) = json.loads(capsys.readouterr().out)
    assert (ran["job"], ran["status"]) == ("j", "succeeded")
    assert main(["-C", str(project.root), "run", "--due"]) == 0
    assert "no job is due" in capsys.readouterr().out
    assert main(["-C", str(project.root), "run"]) == 2
