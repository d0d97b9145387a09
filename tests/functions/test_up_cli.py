"""``lakelet up``'s command line: what it refuses before starting anything."""

from __future__ import annotations

import gc

import pytest
import typer
from typer.testing import CliRunner

from lakelet.cli import up
from lakelet.cli.context import CliState
from lakelet.errors import UserError
from lakelet.project import Project


def cli(project: Project) -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root(ctx: typer.Context) -> None:
        ctx.obj = CliState(project_dir=project.root)

    up.register(app)
    return app


def test_a_project_without_functions_or_triggers_has_nothing_to_serve(
    tmp_project: Project,
) -> None:
    result = CliRunner().invoke(cli(tmp_project), ["up", "--no-gateway"])
    assert isinstance(result.exception, UserError)
    assert "nothing to serve" in str(result.exception)
    assert "[functions] app" in str(result.exception)


def test_the_poll_interval_must_be_positive(tmp_project: Project) -> None:
    result = CliRunner().invoke(cli(tmp_project), ["up", "--poll-interval", "0"])
    assert isinstance(result.exception, UserError)
    assert "--poll-interval" in str(result.exception)


def test_a_trigger_on_a_missing_bucket_is_refused(tmp_project: Project) -> None:
    config = tmp_project.root / "lakelet.toml"
    config.write_text(
        config.read_text() + '\n[crawlers.sales]\npath = "nope/sales/"\non_arrival = true\n'
    )
    result = CliRunner().invoke(cli(tmp_project), ["up", "--no-gateway"])
    assert isinstance(result.exception, UserError)
    assert "bucket 'nope'" in str(result.exception)


def test_once_ready_the_objects_made_while_starting_are_frozen(
    capsys: pytest.CaptureFixture[str],
) -> None:
    class Ready:  # what _ready reads of the runner
        url = "http://127.0.0.1:8000"

        def plan(self) -> list[object]:
            return []

    gc.unfreeze()
    try:
        up._ready(Ready())  # type: ignore[arg-type]
        assert gc.get_freeze_count() > 0  # collections no longer walk them
    finally:
        gc.unfreeze()
    assert "ready: gateway on http://127.0.0.1:8000" in capsys.readouterr().out
