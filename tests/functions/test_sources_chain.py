"""Under lakelet up, a crawler or job run sets off the jobs whose trigger.after it meets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lakelet.functions.sources.chain import latest_state
from lakelet.functions.sources.noderun import main
from lakelet.jobs.runs import RunStore
from lakelet.project import Project, init_project

SETTINGS = """
[crawlers.sales]
path = "raw/sales/"
[jobs.clean]
sql = "jobs/clean.sql"
output = "curated.clean"
trigger = { after = ["crawler:sales"] }
[jobs.daily]
sql = "jobs/daily.sql"
output = "curated.daily"
trigger = { after = ["job:clean"] }
[jobs.alert]
sql = "jobs/alert.sql"
output = "curated.alert"
trigger = { after = ["job:daily"], on = "failed" }
[jobs.both]
sql = "jobs/alert.sql"
output = "curated.both"
trigger = { after = ["job:clean", "job:unrun"] }
[jobs.unrun]
sql = "jobs/alert.sql"
output = "curated.unrun"
"""


def _project(tmp_path: Path, daily: str) -> Project:
    project = init_project(tmp_path / "p")
    with (project.root / "lakelet.toml").open("a") as config:
        config.write(SETTINGS)
    jobs = project.root / "jobs"
    (jobs / "clean.sql").write_text("SELECT * FROM raw.sales")
    (jobs / "daily.sql").write_text(daily)
    (jobs / "alert.sql").write_text("SELECT 'daily failed' AS message")
    project.store.put("raw", "sales/s.csv", b"machine,units\nm1,1\nm2,5\n")
    return Project.open(project.root)


def _ran(project: Project) -> dict[str, str]:
    return {r.job: r.status for r in RunStore(project.metadata).recent()}


def test_a_crawl_runs_the_chain_after_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = _project(
        tmp_path, "SELECT machine, sum(units) AS units FROM curated.clean GROUP BY 1"
    )
    assert main(["crawler:sales", "--project", str(project.root)]) == 0
    outcome = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert outcome["ok"] is True
    assert "job:clean" in outcome["summary"] and "job:daily" in outcome["summary"]
    # clean and daily succeeded; alert waits for a failure; both waits for a job never run
    assert _ran(project) == {"clean": "succeeded", "daily": "succeeded"}
    assert latest_state(project, "crawler:sales") == "succeeded"
    assert latest_state(project, "job:unrun") == "waiting"


def test_a_failure_sets_off_the_jobs_waiting_for_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = _project(tmp_path, "SELECT no_such_column FROM curated.clean")
    assert main(["crawler:sales", "--project", str(project.root)]) == 0
    assert _ran(project) == {"clean": "succeeded", "daily": "failed", "alert": "succeeded"}
    assert "job:daily: failed" in capsys.readouterr().out


def test_a_job_reached_along_two_paths_runs_once_after_both(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = _project(
        tmp_path, "SELECT machine, sum(units) AS units FROM curated.clean GROUP BY 1"
    )
    with (project.root / "lakelet.toml").open("a") as config:
        config.write(
            '[jobs.report]\nsql = "jobs/alert.sql"\noutput = "curated.report"\n'
            'trigger = { after = ["crawler:sales", "job:clean"] }\n'
        )
    project = Project.open(project.root)
    assert main(["crawler:sales", "--project", str(project.root)]) == 0
    runs = RunStore(project.metadata).recent()
    assert sorted(r.job for r in runs) == ["clean", "daily", "report"]
    report = next(r for r in runs if r.job == "report")
    clean = next(r for r in runs if r.job == "clean")
    assert report.started_at >= clean.started_at  # after clean, not on its stale state
