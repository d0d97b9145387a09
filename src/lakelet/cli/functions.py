"""``lakelet invoke`` and ``lakelet functions list|stats``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from lakelet.cli.context import open_project
from lakelet.cli.output import Format, console, print_json, print_rows
from lakelet.errors import UserError

if TYPE_CHECKING:
    from lakelet.functions.invocation import Invocation
    from lakelet.functions.model import App

FormatOpt = Annotated[Format, typer.Option("--format", help="Output format.")]
ASYNC_WAIT_MARGIN_S = 5.0


def register(app: typer.Typer) -> None:
    @app.command("invoke")
    def invoke(
        ctx: typer.Context,
        function: Annotated[str, typer.Argument(help="Function name in the project's app.")],
        event: Annotated[
            str | None,
            typer.Option(
                "--event", "-e", help="A JSON file holding the event, or - for standard input."
            ),
        ] = None,
        asynchronous: Annotated[
            bool,
            typer.Option(
                "--async", help="Invoke as an Event: queued, retried, dead-lettered on failure."
            ),
        ] = False,
        fmt: FormatOpt = Format.table,
    ) -> None:
        """Run a function once in a fresh runtime; print its result and its REPORT line."""
        from lakelet.functions.runtime import open_runtime

        project = open_project(ctx)
        payload = _read_event(event)
        with open_runtime(project) as runtime:
            if asynchronous:
                accepted = runtime.invoke(function, payload, invocation_type="Event", source="cli")
                spec = runtime.app.get(function)
                ran = runtime.events.wait_for(
                    accepted.request_id, spec.timeout_s + ASYNC_WAIT_MARGIN_S
                )
                _print_async(accepted, ran, fmt)
                failed = ran is not None and ran.outcome != "ok"
            else:
                ran = runtime.invoke(function, payload, source="cli")
                _print_invocation(ran, fmt)
                failed = ran.outcome != "ok"
        if failed:
            raise typer.Exit(1)

    functions = typer.Typer(
        help="The project's serverless functions: list them, show their statistics."
    )
    app.add_typer(functions, name="functions")

    @functions.command("list")
    def list_functions(ctx: typer.Context, fmt: FormatOpt = Format.table) -> None:
        """List the app's functions, their triggers and settings."""
        from lakelet.functions.loader import load_app

        fn_app = load_app(open_project(ctx))
        triggers = _triggers(fn_app)
        columns = ["function", "handler", "triggers", "memory MB", "timeout s", "reserved"]
        columns += ["retries", "dead-letter queue"]
        rows = [
            (
                s.name,
                s.handler_ref,
                ", ".join(triggers.get(s.name, [])) or "-",
                s.memory_mb,
                s.timeout_s,
                "-" if s.reserved_concurrency is None else s.reserved_concurrency,
                s.retries,
                s.dead_letter_queue or "-",
            )
            for s in sorted(fn_app.functions.values(), key=lambda s: s.name)
        ]
        print_rows(columns, rows, fmt)

    @functions.command("stats")
    def stats(
        ctx: typer.Context,
        function: Annotated[
            str | None, typer.Option("--function", "-f", help="Only this function.")
        ] = None,
        fmt: FormatOpt = Format.table,
    ) -> None:
        """Invocations, errors, throttles, cold starts, p50/p99 duration and cost, per
        function (source *) and per source (route, schedule, queue, …)."""
        from lakelet.functions.runtime.stats import function_stats

        rows = function_stats(open_project(ctx).metadata, function=function)
        if fmt is Format.json:
            print_json([r.to_dict() for r in rows])
            return
        columns = ["function", "source", "invocations", "errors", "throttles", "cold starts"]
        columns += ["p50 ms", "p99 ms", "GB-s", "cost $"]
        print_rows(
            columns,
            [
                (
                    r.function,
                    r.source,
                    r.invocations,
                    r.errors,
                    r.throttles,
                    r.cold_starts,
                    _ms(r.p50_ms),
                    _ms(r.p99_ms),
                    f"{r.gb_seconds:.6f}",
                    f"{r.cost_usd:.8f}",
                )
                for r in rows
            ],
            fmt,
        )
        if fmt is Format.table and not rows:
            console(stderr=True).print("no invocations yet; try: lakelet invoke FUNCTION")


def _read_event(source: str | None) -> Any:
    if source is None:
        return {}
    if source == "-":
        text, where = sys.stdin.read(), "standard input"
    else:
        path = Path(source)
        if not path.is_file():
            raise UserError(f"--event {source}: no such file")
        text, where = path.read_text(encoding="utf-8"), str(path)
    try:
        return json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise UserError(
            f"--event {where}: not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None


def _print_invocation(invocation: Invocation, fmt: Format) -> None:
    if fmt is Format.json:
        print_json(_to_dict(invocation))
        return
    err = console(stderr=True)
    err.print(escape(invocation.logs.rstrip("\n")), soft_wrap=True)
    body = invocation.payload if invocation.failure is None else invocation.failure.payload()
    sys.stdout.write(json.dumps(body, indent=2, ensure_ascii=False) + "\n")


def _print_async(accepted: Invocation, ran: Invocation | None, fmt: Format) -> None:
    if fmt is Format.json:
        print_json(
            {
                "StatusCode": 202,
                "requestId": accepted.request_id,
                "firstAttempt": None if ran is None else _to_dict(ran),
            }
        )
        return
    out = console()
    out.print(f"StatusCode 202: event accepted, request id {accepted.request_id}")
    if ran is None:
        out.print("it has not run yet; it stays queued and runs under `lakelet up`")
        return
    console(stderr=True).print(escape(ran.logs.rstrip("\n")), soft_wrap=True)
    if ran.outcome != "ok":
        out.print(
            f"the first attempt failed ({ran.outcome}); the event stays queued for its "
            "retries, which run under `lakelet up`"
        )


def _to_dict(invocation: Invocation) -> dict[str, Any]:
    return {
        "requestId": invocation.request_id,
        "function": invocation.function,
        "outcome": invocation.outcome,
        "payload": invocation.payload,
        "error": None if invocation.failure is None else invocation.failure.payload(),
        "durationMs": invocation.duration_ms,
        "billedDurationMs": invocation.billed_ms,
        "memorySizeMb": invocation.memory_mb,
        "maxMemoryUsedMb": invocation.max_memory_used_mb,
        "initDurationMs": invocation.init_ms,
        "logs": invocation.logs,
    }


def _triggers(app: App) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for route in app.routes:
        found.setdefault(route.function, []).append(f"{'|'.join(route.methods)} {route.path}")
    for obj in app.object_triggers:
        found.setdefault(obj.function, []).append(f"s3://{obj.bucket}/{obj.prefix}*{obj.suffix}")
    for sched in app.schedules:
        found.setdefault(sched.function, []).append(sched.expression)
    for queue in app.queue_triggers:
        found.setdefault(queue.function, []).append(f"queue {queue.queue}")
    return found


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
