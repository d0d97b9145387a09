"""Gateway throughput: Lakelet's API gateway against a bare Starlette app on uvicorn.

Issue 5 asks the gateway, serving a trivial route as ``lakelet up`` serves it, to reach
at least 0.7× the requests per second of a bare Starlette app on uvicorn serving the
same JSON on the same machine, with the same uvicorn settings. The goal row runs the
real ``lakelet up`` command on a throw-away project (its metadata database, invocation
records and per-function log files, the logging it sets up, the gateway settings'
defaults); afterwards the benchmark counts the invocations the project stored and the
``REPORT`` lines it logged, so a goal met by recording less would show. Other rows,
for orientation, serve the gateway from this script on another invoker: by default the
forked-worker runtime without a database (nothing stored) and the in-process
``DirectInvoker`` calling the handler on the event loop (``direct_inline``: the
gateway's own cost). An invoker is a ``module:callable`` that gets the benchmark's
:class:`~lakelet.functions.App` and returns an Invoker (it may have a ``close()``).

Each server runs in one process of its own (``lakelet up``'s workers are processes
forked from its zygote); load comes from ``wrk`` (Debian's ``wrk`` package) or, without
it, from a minimal asyncio HTTP client in another process. Each round measures every
server, in rotating order, and the median of the rounds' ratios counts, so a noisy
neighbour hurts all alike. The servers start once the CPUs are mostly idle (in ``make
bench`` the other benchmarks ran just before), and each measurement follows half a
second of the same load, unmeasured: a server idle while the others were measured may
have had pages taken back (this machine's kernel pages out memory that stays cold,
DAMON's ``pageout``). Besides throughput and latency, each row gives the CPU time per
request of the server process and of its descendants (Linux, from ``/proc``: the
runtime's zygote and workers, and ``lakelet up``'s invocation recorder process): on a
shared machine these vary less than requests per second do.

Run from the repository root: ``.venv/bin/python benchmarks/gateway.py``.
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
GOAL_TARGET = "lakelet up"  # the goal row: the real command on a throw-away project
# The other rows' invokers: the forked runtime without a database, and in process.
EXTRA_INVOKERS = (f"{MODULE_NAME}:forked_runtime", f"{MODULE_NAME}:direct_inline")
MAX_CONCURRENCY = 64  # [functions] max_concurrency: more than the load's connections
START_TIMEOUT_S = 30.0
REWARM_S = 0.5  # load before each measurement, not measured

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
    """The forked-worker runtime of ``lakelet up`` without a metadata database: nothing
    is stored or written to log files (its zygote imports this file by the module name
    the handlers carry, through a link in a temporary folder)."""
    from lakelet.functions.runtime import Runtime, RuntimeOptions

    folder = Path(tempfile.mkdtemp(prefix="lakelet-bench-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    (folder / f"{MODULE_NAME}.py").symlink_to(Path(__file__).resolve())
    options = RuntimeOptions(max_concurrency=MAX_CONCURRENCY)
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
    workers_cpu_us: float  # its descendants' (zygote, workers, the invocation recorder)
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
    """Run one server until killed (the ``--serve`` mode of this script), with the
    uvicorn settings ``lakelet up`` serves its gateway with."""
    import uvicorn

    from lakelet.functions.gateway.server import uvicorn_config

    _import_self()
    invoker = None
    if target == "bare":
        asgi = bare_app()
    else:
        asgi, invoker = gateway_app(invoker_ref)
    try:
        uvicorn.Server(uvicorn_config(asgi, host="127.0.0.1", port=port)).run()
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


@dataclass
class Server:
    """A server under load; ``project`` is the folder of ``lakelet up``'s project."""

    process: subprocess.Popen[bytes]
    url: str
    project: Path | None = None


def start_server(target: str, invoker_ref: str = "") -> Server:
    """``bare``, ``gateway`` (from this script, on ``invoker_ref``) or ``up``."""
    port = _free_port()
    project = None
    if target == "up":
        project = make_project()
        command = [
            sys.executable,
            "-c",
            "import sys; from lakelet.cli.main import main; sys.exit(main())",
            *("--project", str(project), "up", "--port", str(port)),
        ]
        # lakelet up logs a line per invocation (REPORT) to standard error: a file here
        with (project / "up.log").open("wb") as stderr:
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
    else:
        command = [sys.executable, __file__, "--serve", target, "--port", str(port)]
        process = subprocess.Popen([*command, "--invoker", invoker_ref])
    url = f"http://127.0.0.1:{port}{PATH}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if json.loads(response.read()) != PAYLOAD:
                    raise RuntimeError(f"{target}: unexpected response from {url}")
                return Server(process, url, project)
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"{target} server did not start") from None
            time.sleep(0.1)


def make_project() -> Path:
    """A throw-away project whose app is this file's (``lakelet init``'s files, and
    ``[functions]`` naming the app, with a concurrency limit above the connections)."""
    from lakelet.config import CONFIG_FILE
    from lakelet.project import init_project

    folder = Path(tempfile.mkdtemp(prefix="lakelet-bench-up-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    init_project(folder, "gateway-bench")
    (folder / f"{MODULE_NAME}.py").symlink_to(Path(__file__).resolve())
    with (folder / CONFIG_FILE).open("a", encoding="utf-8") as config:
        config.write(
            f'\n[functions]\napp = "{MODULE_NAME}:app"\nmax_concurrency = {MAX_CONCURRENCY}\n'
        )
    return folder


@dataclass(frozen=True)
class Recorded:
    """What ``lakelet up`` kept of the requests it answered: stored invocations (with
    their cost) and ``REPORT`` lines in the function's log file and on standard error."""

    answered: int
    stored: int
    cost_usd: float
    report_lines: int
    logged_reports: int


def recorded(project: Path, answered: int) -> Recorded:
    """Counted once ``lakelet up`` has stopped (it stores what is queued first)."""
    import sqlalchemy as sa

    from lakelet.project import Project

    opened = Project.open(project)
    with opened.metadata.connect() as db:
        stored, cost = db.execute(
            sa.text("SELECT count(*), coalesce(sum(cost_usd), 0) FROM function_invocations")
        ).one()
    opened.metadata.dispose()
    logs = opened.state_dir / "logs" / "functions" / "hello.log"
    text = logs.read_text(encoding="utf-8") if logs.exists() else ""
    stderr = (project / "up.log").read_text(encoding="utf-8", errors="replace")
    reports = text.count("\nREPORT RequestId: ")
    return Recorded(answered, stored, cost, reports, stderr.count("REPORT RequestId: "))


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
    results: list[Result]  # bare, the goal (lakelet up), then the other rows
    ratio: float  # the goal: the median of the rounds' lakelet up/bare throughput ratios
    load: tuple[float, float]  # the machine's 1-minute load average before and after
    recorded: Recorded | None  # what lakelet up stored and logged


Measured = tuple[float, float, float, int, int, float, float]


def run_benchmark(
    *,
    seconds: float = 3.0,
    rounds: int = 5,
    connections: int = 16,
    extra_invokers: Sequence[str] = EXTRA_INVOKERS,
    driver: str | None = None,
) -> Benchmark:
    """Median-round results for the bare app, ``lakelet up`` (the goal) and the gateway
    on each of ``extra_invokers`` (``module:callable`` making the gateway's invoker from
    the benchmark app). Each round measures all, in rotating order, so the ratios
    compare neighbours in time."""
    from ingest import settle  # benchmarks/ingest.py: wait until the CPUs are mostly idle

    drive = {"wrk": drive_wrk, "python": drive_python}[driver or _default_driver()]
    targets = {"bare": ("bare", ""), GOAL_TARGET: ("up", "")}
    settle()  # what ran before (make bench: the other benchmarks) may still be finishing
    for ref in extra_invokers:
        targets[_label(ref)] = ("gateway", ref)
    load_before = _load()
    servers: dict[str, Server] = {}
    runs: dict[str, list[Measured]] = {t: [] for t in targets}
    answered = 1  # start_server's request
    try:
        for name, (kind, ref) in targets.items():
            servers[name] = start_server(kind, ref)
        for name, server in servers.items():  # warm up: imports, caches, the first workers
            warm = drive(server.url, 1.0, connections)
            answered += warm[3] if name == GOAL_TARGET else 0
        names = list(servers)
        for number in range(rounds):
            shift = number % len(names)
            for name in names[shift:] + names[:shift]:
                process = servers[name].process
                # The same load for a moment first: a server idle while the others were
                # measured may have had its cold pages taken back by the kernel.
                warm = drive(servers[name].url, REWARM_S, connections)
                answered += warm[3] if name == GOAL_TARGET else 0
                before = _cpu_seconds(process.pid)
                rps, p50, p99, requests, errors = drive(servers[name].url, seconds, connections)
                after = _cpu_seconds(process.pid)
                per = 1e6 / max(requests, 1)
                main_us, workers_us = ((a - b) * per for a, b in zip(after, before, strict=True))
                runs[name].append((rps, p50, p99, requests, errors, main_us, workers_us))
                answered += requests if name == GOAL_TARGET else 0
    finally:
        for server in servers.values():
            server.process.send_signal(signal.SIGINT)
        for server in servers.values():
            try:
                server.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.process.kill()
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
    up = servers.get(GOAL_TARGET)
    kept = recorded(up.project, answered) if up is not None and up.project else None
    return Benchmark(results, results[1].ratio, (load_before, _load()), kept)


def _label(invoker: str) -> str:
    return f"gateway: {invoker.rpartition(':')[2]}"


def _default_driver() -> str:
    return "wrk" if shutil.which("wrk") else "python"


def _load() -> float:
    """Other work on the machine skews both servers; the report says how much there was."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def report(benchmark: Benchmark, driver: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"Gateway vs bare Starlette on uvicorn (load: {driver}; goal: {GOAL_TARGET})",
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
    console = Console()
    console.print(table)
    console.print(
        f"goal: {GOAL_TARGET} ≥ {GOAL}× bare (median of the rounds' ratios): "
        f"{benchmark.ratio:.2f}× — {_verdict(benchmark)}; CPU µs: per request, of the "
        "server process and of its workers"
    )
    if benchmark.recorded is not None:
        console.print(f"{GOAL_TARGET} kept: {_kept(benchmark.recorded)}")
    before, after = benchmark.load
    console.print(
        f"{os.cpu_count()} CPUs; load average {before:.1f} before, {after:.1f} after "
        "(each server, the load generator and any workers share them)"
    )


def _verdict(benchmark: Benchmark) -> str:
    """Met only if ``lakelet up`` also stored and logged every request it answered."""
    kept = benchmark.recorded
    if kept is not None and min(kept.stored, kept.report_lines) < kept.answered:
        return "NOT COUNTED: invocations were not all stored and logged"
    return "ok" if benchmark.ratio >= GOAL else "BELOW GOAL"


def _kept(kept: Recorded) -> str:
    return (
        f"{kept.stored:,} invocations stored (${kept.cost_usd:.6f}) and {kept.report_lines:,} "
        f"REPORT lines in the function's log file ({kept.logged_reports:,} on standard "
        f"error) for {kept.answered:,} answered requests"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="load per round and target")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (the median counts)")
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections")
    parser.add_argument(
        "--extra-invoker",
        action="append",
        help="another row's gateway invoker, module:callable(app) (repeatable; 'none': "
        f"no other rows; default: {', '.join(EXTRA_INVOKERS)})",
    )
    parser.add_argument("--driver", choices=["wrk", "python"], help="load generator")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--serve", choices=["bare", "gateway"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--invoker", help=argparse.SUPPRESS)
    parser.add_argument("--drive", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.port, args.invoker or "")
        return 0
    if args.drive:
        stats = asyncio.run(_python_load(args.drive, args.seconds, args.connections))
        print(json.dumps(stats))
        return 0
    driver = args.driver or _default_driver()
    extra = args.extra_invoker or list(EXTRA_INVOKERS)
    benchmark = run_benchmark(
        seconds=args.seconds,
        rounds=args.rounds,
        connections=args.connections,
        extra_invokers=[ref for ref in extra if ref != "none"],
        driver=driver,
    )
    if args.json:
        print(json.dumps(asdict(benchmark), indent=2))
    else:
        report(benchmark, driver)
    return 0


if __name__ == "__main__":
    sys.exit(main())


def bench_gateway() -> list[tuple[str, float, str]]:
    """Rows for ``benchmarks/run.py``: ``lakelet up`` (the goal) and the other gateway
    rows, against bare Starlette."""
    measured = run_benchmark()
    bare, up, *extra = measured.results
    kept = f"; {_kept(measured.recorded)}" if measured.recorded is not None else ""
    rows = [
        (
            f"functions: gateway under {up.target} req/s vs bare Starlette",
            float("nan"),
            f"{up.requests_per_s:,.0f} vs {bare.requests_per_s:,.0f} req/s = "
            f"{measured.ratio:.2f}× (goal {GOAL}×: {_verdict(measured)}); p50/p99 "
            f"{up.p50_ms:.1f}/{up.p99_ms:.1f} ms vs {bare.p50_ms:.1f}/{bare.p99_ms:.1f} ms; "
            f"CPU {up.cpu_us:.0f} µs/req (+ workers {up.workers_cpu_us:.0f}) vs "
            f"{bare.cpu_us:.0f}; load {measured.load[0]:.1f}→{measured.load[1]:.1f}{kept}",
        )
    ]
    for other in extra:
        rows.append(
            (
                f"functions: {other.target} req/s vs bare Starlette",
                float("nan"),
                f"{other.requests_per_s:,.0f} req/s = {other.ratio:.2f}×; p50/p99 "
                f"{other.p50_ms:.1f}/{other.p99_ms:.1f} ms; CPU {other.cpu_us:.0f} µs/req "
                f"(+ workers {other.workers_cpu_us:.0f})",
            )
        )
    return rows
