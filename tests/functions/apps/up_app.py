"""The ``lakelet up`` tests' app: each handler leaves what it received in ``$UP_OUT``.

Every delivery appends one JSON line to ``$UP_OUT/<function>.jsonl`` (appends of one
short line are atomic), so a test reads back exactly which events each function got.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import lakelet

app = lakelet.App("up-tests")


def _note(function: str, record: Any) -> None:
    out = Path(os.environ["UP_OUT"])
    out.mkdir(parents=True, exist_ok=True)
    with (out / f"{function}.jsonl").open("a", encoding="utf-8") as file:
        file.write(json.dumps(record) + "\n")


@app.route("/hello")
def hello(event: Any, context: Any) -> dict[str, str]:
    return {"hello": "world"}


@app.route("/env")
def env(event: Any, context: Any) -> dict[str, str | None]:
    return {name: os.environ.get(name) for name in ("LAKELET_GATEWAY_URL", "LAKELET_PROJECT_ROOT")}


@app.schedule("rate(1 minute)")
def tick(event: Any, context: Any) -> None:
    _note("tick", event)


@app.on_object_created(bucket="raw", prefix="drop/", suffix=".csv")
def on_drop(event: Any, context: Any) -> None:
    _note("on_drop", event)


@app.on_queue("orders", batch_size=5, timeout_s=2)
def orders(event: Any, context: Any) -> dict[str, Any]:
    """A body starting with ``fail`` is reported as a batch item failure."""
    failures = []
    for record in event["Records"]:
        _note(
            "orders",
            {
                "body": record["body"],
                "id": record["messageId"],
                "receive_count": record["attributes"]["ApproximateReceiveCount"],
            },
        )
        if record["body"].startswith("fail"):
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
