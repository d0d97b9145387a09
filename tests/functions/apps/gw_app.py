"""A test app for the gateway and the SAM export: every trigger kind, every auth kind,
and handlers that misbehave in the ways a gateway must survive."""

from __future__ import annotations

import base64
import time
from typing import Any

import lakelet.functions as functions

app = functions.App("gw-test")


@app.route("/echo", methods=["GET", "POST"])
def echo(event: Any, context: Any) -> Any:
    """Returns the event it got, to compare with API Gateway's."""
    return {"event": event, "function": context.function_name}


@app.route("/items/{item_id}", methods=["GET", "PUT"])
def item(event: Any, context: Any) -> Any:
    return {"id": event["pathParameters"]["item_id"], "routeKey": event["routeKey"]}


@app.route("/items/special", methods=["GET"])
def special(event: Any, context: Any) -> Any:
    return {"special": True}


@app.route("/files/{proxy+}", methods=["ANY"])
def files(event: Any, context: Any) -> Any:
    return {"proxy": event["pathParameters"]["proxy"], "method": event["routeKey"]}


@app.route("/purchase", methods=["POST"], auth="jwt", memory_mb=256, timeout_s=10)
def purchase(event: Any, context: Any) -> Any:
    claims = event["requestContext"]["authorizer"]["jwt"]["claims"]
    return {"statusCode": 201, "body": f"sold to {claims['sub']}"}


@app.route("/admin", methods=["GET"], auth="api_key")
def admin(event: Any, context: Any) -> Any:
    return "welcome"


@app.route("/limited", methods=["GET"], throttle_rate=1, throttle_burst=2)
def limited(event: Any, context: Any) -> Any:
    return {"ok": True}


@app.route("/crash")
def crash(event: Any, context: Any) -> Any:
    raise RuntimeError("database password is hunter2")


@app.route("/slow", timeout_s=0.2)
def slow(event: Any, context: Any) -> Any:
    time.sleep(1.0)
    return "too late"


@app.route("/malformed")
def malformed(event: Any, context: Any) -> Any:
    return {"statusCode": "teapot", "body": "?"}


@app.route("/object-body")
def object_body(event: Any, context: Any) -> Any:
    return {"statusCode": 200, "body": {"not": "a string"}}


@app.route("/binary")
def binary(event: Any, context: Any) -> Any:
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "image/png", "Access-Control-Allow-Origin": "evil"},
        "body": base64.b64encode(b"\x89PNG\r\n").decode(),
        "isBase64Encoded": True,
    }


@app.route("/cookies")
def cookies(event: Any, context: Any) -> Any:
    return {
        "statusCode": 200,
        "headers": {"content-type": "text/plain"},
        "multiValueHeaders": {"x-tag": ["a", "b"]},
        "cookies": ["session=abc; HttpOnly", "theme=dark"],
        "body": "cookies set",
    }


@app.route("/unserialisable")
def unserialisable(event: Any, context: Any) -> Any:
    return {"when": object()}


@app.route("/reserved", reserved_concurrency=0)
def reserved(event: Any, context: Any) -> Any:
    return "never runs"


@app.schedule("rate(5 minutes)", reserved_concurrency=1, retries=0)
def tick(event: Any, context: Any) -> Any:
    return None


@app.schedule("cron(0 3 * * ? *)")
def nightly(event: Any, context: Any) -> Any:
    return None


@app.on_object_created(
    bucket="raw", prefix="purchases/", suffix=".json", dead_letter_queue="failed-objects"
)
def on_purchase_file(event: Any, context: Any) -> Any:
    return None


@app.on_object_created(bucket="raw", environment={"STAGE": "test"})
def on_any_raw(event: Any, context: Any) -> Any:
    return None


@app.on_queue("orders", batch_size=5)
def on_orders(event: Any, context: Any) -> Any:
    return {"batchItemFailures": []}
