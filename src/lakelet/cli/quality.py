"""``lakelet check TABLE``: a table's declared data-quality rules on its current rows."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from lakelet.cli.context import open_project
from lakelet.cli.output import Format, console, print_json, print_rows

if TYPE_CHECKING:
    from lakelet.jobs.quality.tables import TableCheck

COLUMNS = ("source", "rule", "action", "passed", "failing_rows", "detail")
FAILED_EXIT_CODE = 2


def register(app: typer.Typer) -> None:
    @app.command("check")
    def check(
        ctx: typer.Context,
        table: Annotated[
            str, typer.Argument(help='A table with rules in \\[tables."DB.TABLE"] of lakelet.toml.')
        ],
        fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.table,
    ) -> None:
        """Check a table's data-quality rules on its current rows; change nothing.

        Exits with code 2 when a rule whose action is "fail" fails.
        """
        from lakelet.jobs.quality.tables import check_table

        report = check_table(open_project(ctx), table)
        if fmt is Format.json:
            print_json(
                {
                    "table": report.table,
                    "snapshot_id": report.snapshot_id,
                    "rows": report.rows,
                    "passed": not report.blocking,
                    "results": [{c: getattr(r, c) for c in COLUMNS} for r in report.results],
                }
            )
        elif fmt is Format.csv:
            rows = [tuple(getattr(r, c) for c in COLUMNS) for r in report.results]
            print_rows(COLUMNS, rows, fmt)
        else:
            _print_report(report)
        if report.blocking:
            failed = ", ".join(repr(r.rule) for r in report.blocking)
            console(stderr=True).print(
                f"[bold red]failed:[/] {escape(failed)} (action fail) on {report.table}"
            )
            raise typer.Exit(FAILED_EXIT_CODE)


def _print_report(report: TableCheck) -> None:
    out = console()
    snapshot = "" if report.snapshot_id is None else f" (snapshot {report.snapshot_id})"
    passed = sum(r.passed for r in report.results)
    out.print(
        f"table [bold]{report.table}[/]{snapshot}: {report.rows} row(s), "
        f"{passed} of {len(report.results)} rule(s) passed"
    )
    table = Table(show_edge=False, header_style="bold", title_justify="left")
    for column in ("rule", "action", "passed", "failing rows", "detail"):
        table.add_column(column, overflow="fold")
    for r in report.results:
        shown = "yes" if r.passed else "[red]no[/]"
        table.add_row(escape(r.rule), r.action, shown, str(r.failing_rows), escape(r.detail))
    out.print(table)
