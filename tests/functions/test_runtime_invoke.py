"""Synchronous invocation through forked workers: results, failures, isolation."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lakelet.errors import ConfigError, NotFoundError, UserError
from lakelet.functions.invocation import Invoker
from lakelet.functions.loader import import_app
from lakelet.functions.model import App
from lakelet.functions.runtime import Runtime, RuntimeOptions

APPS = Path(__file__).parent / "apps"
REPORT_RE = re.compile(
    r"^REPORT RequestId: (?P<id>[0-9a-f-]{36})\tDuration: (?P<duration>\d+\.\d\d) ms"
    r"\tBilled Duration: (?P<billed>\d+) ms\tMemory Size: (?P<memory>\d+) MB"
    r"\tMax Memory Used: (?P<used>\d+) MB(?:\tInit Duration: (?P<init>\d+\.\d\d) ms)?"
    r"(?P<status>\t.*)?$"
)


@pytest.fixture(scope="module")
def rt_app() -> App:
    return import_app("rt_app:app", APPS)


@pytest.fixture(scope="module")
def runtime(rt_app: App, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    imports = tmp_path_factory.mktemp("imports") / "log"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RT_IMPORT_LOG", str(imports))
        runtime = Runtime(rt_app, options=RuntimeOptions(max_concurrency=8))
        runtime.start()
    runtime.import_log = imports  # type: ignore[attr-defined]
    yield runtime
    runtime.close()


def report_of(logs: str) -> re.Match[str]:
    lines = [line for line in logs.splitlines() if line.startswith("REPORT ")]
    assert len(lines) == 1, logs
    match = REPORT_RE.match(lines[0])
    assert match is not None, lines[0]
    return match


def test_sync_invoke_returns_payload_logs_and_report(runtime: Runtime) -> None:
    invoker: Invoker = runtime  # the protocol the gateway and the event sources use
    invocation = invoker.invoke("echo", {"n": 1})
    assert invocation.outcome == "ok"
    assert invocation.failure is None
    payload = invocation.payload
    assert payload["event"] == {"n": 1}
    assert payload["request_id"] == invocation.request_id
    assert payload["function_name"] == "echo"
    assert payload["memory"] == "128"
    assert 0 < payload["remaining_ms"] <= 3000
    logs = invocation.logs.splitlines()
    assert logs[0] == f"START RequestId: {invocation.request_id} Version: $LATEST"
    assert "echo got {'n': 1}" in logs
    assert any(
        line.startswith("[WARNING]\t") and line.endswith(f"\t{invocation.request_id}\ta warning")
        for line in logs
    )
    assert logs[-2] == f"END RequestId: {invocation.request_id}"
    report = report_of(invocation.logs)
    assert report["id"] == invocation.request_id
    assert float(report["duration"]) == pytest.approx(invocation.duration_ms, abs=0.01)
    assert int(report["billed"]) == invocation.billed_ms
    assert int(report["memory"]) == 128
    assert 0 < int(report["used"]) == invocation.max_memory_used_mb


def test_cold_then_warm(rt_app: App) -> None:
    with Runtime(rt_app) as runtime:
        first = runtime.invoke("echo", {})
        second = runtime.invoke("echo", {})
    assert first.cold and first.init_ms is not None and first.init_ms > 0
    assert report_of(first.logs)["init"] is not None
    assert first.billed_ms >= first.duration_ms + first.init_ms
    assert not second.cold
    assert report_of(second.logs)["init"] is None
    assert first.payload["pid"] == second.payload["pid"]  # the warm worker was reused


def test_handler_exception_is_lambdas_error_payload(runtime: Runtime) -> None:
    invocation = runtime.invoke("fail", {"x": 1})
    assert invocation.outcome == "error"
    assert invocation.payload is None
    failure = invocation.failure
    assert failure is not None
    assert failure.error_type == "ValueError"
    assert failure.message == "bad input: {'x': 1}"
    assert len(failure.stack_trace) == 1  # the handler's frame, not the runtime's
    assert 'rt_app.py", line' in failure.stack_trace[0]
    assert "in fail" in failure.stack_trace[0]
    assert "about to fail" in invocation.logs
    assert "[ERROR] ValueError: bad input: {'x': 1}" in invocation.logs
    assert runtime.invoke("echo", {}).outcome == "ok"  # the worker survives an exception


def test_timeout_kills_the_worker_and_the_next_call_is_cold(runtime: Runtime) -> None:
    assert runtime.invoke("sleepy", {"seconds": 0}).outcome == "ok"
    started = time.monotonic()
    timed_out = runtime.invoke("sleepy", {"seconds": 30})
    took = time.monotonic() - started
    assert timed_out.outcome == "timeout"
    assert 0.5 <= took < 5
    assert timed_out.failure is not None
    assert timed_out.failure.error_type == "Sandbox.Timedout"
    assert timed_out.failure.message.endswith("Task timed out after 0.50 seconds")
    assert "going to sleep" in timed_out.logs  # what it printed before it was killed
    assert "Task timed out after 0.50 seconds" in timed_out.logs
    assert report_of(timed_out.logs)["status"] == "\tStatus: timeout"
    after = runtime.invoke("sleepy", {"seconds": 0})
    assert after.outcome == "ok" and after.payload == "woke"
    assert after.cold


def test_memory_limit_kills_the_worker(runtime: Runtime) -> None:
    invocation = runtime.invoke("hog", {})
    assert invocation.outcome == "out_of_memory"
    assert invocation.failure is not None
    assert invocation.failure.error_type == "Runtime.OutOfMemory"
    assert invocation.failure.message.endswith("Runtime exited with error: signal: killed")
    assert invocation.max_memory_used_mb >= 128
    assert "\tStatus: error\tError Type: Runtime.OutOfMemory" in invocation.logs
    assert runtime.invoke("hog", {}).outcome == "out_of_memory"  # a fresh worker, killed too


def test_environment_is_per_function(runtime: Runtime) -> None:
    env = runtime.invoke("env", {}).payload
    assert env == {
        "COLOR": "blue",
        "AWS_LAMBDA_FUNCTION_NAME": "env",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "TZ": ":UTC",
    }
    assert runtime.invoke("plain", {}).payload == {"COLOR": None}


def test_forked_workers_do_not_share_random_state(rt_app: App) -> None:
    with Runtime(rt_app, options=RuntimeOptions(max_concurrency=4)) as runtime:
        first = runtime.invoke("rand", {}).payload
        runtime.pool.stop_idle()
        second = runtime.invoke("rand", {}).payload
    assert first["pid"] != second["pid"]
    assert first["random"] != second["random"]


def test_app_module_is_imported_once_in_the_zygote(runtime: Runtime) -> None:
    pids = set()
    for _ in range(3):
        runtime.pool.stop_idle("echo")
        payload = runtime.invoke("echo", {}).payload
        pids.add(payload["pid"])
        assert payload["imported_in"] == runtime.zygote.pid
    assert len(pids) == 3  # three cold starts ...
    imports = runtime.import_log.read_text().split()  # type: ignore[attr-defined]
    assert imports == [str(runtime.zygote.pid)]  # ... and one import


def test_result_that_is_not_json_is_a_marshal_error(runtime: Runtime) -> None:
    invocation = runtime.invoke("not_json", {})
    assert invocation.outcome == "error"
    assert invocation.failure is not None
    assert invocation.failure.error_type == "Runtime.MarshalError"
    assert "set is not JSON serializable" in invocation.failure.message


def test_a_worker_that_exits_is_a_runtime_exit_error(runtime: Runtime) -> None:
    invocation = runtime.invoke("exits", {})
    assert invocation.outcome == "error"
    assert invocation.failure is not None
    assert invocation.failure.error_type == "Runtime.ExitError"
    assert runtime.invoke("exits", {}).failure is not None  # a new worker each time


def test_module_that_fails_to_import_is_an_import_module_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broken = import_app("rt_broken_app:app", APPS)
    monkeypatch.setenv("RT_BREAK", "1")  # the zygote's import fails, not this one
    with Runtime(broken) as runtime:
        invocation = runtime.invoke("handler", {})
    assert invocation.outcome == "error"
    assert invocation.failure is not None
    assert invocation.failure.error_type == "Runtime.ImportModuleError"
    assert invocation.failure.message == (
        "Unable to import module 'rt_broken_app': the database driver is missing"
    )
    assert "Status: error\tError Type: Runtime.ImportModuleError" in invocation.logs


def test_missing_handler_is_handler_not_found(rt_app: App) -> None:
    spec = dataclasses.replace(rt_app.get("echo"), name="ghost", handler_ref="rt_app:ghost")
    app = App("ghosts", functions={"ghost": spec})
    with Runtime(app) as runtime:
        invocation = runtime.invoke("ghost", {})
    assert invocation.failure is not None
    assert invocation.failure.error_type == "Runtime.HandlerNotFound"
    assert invocation.failure.message == "Handler 'ghost' missing on module 'rt_app'"


def test_handlers_a_worker_cannot_find_are_refused() -> None:
    def local(event: object, context: object) -> None: ...

    app = App("locals")
    app.function()(local)
    with pytest.raises(ConfigError, match="define handlers at the top level"):
        Runtime(app)


def test_bad_calls_are_user_errors(runtime: Runtime) -> None:
    with pytest.raises(NotFoundError, match="no function 'nope'"):
        runtime.invoke("nope", {})
    with pytest.raises(UserError, match="the event is not JSON"):
        runtime.invoke("echo", {"when": object()})


def test_ainvoke_does_not_block_the_event_loop(runtime: Runtime) -> None:
    async def scenario() -> tuple[list[str], int]:
        ticks = 0
        stop = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0.01)

        tick_task = asyncio.create_task(ticker())
        results = await asyncio.gather(
            runtime.ainvoke("slow", {"seconds": 0.3}), runtime.ainvoke("slow", {"seconds": 0.3})
        )
        stop.set()
        await tick_task
        return [r.payload for r in results], ticks

    payloads, ticks = asyncio.run(scenario())
    assert payloads == ["done", "done"]
    assert ticks >= 10  # the loop kept running while both calls waited
