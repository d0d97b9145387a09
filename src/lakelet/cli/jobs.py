"""``lakelet run``, ``lakelet runs`` and ``lakelet sql``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from lakelet.cli.context import open_project
from lakelet.cli.output import Format, console, print_json, print_rows
from lakelet.errors import UserError

if TYPE_CHECKING:
    from lakelet.project import Project
from lakelet.jobs.runs import RunRecord, RunStore

FormatOpt = Annotated[Format, typer.Option("--format", help="Output format.")]
ParamOpt = Annotated[
    list[str] | None,
    typer.Option("--param", "-p", help="KEY=VALUE, available in the SQL as ${KEY} (repeatable)."),
]
MAX_REJECTS_SHOWN = 20


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run(
        ctx: typer.Context,
        job: Annotated[
            str | None, typer.Argument(help="Job name from \\[jobs.NAME] in lakelet.toml.")
        ] = None,
        param: ParamOpt = None,
        due: Annotated[
            bool,
            typer.Option("--due", help="Run the jobs whose schedule fired or whose files arrived."),
        ] = False,
        reset_bookmark: Annotated[
            bool,
            typer.Option(
                "--reset-bookmark",
                help="Read everything again and rebuild the output (bookmarked jobs).",
            ),
        ] = False,
        rewind_to: Annotated[
            str | None,
            typer.Option("--rewind-to", help="Start from the bookmark this run committed."),
        ] = None,
        engine: Annotated[
            str | None,
            typer.Option("--engine", help="Run on this engine, not the job's: duckdb, spark."),
        ] = None,
        fmt: FormatOpt = Format.table,
    ) -> None:
        """Run a SQL job: read catalog tables, write its output table in one commit."""
        from lakelet.jobs.runner import JobRunFailed, run_job

        project = open_project(ctx)
        if due:
            _run_due(project, _params(param), fmt)
            return
        if job is None:
            raise UserError("name a job to run, or use --due")
        if engine is not None:
            from lakelet.jobs.engines import with_engine

            project = with_engine(project, job, engine)
        try:
            with console(stderr=True).status(f"running job {job}…", spinner="dots"):
                record = run_job(
                    project, job, _params(param), reset_bookmark=reset_bookmark, rewind_to=rewind_to
                )
        except JobRunFailed as exc:
            if fmt is Format.json:
                print_json(exc.record.to_dict())
            raise
        if fmt is Format.json:
            print_json(record.to_dict())
        else:
            _print_run(record)

    @app.command("runs")
    def runs(
        ctx: typer.Context,
        job: Annotated[str | None, typer.Argument(help="Only runs of this job.")] = None,
        run_id: Annotated[
            str | None, typer.Option("--id", help="Show one run in full, with its rejects.")
        ] = None,
        limit: Annotated[int, typer.Option(help="How many runs to list.")] = 20,
        quality: Annotated[
            bool, typer.Option("--quality", help="Show the data-quality rule results of runs.")
        ] = False,
        fmt: FormatOpt = Format.table,
    ) -> None:
        """List job runs (newest first), or show one run with its rejected rows."""
        store = RunStore(open_project(ctx).metadata)
        if run_id is not None:
            record = store.get(run_id)
            if quality:
                _print_quality([record], fmt)
            elif fmt is Format.json:
                print_json(record.to_dict())
            else:
                _print_run(record)
            return
        records = store.recent(job, limit)
        if quality:
            _print_quality(records, fmt)
            return
        if fmt is Format.json:
            print_json([r.to_dict() for r in records])
            return
        rows = [
            (
                r.run_id,
                r.job,
                r.status,
                r.started_at.strftime("%Y-%m-%d %H:%M:%S"),
                "" if r.duration_s is None else f"{r.duration_s:.2f}s",
                r.rows_read,
                r.rows_written,
                r.rows_rejected,
                r.rows_quarantined,
                r.error or "",
            )
            for r in records
        ]
        columns = ["run", "job", "status", "started (UTC)", "took", "read", "written"]
        print_rows([*columns, "rejected", "quarantined", "error"], rows, fmt)

    @app.command("sql")
    def sql(
        ctx: typer.Context,
        statement: Annotated[str, typer.Argument(help="One SQL statement (DuckDB dialect).")],
        param: ParamOpt = None,
        fmt: FormatOpt = Format.table,
        max_rows: Annotated[
            int, typer.Option(help="Rows to print in table format (all in csv/json).")
        ] = 100,
    ) -> None:
        """Query raw, curated and warehouse tables by name, in one statement."""
        from lakelet.jobs.session import query

        result = query(open_project(ctx), statement, params=_params(param))
        rows = result.to_pylist()
        columns = result.column_names
        shown = rows[:max_rows] if fmt is Format.table else rows
        print_rows(columns, [tuple(r[c] for c in columns) for r in shown], fmt)
        if fmt is Format.table:
            more = f" (showing {max_rows})" if len(rows) > max_rows else ""
            console(stderr=True).print(f"{len(rows)} row(s){more}")


def _run_due(project: Project, params: dict[str, str], fmt: Format) -> None:
    """Run every due job (a failure is reported and the others still run)."""
    from lakelet.jobs.runner import JobRunFailed, run_job
    from lakelet.jobs.triggers import due_jobs

    results = []
    for name, why in due_jobs(project):
        try:
            record = run_job(project, name, params)
        except JobRunFailed as exc:
            record = exc.record
        results.append((name, why, record))
    if fmt is Format.json:
        print_json([{"job": n, "why": w, **r.to_dict()} for n, w, r in results])
    else:
        rows = [(n, w, r.run_id, r.status, r.error or "") for n, w, r in results]
        print_rows(["job", "why", "run", "status", "error"], rows, fmt)
        if not results:
            console().print("no job is due")
    if any(r.status != "succeeded" for _, _, r in results):
        raise typer.Exit(1)


def _params(items: list[str] | None) -> dict[str, str]:
    params: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"--param {item!r}: expected KEY=VALUE")
        params[key] = value
    return params


def _print_run(record: RunRecord) -> None:
    out = console()
    style = {"succeeded": "green", "failed": "red"}.get(record.status, "yellow")
    took = "" if record.duration_s is None else f" in {record.duration_s:.2f}s"
    status = f"[{style}]{record.status}[/]{took}"
    out.print(f"run [bold]{record.run_id}[/] of job [bold]{record.job}[/]: {status}")
    inputs = Table(show_edge=False, header_style="bold", title="inputs", title_justify="left")
    for column in ("table", "kind", "snapshot", "rows read", "rejected"):
        inputs.add_column(column)
    for i in record.inputs:
        snapshot = "" if i.snapshot_id is None else str(i.snapshot_id)
        inputs.add_row(i.table, i.kind, snapshot, str(i.rows_read), str(i.rows_rejected))
    out.print(inputs)
    snapshot = "" if record.snapshot_written is None else f" (snapshot {record.snapshot_written})"
    quarantined = f", {record.rows_quarantined} quarantined" if record.quality else ""
    out.print(
        f"output {record.output} {escape(f'[{record.mode}]')}: "
        f"{record.rows_produced} row(s) produced, "
        f"{record.rows_written} written{quarantined}{snapshot}"
    )
    if record.error:
        out.print(f"[red]error:[/] {record.error}")
    if record.quality:
        _print_quality_table(record)
    _print_rejects(record)


def _print_quality(records: list[RunRecord], fmt: Format) -> None:
    """The rule results of runs: one row per rule per run (a table per run for people)."""
    if fmt is not Format.table:
        columns = ["run", "job", "rule", "action", "passed", "failing_rows", "detail"]
        rows = [
            (r.run_id, r.job, q.rule, q.action, q.passed, q.failing_rows, q.detail)
            for r in records
            for q in r.quality
        ]
        print_rows(columns, rows, fmt)
        return
    shown = [r for r in records if r.quality]
    if not shown:
        console(stderr=True).print("no data-quality results (no rules declared for these runs)")
    for record in shown:
        started = record.started_at.strftime("%Y-%m-%d %H:%M:%S")
        console().print(
            f"run [bold]{record.run_id}[/] of job [bold]{record.job}[/] ({record.status}, "
            f"started {started} UTC): {record.rows_quarantined} row(s) quarantined"
        )
        _print_quality_table(record)


def _print_quality_table(record: RunRecord) -> None:
    table = Table(show_edge=False, header_style="bold", title_justify="left")
    table.title = "data quality"
    for column in ("rule", "action", "passed", "failing rows", "detail"):
        table.add_column(column, overflow="fold")
    for q in record.quality:
        passed = "yes" if q.passed else "[red]no[/]"
        table.add_row(escape(q.rule), q.action, passed, str(q.failing_rows), escape(q.detail))
    console().print(table)


def _print_rejects(record: RunRecord) -> None:
    if not record.rejects:
        return
    table = Table(show_edge=False, header_style="bold", title_justify="left")
    table.title = f"{len(record.rejects)} rejected row(s)"
    for column in ("table", "file", "line", "column", "reason"):
        table.add_column(column, overflow="fold")
    rows: list[Any] = record.rejects[:MAX_REJECTS_SHOWN]
    for r in rows:
        table.add_row(r.table, r.file, str(r.line or ""), r.column or "", r.reason)
    console().print(table)
    if len(record.rejects) > MAX_REJECTS_SHOWN:
        console().print(f"… see all with: lakelet runs --id {record.run_id} --format json")
