"""Cold starts from a child the zygote forked ahead of time, and the fork when none is."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest

from lakelet.functions.loader import import_app
from lakelet.functions.model import App
from lakelet.functions.runtime import Runtime, RuntimeOptions

APPS = Path(__file__).parent / "apps"


@pytest.fixture(scope="module")
def rt_app() -> App:
    return import_app("rt_app:app", APPS)


def children(pid: int) -> set[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    if not path.exists():
        pytest.skip("needs /proc/<pid>/task/<tid>/children (Linux)")
    return {int(p) for p in path.read_text().split()}


def wait_for(condition: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


@pytest.mark.skipif(sys.platform != "linux", reason="/proc")
def test_each_cold_start_becomes_the_child_forked_ahead(rt_app: App) -> None:
    with Runtime(rt_app) as runtime:
        zygote = runtime.zygote.pid
        assert zygote is not None
        wait_for(lambda: len(children(zygote)) == 1)
        (ready,) = children(zygote)
        first = runtime.invoke("rand", {})
        assert first.cold and first.payload["pid"] == ready
        wait_for(lambda: len(children(zygote)) == 2)  # the worker, and the next one
        (second,) = children(zygote) - {ready}
        env = runtime.invoke("env", {})
        assert env.cold
        wait_for(lambda: len(children(zygote)) == 3)
        (third,) = children(zygote) - {ready, second}
        echo = runtime.invoke("echo", {})
        assert echo.cold and echo.payload["pid"] == third
        warm = runtime.invoke("rand", {})
        assert not warm.cold and warm.payload["pid"] == ready
    # specialised when used: its function's variables, not those of the zygote
    assert env.payload == {
        "COLOR": "blue",
        "AWS_LAMBDA_FUNCTION_NAME": "env",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "TZ": ":UTC",
    }


def test_simultaneous_cold_starts_fork_as_needed(rt_app: App) -> None:
    with Runtime(rt_app, options=RuntimeOptions(max_concurrency=6)) as runtime:

        async def burst() -> list[int]:
            calls = [runtime.ainvoke("rand", {}) for _ in range(5)]
            return [r.payload["pid"] for r in await asyncio.gather(*calls)]

        pids = asyncio.run(burst())
    assert len(set(pids)) == 5  # one environment each, blank or freshly forked
