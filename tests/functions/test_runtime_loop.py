"""``Runtime.ainvoke`` on the caller's event loop: no thread per call, and every limit
(timeout, memory, a worker's exit, cancellation) still ends the invocation properly."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from lakelet.functions.invocation import Invocation
from lakelet.functions.loader import import_app
from lakelet.functions.model import App
from lakelet.functions.runtime import Runtime, RuntimeOptions
from lakelet.functions.runtime.stats import invocations_table
from lakelet.project import Project

APPS = Path(__file__).parent / "apps"
CALL_THREAD = re.compile(r"^(lakelet-fn_\d+|asyncio_\d+)$")  # executor threads, by name


@pytest.fixture(scope="module")
def rt_app() -> App:
    return import_app("rt_app:app", APPS)


@pytest.fixture
def runtime(rt_app: App) -> Iterator[Runtime]:
    with Runtime(rt_app, options=RuntimeOptions(max_concurrency=8)) as runtime:
        yield runtime


def call_threads() -> set[str]:
    return {t.name for t in threading.enumerate() if CALL_THREAD.match(t.name)}


def test_warm_calls_run_on_the_loop_without_threads(runtime: Runtime) -> None:
    before = call_threads()  # another test in this process may have left one behind
    warm = runtime.invoke("echo", {})
    assert call_threads() == before

    async def calls() -> list[Invocation]:
        return [await runtime.ainvoke("echo", {"n": n}) for n in range(5)]

    results = asyncio.run(calls())
    assert [r.payload["event"] for r in results] == [{"n": n} for n in range(5)]
    assert {r.payload["pid"] for r in results} == {warm.payload["pid"]}
    assert not any(r.cold for r in results)
    assert call_threads() == before  # neither the runtime's executor nor asyncio's


def test_concurrent_calls_share_the_loop_and_get_a_worker_each(runtime: Runtime) -> None:
    async def burst() -> tuple[list[Invocation], float]:
        started = time.monotonic()
        results = await asyncio.gather(
            *(runtime.ainvoke("slow", {"seconds": 0.4}) for _ in range(4))
        )
        return list(results), time.monotonic() - started

    results, took = asyncio.run(burst())
    assert [r.outcome for r in results] == ["ok"] * 4
    assert len({r.request_id for r in results}) == 4
    assert took < 4 * 0.4  # they ran at once, one execution environment each
    assert runtime.pool.idle_count("slow") == 4
    assert runtime.limits.running("slow") == 0


def test_timeout_on_the_loop_kills_the_worker(runtime: Runtime) -> None:
    async def scenario() -> tuple[Invocation, Invocation, float]:
        started = time.monotonic()
        timed_out = await runtime.ainvoke("sleepy", {"seconds": 30})
        took = time.monotonic() - started
        return timed_out, await runtime.ainvoke("sleepy", {"seconds": 0}), took

    timed_out, after, took = asyncio.run(scenario())
    assert timed_out.outcome == "timeout"
    assert 0.5 <= took < 5
    assert timed_out.failure is not None
    assert timed_out.failure.error_type == "Sandbox.Timedout"
    assert "going to sleep" in timed_out.logs
    assert "\tStatus: timeout" in timed_out.logs
    assert after.outcome == "ok" and after.cold  # the timed-out worker is gone


def test_memory_limit_and_exit_on_the_loop(runtime: Runtime) -> None:
    async def scenario() -> tuple[Invocation, Invocation, Invocation]:
        return (
            await runtime.ainvoke("hog", {}),
            await runtime.ainvoke("exits", {}),
            await runtime.ainvoke("fail", {"x": 2}),
        )

    hog, exits, fail = asyncio.run(scenario())
    assert hog.outcome == "out_of_memory"
    assert hog.failure is not None and hog.failure.error_type == "Runtime.OutOfMemory"
    assert hog.max_memory_used_mb >= 128
    assert exits.failure is not None and exits.failure.error_type == "Runtime.ExitError"
    assert fail.failure is not None and fail.failure.message == "bad input: {'x': 2}"
    assert runtime.limits.running("hog") == runtime.limits.running("exits") == 0


def test_a_cancelled_call_still_finishes_its_invocation(rt_app: App, tmp_project: Project) -> None:
    with Runtime(rt_app, engine=tmp_project.metadata, options=RuntimeOptions()) as runtime:
        runtime.invoke("slow", {})

        async def scenario() -> None:
            call = asyncio.ensure_future(runtime.ainvoke("slow", {"seconds": 0.3}))
            await asyncio.sleep(0.1)
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
            assert runtime.limits.running("slow") == 1  # the worker is still at it
            while runtime.limits.running("slow"):
                await asyncio.sleep(0.02)

        asyncio.run(scenario())
        assert runtime.pool.idle_count("slow") == 1  # it answered and was taken back
        runtime.flush()
        t = invocations_table.c
        query = sa.select(t.outcome).where(t.function == "slow").order_by(t.id)
        with tmp_project.metadata.connect() as conn:
            outcomes = [row.outcome for row in conn.execute(query)]
    assert outcomes == ["ok", "ok"]


def test_calls_from_successive_loops_reuse_warm_workers(runtime: Runtime) -> None:
    first = asyncio.run(runtime.ainvoke("echo", {}))
    second = asyncio.run(runtime.ainvoke("echo", {}))  # another loop, the same worker
    sync = runtime.invoke("echo", {})  # and a thread, while a closed loop had watched it
    assert first.payload["pid"] == second.payload["pid"] == sync.payload["pid"]
    assert not second.cold and not sync.cold
    runtime.pool.stop_idle()
    third = asyncio.run(runtime.ainvoke("echo", {}))
    assert third.cold and third.payload["pid"] != first.payload["pid"]


def test_statistics_of_loop_calls_are_stored(rt_app: App, tmp_project: Project) -> None:
    options = RuntimeOptions(max_concurrency=21)  # one is reserved for "single"
    with Runtime(rt_app, engine=tmp_project.metadata, options=options) as runtime:

        async def calls() -> list[Invocation]:
            return list(await asyncio.gather(*(runtime.ainvoke("echo", {}) for _ in range(20))))

        results = asyncio.run(calls())
    t = invocations_table.c
    with tmp_project.metadata.connect() as conn:
        stored = {row.request_id for row in conn.execute(sa.select(t.request_id))}
    assert stored == {r.request_id for r in results}  # all stored once close() returned


def test_a_call_whose_loop_closes_still_finishes(rt_app: App, tmp_project: Project) -> None:
    with Runtime(rt_app, engine=tmp_project.metadata) as runtime:
        runtime.invoke("slow", {})

        async def leave(seconds: float) -> None:
            pending = asyncio.ensure_future(runtime.ainvoke("slow", {"seconds": 0.3}))
            await asyncio.sleep(seconds)  # asyncio.run then cancels it and closes the loop
            assert not pending.done()

        asyncio.run(leave(0.05))  # a warm worker was at it
        assert runtime.limits.running("slow") == 1
        wait_until(lambda: runtime.limits.running("slow") == 0)
        assert runtime.pool.idle_count("slow") == 1 and runtime.pool.busy_count() == 0
        runtime.pool.stop_idle()
        asyncio.run(leave(0))  # a cold start was under way
        wait_until(lambda: runtime.limits.running("slow") == 0)
        assert runtime.pool.idle_count("slow") == 1 and runtime.pool.busy_count() == 0
        runtime.flush()
        t = invocations_table.c
        query = sa.select(t.outcome).where(t.function == "slow")
        with tmp_project.metadata.connect() as conn:
            assert [row.outcome for row in conn.execute(query)] == ["ok"] * 3


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)
