"""``lakelet invoke`` and ``lakelet functions list|stats`` on a real project."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from lakelet.cli import functions
from lakelet.project import Project

APP = """
import lakelet

app = lakelet.App("cli")


@app.route("/hello", methods=["POST"])
def hello(event, context):
    print("saying hello")
    return {"greeting": f"hello {event.get('name', 'nobody')}"}


@app.function(retries=0)
def broken(event, context):
    raise RuntimeError("it broke")
"""


@pytest.fixture
def project(tmp_project: Project, monkeypatch: pytest.MonkeyPatch) -> Project:
    (tmp_project.root / "rt_cli_app.py").write_text(APP)
    config = tmp_project.root / "lakelet.toml"
    config.write_text(config.read_text() + '\n[functions]\napp = "rt_cli_app:app"\n')
    monkeypatch.chdir(tmp_project.root)
    return Project.open(tmp_project.root)


def cli() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None: ...

    functions.register(app)
    return app


def run(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner(env={"COLUMNS": "200"}).invoke(cli(), list(args), input=input)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_invoke_prints_the_payload_and_the_report(project: Project, tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text('{"name": "Ada"}')
    code, out, err = run("invoke", "hello", "--event", str(event))
    assert code == 0, err
    assert json.loads(out) == {"greeting": "hello Ada"}
    assert "saying hello" in err
    assert "REPORT RequestId: " in err and "Init Duration: " in err

    code, out, _ = run("invoke", "hello", "--event", "-", "--format", "json", input='{"name": 1}')
    result = json.loads(out)
    assert code == 0
    assert result["payload"] == {"greeting": "hello 1"}
    assert result["outcome"] == "ok" and result["billedDurationMs"] >= 1


def test_invoke_failure_exits_1_with_lambdas_error(project: Project) -> None:
    code, out, _ = run("invoke", "broken")
    assert code == 1
    assert json.loads(out)["errorType"] == "RuntimeError"


def test_bad_event_file_is_a_user_error(project: Project, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    result = CliRunner().invoke(cli(), ["invoke", "hello", "--event", str(bad)])
    assert "not JSON (line 1, column 2" in str(result.exception)


def test_async_invoke_reports_202_and_the_first_attempt(project: Project) -> None:
    code, out, _ = run("invoke", "hello", "--async", "--format", "json")
    result = json.loads(out)
    assert code == 0
    assert result["StatusCode"] == 202
    assert result["firstAttempt"]["requestId"] == result["requestId"]
    assert result["firstAttempt"]["outcome"] == "ok"


def test_list_and_stats(project: Project) -> None:
    code, out, _ = run("functions", "list", "--format", "json")
    listed = {f["function"]: f for f in json.loads(out)}
    assert listed["hello"]["triggers"] == "POST /hello"
    assert listed["broken"]["retries"] == 0

    run("invoke", "hello")
    run("invoke", "hello")
    run("invoke", "broken")
    code, out, _ = run("functions", "stats", "--format", "json")
    stats = {(s["function"], s["source"]): s for s in json.loads(out)}
    hello = stats[("hello", "*")]
    assert (hello["invocations"], hello["errors"], hello["cold_starts"]) == (2, 0, 2)
    assert hello["cost_usd"] > 0
    assert stats[("broken", "cli")]["errors"] == 1
    log = (project.state_dir / "logs" / "functions" / "hello.log").read_text()
    assert log.count("REPORT RequestId: ") == 2
    code, out, _ = run("functions", "stats")
    assert code == 0 and "hello" in out and "p99 ms" in out
