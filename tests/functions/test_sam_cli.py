"""``lakelet deploy --plan`` and ``--export sam`` on a project."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from lakelet.cli import deploy
from lakelet.cli.context import CliState
from lakelet.project import Project

APPS = Path(__file__).parent / "apps"

SETTINGS = """
[functions]
app = "gw_app:app"

[functions.gateway]
jwt_issuer = "https://auth.vending.example"
jwt_audience = ["vending-api"]
jwks_url = "https://auth.vending.example/jwks.json"

[functions.settings.purchase]
memory_mb = 512

[functions.queues.orders]
visibility_timeout_s = 60
max_receive_count = 3
dead_letter = "orders-dlq"
"""


def cli(project: Path) -> typer.Typer:
    """The deploy command on its own, as main.py registers it."""
    app = typer.Typer()

    @app.callback()
    def root(ctx: typer.Context) -> None:
        ctx.obj = CliState(project_dir=project)

    deploy.register(app)
    return app


@pytest.fixture
def project(tmp_project: Project) -> Path:
    root = tmp_project.root
    shutil.copy(APPS / "gw_app.py", root / "gw_app.py")
    with (root / "lakelet.toml").open("a", encoding="utf-8") as config:
        config.write(SETTINGS)
    return root


def test_plan_lists_the_resources_as_json(project: Path) -> None:
    result = CliRunner().invoke(cli(project), ["deploy", "--plan", "--format", "json"])
    assert result.exit_code == 0, result.output
    planned = json.loads(result.stdout)
    by_id = {item["logical_id"]: item for item in planned["resources"]}
    assert by_id["PurchaseFunction"]["details"].startswith("handler gw_app.purchase, 512 MB")
    assert by_id["OrdersQueue"]["details"] == "visibility 60 s, after 3 receives → OrdersDlqQueue"
    assert by_id["HttpApi"]["resource_type"] == "AWS::Serverless::HttpApi"
    assert not (project / "template.yaml").exists()  # a plan changes nothing


def test_plan_as_a_table(project: Path) -> None:
    result = CliRunner().invoke(cli(project), ["deploy", "--plan"])
    assert result.exit_code == 0, result.output
    assert "AWS::SQS::Queue" in result.stdout
    assert "OrdersDlqQueue" in result.stdout


def test_export_writes_the_template(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "deploy" / "template.yaml"
    result = CliRunner().invoke(cli(project), ["deploy", "--export", "sam", "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert text.startswith("AWSTemplateFormatVersion: '2010-09-09'")
    assert "Handler: gw_app.purchase" in text
    assert f"CodeUri: ../{project.name}\n" in text  # relative to the template
    assert "wrote" in result.output


def test_export_into_the_project(project: Path) -> None:
    result = CliRunner().invoke(cli(project), ["deploy", "--export", "sam", "--code-uri", "."])
    assert result.exit_code == 0, result.output
    assert "CodeUri: ." in (project / "template.yaml").read_text()


def test_deploy_says_what_to_do(project: Path) -> None:
    result = CliRunner().invoke(cli(project), ["deploy"])
    assert result.exit_code != 0
    assert "--plan" in str(result.exception)
