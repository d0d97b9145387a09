"""Gateway throughput: Lakelet's API gateway against a bare Starlette app on uvicorn.

Issue 5 asks the gateway, serving a trivial route through the forked-worker runtime of
``lakelet up``, to reach at least 0.7× the requests per second of a bare Starlette app
on uvicorn serving the same JSON on the same machine (same uvicorn settings). Each
server runs in its own process; load comes from ``wrk`` (Debian's ``wrk`` package) or,
without it, from a minimal asyncio HTTP client in another process. Each round measures
every server, in rotating order, and the median of the rounds' ratios counts, so a
noisy neighbour hurts all alike. Besides throughput and latency, each row gives the CPU
time per request of the server process and of its workers (Linux, from ``/proc``): on a
shared machine these vary less than requests per second do.

Run from the repository root: ``.venv/bin/python benchmarks/gateway.py``. The goal row
is the gateway on ``--invoker`` (default ``lakelet_gateway_bench:forked_runtime``, what
``lakelet up`` serves with); ``--extra-invoker`` adds a row for another (default the
in-process ``DirectInvoker`` calling the handler on the event loop, ``direct_inline``:
the gateway's own cost; ``none`` leaves it out). An invoker is a ``module:callable``
that gets the benchmark's :class:`~lakelet.functions.App` and returns an Invoker (it
may have a ``close()``); ``lakelet_gateway_bench:direct_threaded`` runs handlers in a
thread.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import importlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lakelet.functions import App

GOAL = 0.7
PATH = "/hello"
PAYLOAD = {"message": "hello"}
MODULE_NAME = "lakelet_gateway_bench"  # how server processes import this file
DEFAULT_INVOKER = f"{MODULE_NAME}:forked_runtime"  # what `lakelet up` serves with
EXTRA_INVOKER = f"{MODULE_NAME}:direct_inline"
START_TIMEOUT_S = 30.0

app = App("bench")


@app.route(PATH)
def hello(event: Any, context: Any) -> Any:
    """The trivial route: a small JSON object, as the bare app returns."""
    return PAYLOAD


def direct_inline(bench_app: App) -> Any:
    """The in-process invoker, calling the handler on the event loop (no thread hop):
    what is left is the gateway's own cost."""
    from lakelet.functions.direct import DirectInvoker

    return DirectInvoker(bench_app, inline=True)


def direct_threaded(bench_app: App) -> Any:
    """The in-process invoker as ``lakelet up`` would use it for development."""
    from lakelet.functions.direct import DirectInvoker

    return DirectInvoker(bench_app)


def forked_runtime(bench_app: App) -> Any:
    """The forked-worker runtime of ``lakelet up`` (its zygote imports this file by
    the module name the handlers carry, through a link in a temporary folder)."""
    from lakelet.functions.runtime import Runtime, RuntimeOptions

    folder = Path(tempfile.mkdtemp(prefix="lakelet-bench-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    (folder / f"{MODULE_NAME}.py").symlink_to(Path(__file__).resolve())
    options = RuntimeOptions(max_concurrency=64)  # more than the load's connections
    runtime = Runtime(bench_app, options=options, sys_path=[str(folder), *sys.path])
    runtime.start()
    return runtime


@dataclass(frozen=True)
class Result:
    target: str
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    cpu_us: float  # the server process's CPU time per request
    workers_cpu_us: float  # its child processes' (the runtime's zygote and workers)
    ratio: float  # the median of the rounds' throughput against the bare app's


# --- servers --------------------------------------------------------------------------


def bare_app() -> Any:
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def endpoint(request: Any) -> JSONResponse:
        return JSONResponse(PAYLOAD)

    return Starlette(routes=[Route(PATH, endpoint)])


def gateway_app(invoker_ref: str) -> tuple[Any, Any]:
    from lakelet.functions.gateway import GatewaySettings, build_gateway

    module = importlib.import_module(MODULE_NAME)
    factory = _resolve(invoker_ref)
    invoker = factory(module.app)
    return build_gateway(module.app, invoker, GatewaySettings()), invoker


def serve(target: str, port: int, invoker_ref: str) -> None:
    """Run one server until killed (the ``--serve`` mode of this script)."""
    import uvicorn

    _import_self()
    invoker = None
    if target == "bare":
        asgi = bare_app()
    else:
        asgi, invoker = gateway_app(invoker_ref)
    config = uvicorn.Config(
        asgi, host="127.0.0.1", port=port, lifespan="off", access_log=False, log_level="warning"
    )
    try:
        uvicorn.Server(config).run()
    except KeyboardInterrupt:
        pass  # how run_benchmark stops a server: SIGINT lets this process clean up
    finally:
        close = getattr(invoker, "close", None)
        if callable(close):
            close()


def _import_self() -> None:
    """Import this file as a module, so the app's handlers have an importable
    ``handler_ref`` (forked workers find them by it)."""
    if MODULE_NAME in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(MODULE_NAME, Path(__file__))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE_NAME] = module
    spec.loader.exec_module(module)


def _resolve(ref: str) -> Any:
    module, _, attribute = ref.partition(":")
    value: Any = importlib.import_module(module)
    for part in attribute.split("."):
        value = getattr(value, part)
    return value


def start_server(target: str, invoker_ref: str) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--serve",
            target,
            "--port",
            str(port),
            *("--invoker", invoker_ref),
        ],
    )
    url = f"http://127.0.0.1:{port}{PATH}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if json.loads(response.read()) != PAYLOAD:
                    raise RuntimeError(f"{target}: unexpected response from {url}")
                return process, url
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"{target} server did not start") from None
            time.sleep(0.1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# --- load -----------------------------------------------------------------------------

WRK_SCRIPT = """
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  io.write(string.format("RESULT %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), errors))
end
"""


def drive_wrk(url: str, seconds: float, connections: int) -> tuple[float, float, float, int, int]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT)
    try:
        done = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                "-s",
                script.name,
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        Path(script.name).unlink()
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    requests, duration_us, p50_us, p99_us, errors = (int(v) for v in line.split()[1:])
    return requests / (duration_us / 1e6), p50_us / 1000, p99_us / 1000, requests, errors


def drive_python(
    url: str, seconds: float, connections: int
) -> tuple[float, float, float, int, int]:
    command = [sys.executable, __file__, "--drive", url, "--seconds", str(seconds)]
    command.extend(["--connections", str(connections)])
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        check=True,
    )
    data = json.loads(done.stdout)
    return data["rps"], data["p50_ms"], data["p99_ms"], data["requests"], data["errors"]


async def _python_load(url: str, seconds: float, connections: int) -> dict[str, Any]:
    """Keep-alive GETs on ``connections`` sockets, with a minimal HTTP/1.1 client (an
    HTTP library would be the bottleneck, not the server)."""
    parts = urllib.parse.urlsplit(url)
    request = f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n".encode()
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - started)
                errors += not head.startswith(b"HTTP/1.1 200")
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    quantiles = statistics.quantiles(latencies, n=100)
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": quantiles[49] * 1000,
        "p99_ms": quantiles[98] * 1000,
        "requests": len(latencies),
        "errors": errors,
    }


# --- CPU time ----------------------------------------------------------------------


def _cpu_seconds(root: int) -> tuple[float, float]:
    """CPU time so far of process ``root`` and of all its descendants, live ones
    (Linux ``/proc``; NaN elsewhere). Workers that exited are not counted: the
    benchmark's stay up while it measures."""
    if not os.path.isdir("/proc"):
        return float("nan"), float("nan")
    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    used: dict[int, float] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as file:
                text = file.read()
        except OSError:
            continue
        fields = text[text.rfind(")") + 2 :].split()
        parents[int(name)] = int(fields[1])
        used[int(name)] = (int(fields[11]) + int(fields[12])) / tick
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    descendants = 0.0
    pending = list(children.get(root, []))
    while pending:
        pid = pending.pop()
        descendants += used.get(pid, 0.0)
        pending.extend(children.get(pid, []))
    return used.get(root, float("nan")), descendants


# --- the benchmark --------------------------------------------------------------------


@dataclass(frozen=True)
class Benchmark:
    results: list[Result]  # bare, the goal's gateway, then any extra
    ratio: float  # the goal: the median of the rounds' gateway/bare throughput ratios
    load: tuple[float, float]  # the machine's 1-minute load average before and after


Measured = tuple[float, float, float, int, int, float, float]


def run_benchmark(
    *,
    seconds: float = 3.0,
    rounds: int = 5,
    connections: int = 16,
    invoker: str = DEFAULT_INVOKER,
    extra_invoker: str | None = EXTRA_INVOKER,
    driver: str | None = None,
) -> Benchmark:
    """Median-round results for the bare app, the gateway on ``invoker`` (the goal) and,
    unless ``None``, on ``extra_invoker`` (each a ``module:callable`` making the
    gateway's invoker from the benchmark app). Each round measures all, in rotating
    order, so the ratios compare neighbours in time."""
    drive = {"wrk": drive_wrk, "python": drive_python}[driver or _default_driver()]
    targets = {"bare": ("bare", invoker), _label(invoker): ("gateway", invoker)}
    if extra_invoker:
        targets[_label(extra_invoker)] = ("gateway", extra_invoker)
    load_before = _load()
    servers: dict[str, tuple[subprocess.Popen[bytes], str]] = {}
    runs: dict[str, list[Measured]] = {t: [] for t in targets}
    try:
        for name, (kind, ref) in targets.items():
            servers[name] = start_server(kind, ref)
        for _, url in servers.values():
            drive(url, 1.0, connections)  # warm up: imports, caches, the first workers
        names = list(servers)
        for number in range(rounds):
            shift = number % len(names)
            for name in names[shift:] + names[:shift]:
                process, url = servers[name]
                before = _cpu_seconds(process.pid)
                rps, p50, p99, requests, errors = drive(url, seconds, connections)
                after = _cpu_seconds(process.pid)
                per = 1e6 / max(requests, 1)
                main_us, workers_us = ((a - b) * per for a, b in zip(after, before, strict=True))
                runs[name].append((rps, p50, p99, requests, errors, main_us, workers_us))
    finally:
        for process, _ in servers.values():
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
    results = []
    for name, measured in runs.items():
        rps, p50, p99, requests, errors, _, _ = sorted(measured, key=lambda m: m[0])[
            len(measured) // 2
        ]
        ratios = [m[0] / b[0] for m, b in zip(measured, runs["bare"], strict=True)]
        results.append(
            Result(
                name,
                rps,
                p50,
                p99,
                requests,
                errors,
                statistics.median(m[5] for m in measured),
                statistics.median(m[6] for m in measured),
                statistics.median(ratios),
            )
        )
    return Benchmark(results, results[1].ratio, (load_before, _load()))


def _label(invoker: str) -> str:
    return f"gateway: {invoker.rpartition(':')[2]}"


def _default_driver() -> str:
    return "wrk" if shutil.which("wrk") else "python"


def _load() -> float:
    """Other work on the machine skews both servers; the report says how much there was."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def report(benchmark: Benchmark, invoker: str, driver: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"Gateway vs bare Starlette on uvicorn (load: {driver}; goal: the gateway "
        f"on {invoker})",
        title_justify="left",
        header_style="bold",
    )
    table.add_column("target", no_wrap=True)
    for column in ("req/s", "× bare", "p50 ms", "p99 ms", "CPU µs", "workers µs", "errors"):
        table.add_column(column, justify="right")
    for r in benchmark.results:
        table.add_row(
            r.target,
            f"{r.requests_per_s:,.0f}",
            f"{r.ratio:.2f}",
            f"{r.p50_ms:.2f}",
            f"{r.p99_ms:.2f}",
            f"{r.cpu_us:.0f}",
            f"{r.workers_cpu_us:.0f}",
            str(r.errors),
        )
    verdict = "ok" if benchmark.ratio >= GOAL else "BELOW GOAL"
    console = Console()
    console.print(table)
    console.print(
        f"goal: {benchmark.results[1].target} ≥ {GOAL}× bare (median of rounds): "
        f"{benchmark.ratio:.2f}× — {verdict}; CPU µs: per request, of the server process "
        "and of its workers"
    )
    before, after = benchmark.load
    console.print(
        f"{os.cpu_count()} CPUs; load average {before:.1f} before, {after:.1f} after "
        "(each server, the load generator and any workers share them)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="load per round and target")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (the median counts)")
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections")
    parser.add_argument(
        "--invoker", default=DEFAULT_INVOKER, help="the goal's invoker: module:callable(app)"
    )
    parser.add_argument(
        "--extra-invoker", default=EXTRA_INVOKER, help="another row's invoker, or none"
    )
    parser.add_argument("--driver", choices=["wrk", "python"], help="load generator")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--serve", choices=["bare", "gateway"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--drive", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.port, args.invoker)
        return 0
    if args.drive:
        stats = asyncio.run(_python_load(args.drive, args.seconds, args.connections))
        print(json.dumps(stats))
        return 0
    driver = args.driver or _default_driver()
    benchmark = run_benchmark(
        seconds=args.seconds,
        rounds=args.rounds,
        connections=args.connections,
        invoker=args.invoker,
        extra_invoker=None if args.extra_invoker == "none" else args.extra_invoker,
        driver=driver,
    )
    if args.json:
        print(json.dumps(asdict(benchmark), indent=2))
    else:
        report(benchmark, args.invoker, driver)
    return 0


if __name__ == "__main__":
    sys.exit(main())


def bench_gateway(invoker: str = DEFAULT_INVOKER) -> list[tuple[str, float, str]]:
    """Rows for ``benchmarks/run.py``: the gateway on the forked runtime (the goal) and
    in process, against bare Starlette."""
    measured = run_benchmark(invoker=invoker)
    bare, gateway, *extra = measured.results
    verdict = "ok" if measured.ratio >= GOAL else "BELOW GOAL"
    rows = [
        (
            f"functions: {gateway.target} req/s vs bare Starlette",
            float("nan"),
            f"{gateway.requests_per_s:,.0f} vs {bare.requests_per_s:,.0f} req/s = "
            f"{measured.ratio:.2f}× (goal {GOAL}×: {verdict}); p50/p99 {gateway.p50_ms:.1f}/"
            f"{gateway.p99_ms:.1f} ms vs {bare.p50_ms:.1f}/{bare.p99_ms:.1f} ms; CPU "
            f"{gateway.cpu_us:.0f} µs/req (+ workers {gateway.workers_cpu_us:.0f}) vs "
            f"{bare.cpu_us:.0f}; load {measured.load[0]:.1f}→{measured.load[1]:.1f}",
        )
    ]
    for other in extra:
        rows.append(
            (
                f"functions: {other.target} req/s vs bare Starlette",
                float("nan"),
                f"{other.requests_per_s:,.0f} req/s = {other.ratio:.2f}×; p50/p99 "
                f"{other.p50_ms:.1f}/{other.p99_ms:.1f} ms; CPU {other.cpu_us:.0f} µs/req",
            )
        )
    return rows
