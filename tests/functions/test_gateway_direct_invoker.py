"""The in-process invoker the gateway is developed against: Lambda's observable
behaviour (JSON boundary, error payloads, reserved concurrency, timeouts, retries)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from lakelet.errors import NotFoundError
from lakelet.functions import App, TooManyRequests
from lakelet.functions.direct import DirectInvoker


def make_app() -> tuple[App, list[Any]]:
    app = App("direct")
    calls: list[Any] = []

    @app.function(memory_mb=256, timeout_s=5)
    def echo(event: Any, context: Any) -> Any:
        event["touched"] = True
        return {
            "event": event,
            "name": context.function_name,
            "memory": context.memory_limit_in_mb,
            "remaining_ok": 0 < context.get_remaining_time_in_millis() <= 5000,
            "tuple": (1, 2),
        }

    @app.function()
    def fail(event: Any, context: Any) -> Any:
        calls.append(event)
        raise KeyError("missing-machine")

    @app.function(timeout_s=0.1)
    def sleepy(event: Any, context: Any) -> Any:
        time.sleep(0.5)
        return "late"

    return app, calls


def test_a_call_crosses_a_json_boundary() -> None:
    app, _ = make_app()
    event = {"n": 1}
    result = DirectInvoker(app).invoke("echo", event)
    assert result.outcome == "ok"
    assert result.failure is None
    assert event == {"n": 1}  # the handler got a copy
    assert result.payload == {
        "event": {"n": 1, "touched": True},
        "name": "echo",
        "memory": "256",
        "remaining_ok": True,
        "tuple": [1, 2],
    }
    assert result.memory_mb == 256
    assert result.billed_ms >= 1
    assert len(result.request_id) == 36


def test_an_exception_becomes_lambdas_error_payload() -> None:
    app, _ = make_app()
    result = DirectInvoker(app).invoke("fail", {})
    assert result.outcome == "error"
    assert result.failure is not None
    payload = result.failure.payload()
    assert payload["errorType"] == "KeyError"
    assert payload["errorMessage"] == "'missing-machine'"
    assert any("test_gateway_direct_invoker.py" in line for line in payload["stackTrace"])


def test_an_unknown_function_is_named() -> None:
    app, _ = make_app()
    with pytest.raises(NotFoundError, match="nope"):
        DirectInvoker(app).invoke("nope", {})


def test_reserved_concurrency_throttles() -> None:
    app = App("busy")
    entered = threading.Event()
    release = threading.Event()

    @app.function(reserved_concurrency=1)
    def hold(event: Any, context: Any) -> Any:
        entered.set()
        release.wait(5)
        return "done"

    invoker = DirectInvoker(app)
    first = threading.Thread(target=invoker.invoke, args=("hold", {}))
    first.start()
    assert entered.wait(5)
    with pytest.raises(TooManyRequests):
        invoker.invoke("hold", {})
    release.set()
    first.join()
    assert invoker.invoke("hold", {}).payload == "done"  # the slot is free again


def test_an_asynchronous_call_is_retried_then_given_up() -> None:
    app, calls = make_app()
    result = DirectInvoker(app).invoke("fail", {"id": 7}, invocation_type="Event")
    assert result.outcome == "ok"
    assert result.payload is None
    assert calls == [{"id": 7}] * 3  # the first attempt and Lambda's two retries


def test_ainvoke_gives_up_at_the_timeout() -> None:
    app, _ = make_app()

    async def call() -> tuple[float, Any]:
        started = time.perf_counter()
        result = await DirectInvoker(app).ainvoke("sleepy", {})
        return time.perf_counter() - started, result

    waited, result = asyncio.run(call())
    assert waited < 0.45  # the caller is answered; the handler's thread runs on
    assert result.outcome == "timeout"
    assert result.failure is not None
    assert result.failure.message == "Task timed out after 0.10 seconds"


def test_ainvoke_returns_the_result() -> None:
    app, _ = make_app()
    result = asyncio.run(DirectInvoker(app).ainvoke("echo", {"a": 1}))
    assert result.outcome == "ok"
    assert result.payload["event"] == {"a": 1, "touched": True}
