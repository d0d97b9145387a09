"""Functions runtime benchmark (issue 5), printed as a table.

* Cold start, p50/p99: ``invoke`` of a function with no warm worker, from the call to
  its result (the zygote's pre-forked child specialised, or a fork, the handler, the
  reply), against a fresh ``python -c 'import <handler module>'`` process, for a light
  handler module (imports lakelet) and a heavy one (also pyarrow and duckdb). Goal:
  10 ms p50. Cold starts 5 ms apart (the zygote's next child is ready), and back to
  back (it is still being made, or the call forks).
* Warm invocation overhead, p50/p99: a no-op handler's round trip, ``invoke`` and
  ``ainvoke``, minus the time inside the handler.
* A burst of 10× the concurrency limit: synchronous calls answered 200 or 429 and
  nothing else; as many asynchronous events, every one run.

Run from the repository root: ``.venv/bin/python benchmarks/functions.py [--runs N]``;
``bench_functions`` gives ``benchmarks/run.py`` its rows.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from lakelet.functions.invocation import Invocation, TooManyRequests
from lakelet.functions.runtime import Runtime, RuntimeOptions
from lakelet.functions.runtime.stats import percentile

COLD_START_GOAL_MS = 10.0
COLD_PAUSE_S = 0.005
BURST_LIMIT = 4
BURST_FACTOR = 10

LIGHT = """
import json
import lakelet

app = lakelet.App("bench")


@app.function()
def noop(event, context):
    return None


@app.function(timeout_s=10)
def work(event, context):
    import time

    time.sleep(event.get("seconds", 0.05))
    return {"ok": True}
"""
HEAVY = """
import duckdb
import pyarrow
import lakelet

app = lakelet.App("bench_heavy")


@app.function()
def noop(event, context):
    return None
"""

Row = tuple[str, float | None, float | None, str]


def write_apps(folder: Path) -> None:
    (folder / "bench_fn_light.py").write_text(LIGHT)
    (folder / "bench_fn_heavy.py").write_text(HEAVY)


def _app(module: str, folder: Path) -> Any:
    from lakelet.functions.loader import import_app

    return import_app(f"{module}:app", folder)


def _p(values: list[float]) -> tuple[float | None, float | None]:
    ordered = sorted(values)
    return percentile(ordered, 50), percentile(ordered, 99)


def bench_cold_start(folder: Path, runs: int) -> list[Row]:
    rows: list[Row] = []
    for module, fresh_runs in (("bench_fn_light", runs), ("bench_fn_heavy", max(5, runs // 5))):
        app = _app(module, folder)
        with Runtime(app, options=RuntimeOptions(max_concurrency=2)) as runtime:
            boot = runtime.zygote.boot
            runtime.invoke("noop", {})  # the first cold start after boot is not typical
            for pause_s, label in ((COLD_PAUSE_S, "5 ms apart"), (0.0, "back to back")):
                wall, init = _cold_starts(runtime, runs, pause_s)
                p50, p99 = _p(wall)
                init50, _ = _p(init)
                note = f"{runs} runs; Init Duration p50 {init50:.2f} ms"
                if pause_s:
                    verdict = "ok" if p50 is not None and p50 <= COLD_START_GOAL_MS else "OVER"
                    zygote = f"zygote boot {boot.boot_ms:.0f} ms" if boot else ""
                    note += f"; {zygote}; goal {COLD_START_GOAL_MS:g} ms p50: {verdict}"
                rows.append((f"cold start, {label} ({module})", p50, p99, note))
        fresh = [_fresh_import(module, folder) for _ in range(fresh_runs)]
        p50, p99 = _p(fresh)
        rows.append(
            (
                f"cold start, fresh `python -c 'import {module}'`",
                p50,
                p99,
                f"{fresh_runs} runs; process start and imports only, no invocation",
            )
        )
    return rows


def _cold_starts(runtime: Runtime, runs: int, pause_s: float) -> tuple[list[float], list[float]]:
    wall: list[float] = []
    init: list[float] = []
    for _ in range(runs):
        runtime.pool.stop_idle()
        time.sleep(pause_s)
        started = time.perf_counter()
        invocation = runtime.invoke("noop", {})
        wall.append((time.perf_counter() - started) * 1000)
        assert invocation.cold and invocation.outcome == "ok", invocation
        init.append(invocation.init_ms or 0.0)
    return wall, init


def _fresh_import(module: str, folder: Path) -> float:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), *sys.path])}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"import {module}"], env=env, check=True, cwd=folder)
    return (time.perf_counter() - started) * 1000


def bench_warm(folder: Path, runs: int) -> list[Row]:
    app = _app("bench_fn_light", folder)
    rows: list[Row] = []
    with Runtime(app, options=RuntimeOptions(max_concurrency=2)) as runtime:
        runtime.invoke("noop", {})

        def sync_call() -> Invocation:
            return runtime.invoke("noop", {"n": 1})

        async def async_calls() -> list[float]:
            overheads = []
            for _ in range(runs):
                started = time.perf_counter()
                invocation = await runtime.ainvoke("noop", {"n": 1})
                overheads.append((time.perf_counter() - started) * 1000 - invocation.duration_ms)
            return overheads

        overheads = _overheads(sync_call, runs)
        rows.append(("warm invocation overhead, invoke", *_p(overheads), f"{runs} calls"))
        overheads = asyncio.run(async_calls())
        rows.append(("warm invocation overhead, ainvoke", *_p(overheads), f"{runs} calls"))
    return rows


def _overheads(call: Callable[[], Invocation], runs: int) -> list[float]:
    overheads = []
    for _ in range(runs):
        started = time.perf_counter()
        invocation = call()
        overheads.append((time.perf_counter() - started) * 1000 - invocation.duration_ms)
    return overheads


def bench_burst(folder: Path) -> list[Row]:
    from lakelet.project import init_project

    project = init_project(folder / "project")
    app = _app("bench_fn_light", folder)
    total = BURST_LIMIT * BURST_FACTOR
    options = RuntimeOptions(max_concurrency=BURST_LIMIT, async_poll_s=0.05)
    with Runtime(app, engine=project.metadata, options=options) as runtime:
        for _ in range(BURST_LIMIT):
            runtime.invoke("noop", {})

        async def burst() -> list[Any]:
            calls = [runtime.ainvoke("work", {"seconds": 0.05}) for _ in range(total)]
            return await asyncio.gather(*calls, return_exceptions=True)

        started = time.perf_counter()
        results = asyncio.run(burst())
        sync_s = time.perf_counter() - started
        ok = sum(1 for r in results if isinstance(r, Invocation) and r.outcome == "ok")
        throttled = sum(1 for r in results if isinstance(r, TooManyRequests))
        errors = total - ok - throttled

        started = time.perf_counter()
        accepted = [
            runtime.invoke("work", {"seconds": 0.05}, invocation_type="Event") for _ in range(total)
        ]
        delivered = 0
        for invocation in accepted:
            ran = runtime.events.wait_for(invocation.request_id, timeout=60)
            delivered += ran is not None and ran.outcome == "ok"
        async_s = time.perf_counter() - started
        pending = runtime.events.pending("work")
    verdict = "ok" if errors == 0 and delivered == total and pending == 0 else "LOST OR FAILED"
    return [
        (
            f"burst {total} sync calls, limit {BURST_LIMIT}",
            sync_s * 1000,
            None,
            f"200: {ok}, 429: {throttled}, errors: {errors}",
        ),
        (
            f"burst {total} async events, limit {BURST_LIMIT}",
            async_s * 1000,
            None,
            f"accepted {len(accepted)}, delivered {delivered}, still queued {pending}: {verdict}",
        ),
    ]


def bench_functions(workdir: Path, runs: int = 100) -> list[Row]:
    """Every functions figure: (label, p50 or total ms, p99 ms, note)."""
    folder = workdir / "functions"
    folder.mkdir(parents=True, exist_ok=True)
    write_apps(folder)
    return bench_cold_start(folder, runs) + bench_warm(folder, runs * 5) + bench_burst(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=100, help="cold starts to time")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lakelet-bench-functions-") as tmp:
        results = bench_functions(Path(tmp), args.runs)
    table = Table(title="Lakelet functions benchmark", title_justify="left", header_style="bold")
    table.add_column("benchmark")
    table.add_column("p50 / total ms", justify="right")
    table.add_column("p99 ms", justify="right")
    table.add_column("notes")
    for label, p50, p99, note in results:
        table.add_row(label, _ms(p50), _ms(p99), note)
    console = Console()
    if not console.is_terminal:
        console.width = 140
    console.print(table)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    console.print(f"{os.cpu_count()} CPUs, load average {load:.1f} while measuring")


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


if __name__ == "__main__":
    main()
