"""The runtime tests' app: one function per behaviour under test.

Importing it appends this process's pid to the file named by ``RT_IMPORT_LOG`` (when
set), so a test can count how many times the module was imported.
"""

from __future__ import annotations

import logging
import os
import random
import time
from pathlib import Path
from typing import Any

import lakelet

IMPORTED_IN = os.getpid()
if os.environ.get("RT_IMPORT_LOG"):
    with open(os.environ["RT_IMPORT_LOG"], "a", encoding="utf-8") as _log:
        _log.write(f"{IMPORTED_IN}\n")

app = lakelet.App("rt")


@app.function()
def echo(event: Any, context: Any) -> dict[str, Any]:
    print(f"echo got {event!r}")
    logging.warning("a warning")
    return {
        "event": event,
        "request_id": context.aws_request_id,
        "function_name": context.function_name,
        "memory": context.memory_limit_in_mb,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "pid": os.getpid(),
        "imported_in": IMPORTED_IN,
    }


@app.function()
def fail(event: Any, context: Any) -> None:
    print("about to fail")
    raise ValueError(f"bad input: {event}")


@app.function(timeout_s=0.5)
def sleepy(event: Any, context: Any) -> str:
    print("going to sleep")
    time.sleep(float(event.get("seconds", 5)))
    return "woke"


@app.function(memory_mb=128, timeout_s=20)
def hog(event: Any, context: Any) -> int:
    """Touches 8 MB more at a time until the runtime stops it (or 2 GB, to be safe)."""
    chunks = []
    for _ in range(256):
        chunks.append(bytearray(8 * 1024 * 1024))
        time.sleep(0.002)
    return len(chunks)


@app.function(environment={"COLOR": "blue", "AWS_REGION": "ignored-by-lambda"})
def env(event: Any, context: Any) -> dict[str, str | None]:
    names = ("COLOR", "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "TZ")
    return {name: os.environ.get(name) for name in names}


@app.function()
def plain(event: Any, context: Any) -> dict[str, str | None]:
    return {"COLOR": os.environ.get("COLOR")}


@app.function()
def rand(event: Any, context: Any) -> dict[str, Any]:
    return {"random": random.random(), "pid": os.getpid()}


@app.function(reserved_concurrency=1, timeout_s=10)
def single(event: Any, context: Any) -> str:
    time.sleep(float(event.get("seconds", 0)))
    return "done"


@app.function(timeout_s=10)
def slow(event: Any, context: Any) -> str:
    time.sleep(float(event.get("seconds", 0)))
    return "done"


@app.function(retries=2, dead_letter_queue="rt-dlq")
def flaky(event: Any, context: Any) -> str:
    """Fails until it has been called ``succeed_on`` times (counted in a file)."""
    counter = Path(event["counter"])
    calls = int(counter.read_text() or "0") + 1 if counter.exists() else 1
    counter.write_text(str(calls))
    if calls < int(event["succeed_on"]):
        raise RuntimeError(f"attempt {calls} fails")
    return f"succeeded on attempt {calls}"


@app.function(retries=2, dead_letter_queue="rt-dlq")
def doomed(event: Any, context: Any) -> None:
    raise KeyError("never works")


@app.function()
def not_json(event: Any, context: Any) -> set[int]:
    return {1, 2}


@app.function()
def exits(event: Any, context: Any) -> None:
    print("leaving")
    os._exit(3)
