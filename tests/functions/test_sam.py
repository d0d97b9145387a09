"""The SAM export: each function, trigger, authorizer and queue as CloudFormation
declares it, validated by cfn-lint; and the plan read back from the template."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lakelet.config import QueueSection
from lakelet.errors import ConfigError, UserError
from lakelet.functions import App
from lakelet.functions.deploy import export_sam, plan, render
from lakelet.functions.deploy.sam import API_KEY_AUTHORIZER_CODE, logical_id
from lakelet.functions.gateway import GatewaySettings
from lakelet.functions.loader import import_app

APPS = Path(__file__).parent / "apps"
CFN_LINT = Path(sys.executable).with_name("cfn-lint")
GATEWAY = GatewaySettings(
    cors_origins=("https://shop.example",),
    api_keys=("never-in-the-template",),
    jwt_issuer="https://auth.vending.example",
    jwt_audience=("vending-api",),
    jwks_url="https://auth.vending.example/.well-known/jwks.json",
    throttle_rate=50,
    throttle_burst=100,
)
QUEUES = {
    "orders": QueueSection(visibility_timeout_s=45, max_receive_count=4, dead_letter="orders-dlq"),
    "orders-dlq": QueueSection(visibility_timeout_s=60),
    "spare": QueueSection(),
}


@pytest.fixture(scope="module")
def gw_app() -> App:
    return import_app("gw_app:app", APPS)


@pytest.fixture(scope="module")
def template(gw_app: App) -> dict[str, Any]:
    return export_sam(gw_app, gateway=GATEWAY, queues=QUEUES, code_uri="src").template


def resource(template: dict[str, Any], logical: str) -> dict[str, Any]:
    found: dict[str, Any] = template["Resources"][logical]
    return found


def props(template: dict[str, Any], logical: str) -> dict[str, Any]:
    found: dict[str, Any] = resource(template, logical)["Properties"]
    return found


def test_the_template_is_a_sam_template(template: dict[str, Any]) -> None:
    assert template["AWSTemplateFormatVersion"] == "2010-09-09"
    assert template["Transform"] == "AWS::Serverless-2016-10-31"
    assert template["Globals"]["Function"]["Runtime"] == (
        f"python{sys.version_info.major}.{sys.version_info.minor}"
    )
    assert "never-in-the-template" not in json.dumps(template)


def test_functions_carry_their_lambda_settings(template: dict[str, Any]) -> None:
    purchase = props(template, "PurchaseFunction")
    assert resource(template, "PurchaseFunction")["Type"] == "AWS::Serverless::Function"
    assert purchase["Handler"] == "gw_app.purchase"
    assert purchase["CodeUri"] == "src"
    assert (purchase["MemorySize"], purchase["Timeout"]) == (256, 10)
    assert purchase["EventInvokeConfig"] == {"MaximumRetryAttempts": 2}
    tick = props(template, "TickFunction")
    assert tick["ReservedConcurrentExecutions"] == 1
    assert tick["EventInvokeConfig"] == {"MaximumRetryAttempts": 0}
    assert props(template, "SlowFunction")["Timeout"] == 1  # Lambda counts whole seconds
    assert props(template, "OnAnyRawFunction")["Environment"] == {"Variables": {"STAGE": "test"}}
    assert props(template, "OnPurchaseFileFunction")["DeadLetterQueue"] == {
        "Type": "SQS",
        "TargetArn": {"Fn::GetAtt": ["FailedObjectsQueue", "Arn"]},
    }


def test_routes_are_http_api_events_with_their_auth(template: dict[str, Any]) -> None:
    events = props(template, "ItemFunction")["Events"]
    assert events["GetItemsItemId"] == {
        "Type": "HttpApi",
        "Properties": {
            "ApiId": {"Ref": "HttpApi"},
            "Path": "/items/{item_id}",
            "Method": "GET",
            "PayloadFormatVersion": "2.0",
        },
    }
    assert events["PutItemsItemId"]["Properties"]["Method"] == "PUT"
    files = props(template, "FilesFunction")["Events"]["AnyFilesProxy"]["Properties"]
    assert (files["Path"], files["Method"]) == ("/files/{proxy+}", "ANY")
    purchase = props(template, "PurchaseFunction")["Events"]["PostPurchase"]["Properties"]
    assert purchase["Auth"] == {"Authorizer": "JwtAuthorizer"}
    admin = props(template, "AdminFunction")["Events"]["GetAdmin"]["Properties"]
    assert admin["Auth"] == {"Authorizer": "ApiKeyAuthorizer"}
    limited = props(template, "LimitedFunction")["Events"]["GetLimited"]["Properties"]
    assert limited["RouteSettings"] == {"ThrottlingRateLimit": 1, "ThrottlingBurstLimit": 2}


def test_the_http_api_has_the_authorizers_cors_and_throttling(template: dict[str, Any]) -> None:
    api = props(template, "HttpApi")
    assert resource(template, "HttpApi")["Type"] == "AWS::Serverless::HttpApi"
    authorizers = api["Auth"]["Authorizers"]
    assert authorizers["JwtAuthorizer"] == {
        "IdentitySource": "$request.header.Authorization",
        "JwtConfiguration": {
            "issuer": "https://auth.vending.example",
            "audience": ["vending-api"],
        },
    }
    assert authorizers["ApiKeyAuthorizer"]["FunctionArn"] == {
        "Fn::GetAtt": ["ApiKeyAuthorizerFunction", "Arn"]
    }
    assert api["CorsConfiguration"]["AllowOrigins"] == ["https://shop.example"]
    assert api["DefaultRouteSettings"] == {"ThrottlingRateLimit": 50, "ThrottlingBurstLimit": 100}
    assert template["Parameters"]["ApiKeys"]["NoEcho"] is True
    assert "HttpApiUrl" in template["Outputs"]


def test_the_api_key_authorizer_checks_the_key() -> None:
    namespace: dict[str, Any] = {}
    os.environ["API_KEYS"] = "k-1,k-2"
    try:
        exec(compile(API_KEY_AUTHORIZER_CODE, "authorizer", "exec"), namespace)
    finally:
        del os.environ["API_KEYS"]
    handler = namespace["handler"]
    assert handler({"headers": {"x-api-key": "k-2"}}, None) == {"isAuthorized": True}
    assert handler({"headers": {"x-api-key": "k-3"}}, None) == {"isAuthorized": False}
    assert handler({"headers": {}}, None) == {"isAuthorized": False}
    assert handler({}, None) == {"isAuthorized": False}


def test_schedules_objects_and_queues_are_events(template: dict[str, Any]) -> None:
    assert props(template, "TickFunction")["Events"] == {
        "Schedule1": {
            "Type": "Schedule",
            "Properties": {"Schedule": "rate(5 minutes)", "Enabled": True},
        }
    }
    nightly = props(template, "NightlyFunction")["Events"]["Schedule2"]["Properties"]
    assert nightly["Schedule"] == "cron(0 3 * * ? *)"
    s3 = props(template, "OnPurchaseFileFunction")["Events"]["RawObjectCreated"]["Properties"]
    assert s3 == {
        "Bucket": {"Ref": "RawBucket"},
        "Events": "s3:ObjectCreated:*",
        "Filter": {
            "S3Key": {
                "Rules": [
                    {"Name": "prefix", "Value": "purchases/"},
                    {"Name": "suffix", "Value": ".json"},
                ]
            }
        },
    }
    unfiltered = props(template, "OnAnyRawFunction")["Events"]["RawObjectCreated"]["Properties"]
    assert "Filter" not in unfiltered
    assert resource(template, "RawBucket") == {"Type": "AWS::S3::Bucket"}
    sqs = props(template, "OnOrdersFunction")["Events"]["OrdersMessages"]
    assert sqs == {
        "Type": "SQS",
        "Properties": {
            "Queue": {"Fn::GetAtt": ["OrdersQueue", "Arn"]},
            "BatchSize": 5,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
        },
    }


def test_queues_have_their_redrive_policy(template: dict[str, Any]) -> None:
    assert props(template, "OrdersQueue") == {
        "VisibilityTimeout": 45,
        "RedrivePolicy": {
            "deadLetterTargetArn": {"Fn::GetAtt": ["OrdersDlqQueue", "Arn"]},
            "maxReceiveCount": 4,
        },
    }
    assert props(template, "OrdersDlqQueue") == {"VisibilityTimeout": 60}
    assert props(template, "SpareQueue") == {"VisibilityTimeout": 30}  # configured, unused
    assert props(template, "FailedObjectsQueue") == {"VisibilityTimeout": 30}
    assert template["Outputs"]["OrdersQueueUrl"]["Value"] == {"Ref": "OrdersQueue"}


def test_the_plan_lists_what_the_template_declares(gw_app: App) -> None:
    export = export_sam(gw_app, gateway=GATEWAY, queues=QUEUES)
    items = {item.logical_id: item for item in plan(export)}
    assert set(export.template["Resources"]) <= set(items)
    assert items["PurchaseFunction"].details == (
        "handler gw_app.purchase, 256 MB, timeout 10 s, async retries 2"
    )
    assert items["PurchaseFunction.PostPurchase"].resource_type == "HttpApi event"
    assert items["PurchaseFunction.PostPurchase"].details == "POST /purchase, auth JwtAuthorizer"
    assert items["LimitedFunction.GetLimited"].details.endswith("throttle 1/s burst 2")
    assert items["OnPurchaseFileFunction.RawObjectCreated"].details == (
        "RawBucket s3:ObjectCreated:* prefix=purchases/ suffix=.json"
    )
    assert items["OrdersQueue"].details == "visibility 45 s, after 4 receives → OrdersDlqQueue"
    assert items["ApiKeys"].resource_type == "Parameter"
    assert items["TickFunction.Schedule1"].details == "rate(5 minutes)"


def test_a_short_visibility_timeout_is_warned_about(gw_app: App) -> None:
    queues = {"orders": QueueSection(visibility_timeout_s=2)}
    warnings = export_sam(gw_app, gateway=GATEWAY, queues=queues).warnings
    assert any("'orders'" in w and "visibility timeout (2 s)" in w for w in warnings)


def test_jwt_routes_need_an_issuer_and_audience(gw_app: App) -> None:
    with pytest.raises(ConfigError, match="jwt_issuer"):
        export_sam(gw_app, gateway=GatewaySettings())
    with pytest.raises(ConfigError, match="jwt_audience"):
        export_sam(gw_app, gateway=GatewaySettings(jwt_issuer="https://i.example"))


def test_a_nested_handler_cannot_be_exported() -> None:
    app = App("nested")

    @app.function()
    def inner(event: Any, context: Any) -> Any:
        return None

    with pytest.raises(UserError, match="module-level function"):
        export_sam(app)


def test_logical_ids_are_alphanumeric_and_unique() -> None:
    assert logical_id("raw-sales_2026", "Bucket") == "RawSales2026Bucket"
    app = import_app("gw_app:app", APPS)
    twins = App("twins")
    twins.function(name="a-b")(app.get("echo").handler)
    twins.function(name="a_b")(app.get("item").handler)
    resources = export_sam(twins).template["Resources"]
    assert set(resources) == {"ABFunction", "ABFunction2"}


def test_render_falls_back_to_json_without_pyyaml(
    template: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    yaml = pytest.importorskip("yaml")
    assert yaml.safe_load(render(template)) == template
    monkeypatch.setitem(sys.modules, "yaml", None)  # as if PyYAML were not installed
    assert json.loads(render(template)) == template


@pytest.mark.slow
def test_cfn_lint_finds_no_errors(gw_app: App, template: dict[str, Any], tmp_path: Path) -> None:
    """cfn-lint validates the SAM resources (and, where aws-sam-translator is installed,
    the transformed CloudFormation too)."""
    minimal = App("minimal")
    minimal.function()(gw_app.get("tick").handler)
    files = {
        "rich.yaml": render(template),
        "rich.json": json.dumps(template),
        "minimal.yaml": render(export_sam(minimal).template),
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    broken = json.loads(json.dumps(template))
    broken["Resources"]["TickFunction"]["Properties"]["MemorySize"] = "lots"
    (tmp_path / "broken.yaml").write_text(render(broken))
    done = subprocess.run(
        [
            str(CFN_LINT),
            "--format",
            "parseable",
            *(str(tmp_path / n) for n in [*files, "broken.yaml"]),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    # parseable lines: FILE:LINE:COLUMN:END_LINE:END_COLUMN:RULE:MESSAGE
    errors = [line for line in done.stdout.splitlines() if line.split(":")[5].startswith("E")]
    assert done.returncode != 0, done.stdout  # the broken template is caught ...
    assert all("broken.yaml" in line for line in errors), done.stdout  # ... and only it
    assert any("broken.yaml" in line for line in errors)
