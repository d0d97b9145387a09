"""Reserved and global concurrency (throttling), and scale to zero."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lakelet.errors import ConfigError
from lakelet.functions.invocation import Invocation, TooManyRequests
from lakelet.functions.loader import import_app
from lakelet.functions.model import App, FunctionSpec
from lakelet.functions.runtime import Runtime, RuntimeOptions
from lakelet.functions.runtime.limits import ConcurrencyLimits

APPS = Path(__file__).parent / "apps"


@pytest.fixture(scope="module")
def rt_app() -> App:
    return import_app("rt_app:app", APPS)


def in_background(call: Callable[[], Invocation]) -> tuple[threading.Thread, list[Invocation]]:
    results: list[Invocation] = []
    thread = threading.Thread(target=lambda: results.append(call()))
    thread.start()
    return thread, results


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


@pytest.fixture
def runtime(rt_app: App) -> Iterator[Runtime]:
    with Runtime(rt_app, options=RuntimeOptions(max_concurrency=3)) as runtime:
        yield runtime


def test_reserved_concurrency_throttles_the_extra_call(runtime: Runtime) -> None:
    thread, results = in_background(lambda: runtime.invoke("single", {"seconds": 1}))
    wait_until(lambda: runtime.limits.running("single") == 1)
    with pytest.raises(TooManyRequests, match="reserved concurrency of 1") as caught:
        runtime.invoke("single", {})
    assert caught.value.http_status == 429
    assert runtime.invoke("slow", {}).outcome == "ok"  # others are not affected
    thread.join()
    assert results[0].outcome == "ok"
    assert runtime.invoke("single", {}).outcome == "ok"  # the slot came back


def test_global_limit_throttles_unreserved_functions(runtime: Runtime) -> None:
    # max_concurrency 3, of which 1 is reserved for "single": 2 shared slots.
    running = [in_background(lambda: runtime.invoke("slow", {"seconds": 1})) for _ in range(2)]
    wait_until(lambda: runtime.limits.running("slow") == 2)
    with pytest.raises(TooManyRequests, match="unreserved"):
        runtime.invoke("echo", {})
    assert runtime.invoke("single", {}).outcome == "ok"  # its reserved slot is its own
    for thread, results in running:
        thread.join()
        assert results[0].outcome == "ok"


def test_idle_workers_are_stopped_then_the_next_call_is_cold(rt_app: App) -> None:
    options = RuntimeOptions(idle_timeout_s=0.3)
    with Runtime(rt_app, options=options) as runtime:
        first = runtime.invoke("echo", {})
        assert runtime.pool.idle_count("echo") == 1
        wait_until(lambda: runtime.pool.idle_count() == 0, timeout=5)
        wait_until(lambda: not _alive(first.payload["pid"]), timeout=5)
        second = runtime.invoke("echo", {})
    assert second.cold
    assert second.payload["pid"] != first.payload["pid"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _spec(name: str, reserved: int | None) -> FunctionSpec:
    return FunctionSpec(name, lambda e, c: None, f"m:{name}", reserved_concurrency=reserved)


def test_reserved_concurrency_cannot_exceed_the_global_limit() -> None:
    specs = {"a": _spec("a", 3), "b": _spec("b", 2)}
    with pytest.raises(ConfigError, match="reserved concurrency adds up to 5"):
        ConcurrencyLimits(specs, 4)
    limits = ConcurrencyLimits(specs, 6)
    assert limits.unreserved == 1


def test_zero_reserved_concurrency_always_throttles() -> None:
    limits = ConcurrencyLimits({"off": _spec("off", 0), "on": _spec("on", None)}, 2)
    assert not limits.try_acquire("off")
    assert limits.try_acquire("on") and limits.try_acquire("on")
    assert not limits.try_acquire("on")
    limits.release("on")
    assert limits.available("on") == 1
