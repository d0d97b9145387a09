"""Workflows: DAG order, conditional triggers, skipped branches, config errors, the CLI."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import pytest

from lakelet.catalog import TableName
from lakelet.cli.main import main
from lakelet.errors import ConfigError, JobError, NotFoundError
from lakelet.jobs.workflow import Trigger, plan_workflow, run_workflow
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
trigger = { after = ["job:clean", "job:daily"], on = "failed", logic = "any" }
[jobs.unrelated]
sql = "jobs/clean.sql"
output = "curated.other"
[workflows.nightly]
start = ["crawler:sales"]
[workflows.strict]
start = ["job:unrelated"]
"""
DAILY = "SELECT machine, sum(units) AS units FROM curated.clean GROUP BY machine"


def make_project(
    tmp_path: Path,
    daily_sql: str = "SELECT machine, sum(units) AS units FROM curated.clean GROUP BY machine",
) -> Project:
    project = init_project(tmp_path / "p")
    (project.root / "lakelet.toml").open("a").write(SETTINGS)
    jobs = project.root / "jobs"
    (jobs / "clean.sql").write_text("SELECT * FROM raw.sales WHERE units > ${min_units}")
    (jobs / "daily.sql").write_text(daily_sql)
    (jobs / "alert.sql").write_text("SELECT 'daily failed' AS message")
    project.store.put("raw", "sales/s.csv", b"machine,units\nm1,1\nm2,5\nm1,7\n")
    return Project.open(project.root)


def test_plan_orders_the_graph_and_leaves_out_unrelated_jobs(tmp_path: Path) -> None:
    plan = plan_workflow(make_project(tmp_path), "nightly")
    assert plan.nodes == ["crawler:sales", "job:clean", "job:daily", "job:alert"]
    assert plan.triggers["job:alert"] == Trigger(("job:clean", "job:daily"), "failed", "any")


def test_a_run_shares_params_and_skips_the_failure_branch(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    run = run_workflow(project, plan_workflow(project, "nightly"), {"min_units": "2"})
    states = {n: r.state for n, r in run.nodes.items()}
    assert states == {
        "crawler:sales": "succeeded",
        "job:clean": "succeeded",
        "job:daily": "succeeded",
        "job:alert": "skipped",
    }
    assert run.succeeded
    rows = project.catalog.read_arrow(TableName("curated", "daily")).sort_by("machine")
    assert rows.to_pylist() == [{"machine": "m1", "units": 7}, {"machine": "m2", "units": 5}]


def test_a_failure_runs_the_failure_branch_and_stops_the_rest(tmp_path: Path) -> None:
    project = make_project(tmp_path, daily_sql="SELECT no_such_column FROM curated.clean")
    run = run_workflow(project, plan_workflow(project, "nightly"), {"min_units": "2"})
    states = {n: r.state for n, r in run.nodes.items()}
    assert states["job:daily"] == "failed" and states["job:alert"] == "succeeded"
    assert "no_such_column" in run.nodes["job:daily"].detail
    assert run.succeeded  # the failure was handled by the alert branch


def test_an_unhandled_failure_fails_the_workflow_and_skips_dependents(tmp_path: Path) -> None:
    project = make_project(tmp_path)

    def runner(node: str, params: Mapping[str, str]) -> str:
        if node == "job:clean":
            raise JobError("boom")
        return "ok"

    plan = plan_workflow(project, "nightly")
    run = run_workflow(project, plan, runner=runner)
    states = {n: r.state for n, r in run.nodes.items()}
    assert states == {
        "crawler:sales": "succeeded",
        "job:clean": "failed",
        "job:daily": "skipped",
        "job:alert": "succeeded",  # any: clean failed
    }
    assert "needs all of job:clean succeeded" in run.nodes["job:daily"].detail


def test_trigger_conditions() -> None:
    t = Trigger(("a", "b"), "succeeded", "all")
    assert t.holds({"a": "succeeded", "b": "waiting"}) is None
    assert t.holds({"a": "succeeded", "b": "succeeded"}) is True
    assert t.holds({"a": "failed", "b": "waiting"}) is False
    anyone = Trigger(("a", "b"), "completed", "any")
    assert anyone.holds({"a": "skipped", "b": "waiting"}) is None
    assert anyone.holds({"a": "skipped", "b": "failed"}) is True
    assert anyone.holds({"a": "skipped", "b": "skipped"}) is False


@pytest.mark.parametrize(
    ("extra", "error", "message"),
    [
        (
            '[workflows.bad]\nstart = ["crawler:sale"]\n',
            ConfigError,
            "did you mean 'crawler:sales'",
        ),
        ('[workflows.bad]\nstart = ["table:x"]\n', ConfigError, "not crawler:NAME or job:NAME"),
        (
            '[jobs.loop_a]\nsql = "jobs/alert.sql"\noutput = "c.a"\n'
            'trigger = { after = ["job:loop_b"] }\n'
            '[jobs.loop_b]\nsql = "jobs/alert.sql"\noutput = "c.b"\n'
            'trigger = { after = ["job:loop_a"] }\n'
            '[workflows.bad]\nstart = ["job:loop_a"]\n',
            ConfigError,
            "cycle",
        ),
        (
            '[jobs.x]\nsql = "jobs/alert.sql"\noutput = "c.x"\ntrigger = { aftr = ["job:clean"] }\n'
            '[workflows.bad]\nstart = ["job:clean"]\n',
            ConfigError,
            "did you mean 'after'",
        ),
    ],
)
def test_bad_workflows_are_refused_before_running(
    tmp_path: Path, extra: str, error: type[Exception], message: str
) -> None:
    project = make_project(tmp_path)
    (project.root / "lakelet.toml").open("a").write(extra)
    with pytest.raises(error, match=message):
        plan_workflow(Project.open(project.root), "bad")


def test_unknown_workflow(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="did you mean 'nightly'"):
        plan_workflow(make_project(tmp_path), "nightlyy")


def test_cli_show_and_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = make_project(tmp_path)
    args = ["-C", str(project.root), "workflow"]
    assert main([*args, "show", "nightly", "--format", "json"]) == 0
    edges = json.loads(capsys.readouterr().out)["edges"]
    assert {"from": "job:clean", "to": "job:daily", "on": "succeeded", "logic": "all"} in edges
    assert main([*args, "run", "nightly", "-p", "min_units=0", "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["succeeded"] and result["params"] == {"min_units": "0"}
    assert main([*args, "run", "nightly", "-p", "min_units=0"]) == 0
    out = capsys.readouterr().out
    assert "job:daily succeeded" in out and "job:alert skipped" in out
    assert main([*args, "run", "nightly"]) == 0  # clean fails, the alert branch handles it
    assert "job:clean failed" in capsys.readouterr().out
    assert main([*args, "run", "strict"]) == 1  # a failure nothing handles
    assert main([*args, "run", "nope"]) == 2
