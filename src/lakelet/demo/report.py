"""How the demo tells what happened: steps, tables, results, and the books that balance."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rich import box
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from lakelet.demo.scenario import DemoResult, Step

NUMERIC_COLUMNS = {
    "rows",
    "units",
    "revenue",
    "raw revenue",
    "curated",
    "warehouse",
    "in files",
    "read",
    "accepted",
    "rejected",
    "written",
    "rank",
}
OK = "[green]✓[/]"
FAILED = "[bold red]✗[/]"


def render_step(step: Step, console: Console) -> None:
    """One line per finished step, printed while the demo runs."""
    console.print(
        f"  [green]✓[/] [bold]{step.name:<26}[/] {step.seconds:5.2f}s  [dim]{step.detail}[/]",
        highlight=False,
    )


def render(result: DemoResult, console: Console) -> None:
    """The full report: results first, then the accounting and the checks."""
    opts = result.options
    manifest = result.manifest
    console.print()
    console.print(
        f"[bold]Lakelet demo[/] — vending machines: {opts.machines} machines, "
        f"{manifest['products']} products, {opts.days} days "
        f"({manifest['start']} to {manifest['end']}), seed {opts.seed}",
        highlight=False,
    )
    console.print(_tables(result))
    console.print(_top_machines(result))
    console.print(_top_products(result))
    console.print(_accounting(result))
    if result.vending is not None:
        console.print(_vending(result.vending))
    if result.rejects:
        console.print(_rejects(result))
    console.print(_checks(result))
    total = sum(s.seconds for s in result.steps)
    verdict = "[green]all checks passed[/]" if result.ok else "[bold red]some checks FAILED[/]"
    console.print(f"\n{verdict} in {total:.1f}s", highlight=False)
    if result.kept:
        root = result.project_root
        console.print(
            f"project kept in [bold]{root}[/]; explore it with "
            f"[bold]lakelet -C {root} tables[/] or "
            f'[bold]lakelet -C {root} sql "SELECT * FROM analytics.top_products"[/]',
            highlight=False,
        )
    else:
        console.print("[dim]the throwaway project was removed; keep one with --keep DIR[/]")


def _table(title: str, *columns: str) -> Table:
    table = Table(
        title=title,
        title_justify="left",
        title_style="bold",
        header_style="bold",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    for column in columns:
        if column in NUMERIC_COLUMNS:
            table.add_column(column, justify="right", no_wrap=True)
        else:
            table.add_column(column)
    return table


def _tables(result: DemoResult) -> Table:
    table = _table("\nTables", "table", "layer", "rows")
    for row in result.tables:
        table.add_row(row["table"], row["layer"], _number(row["rows"]))
    return table


def _top_machines(result: DemoResult) -> Table:
    table = _table(
        "\nTop machines by revenue, from one statement over raw.sales, "
        "curated.daily_machine_sales and analytics.daily_machine_sales",
        "machine",
        "city",
        "units",
        "raw revenue",
        "curated",
        "warehouse",
    )
    for row in result.top_machines:
        table.add_row(
            str(row["machine_id"]),
            str(row["city"]),
            _number(row["raw_units"]),
            _number(row["raw_revenue"]),
            _number(row["curated_revenue"]),
            _number(row["warehouse_revenue"]),
        )
    return table


def _top_products(result: DemoResult) -> Table:
    table = _table(
        "\nTop products (analytics.top_products)", "rank", "product", "category", "units", "revenue"
    )
    for row in result.top_products:
        table.add_row(
            str(row["rank"]),
            str(row["product"]),
            str(row["category"]),
            _number(row["units"]),
            _number(row["revenue"]),
        )
    return table


def _accounting(result: DemoResult) -> Table:
    table = _table(
        "\nAccounting: every row read is written or rejected",
        "",
        "in files",
        "read",
        "accepted",
        "rejected",
        "written",
    )
    blank = ("",) * 5
    table.add_row(f"landed {result.files_landed} files", _number(result.rows_in_files), *blank[1:])
    for job in result.jobs:
        table.add_row(Text(f"job {job.job}", style="bold"), *blank)
        for account in job.inputs:
            table.add_row(
                f"  {account.table}",
                _number(account.rows_in_files),
                _number(account.rows_read),
                _number(account.rows_accepted),
                _number(account.rows_rejected),
                "",
            )
        table.add_row(f"  → {job.output}", *blank[1:], _number(job.rows_written))
    if result.loads:
        table.add_row(Text("load into the warehouse →", style="bold"), *blank)
    for load in result.loads:
        table.add_row(f"  {load.target}", *blank[1:], _number(load.rows_loaded))
    return table


def _vending(books: dict[str, Any]) -> Table:
    """The vending flow: purchases through the gateway, followed into lake, crawl and job."""
    burst = books["burst"]
    table = _table("\nVending flow (functions)", "stage", "count")
    rows = [
        ("purchases sent", burst.get("sent", burst.get("count"))),
        ("approved (201)", burst.get("approved")),
        ("declined (402)", burst.get("declined")),
        ("invalid (400)", burst.get("invalid")),
        ("throttled (429, retried)", burst.get("throttled")),
        ("sale objects in raw/purchases/", books["objects_in_lake"]),
        ("rows crawled into raw.purchases", books["rows_crawled"]),
        ("purchases in the job's output", books["job_purchases"]),
        ("revenue (job)", books["job_revenue"]),
        ("notifications in the outbox", books["outbox_delivered"]),
        ("webhook deliveries", books["webhook_notified"]),
        ("dead letters", books["dead_letters"]),
    ]
    for stage, value in rows:
        table.add_row(stage, _number(value) if value is not None else "-")
    return table


def _rejects(result: DemoResult) -> Group:
    lines: list[Text] = [
        Text(
            f"\nRejected rows ({len(result.rejects)}), quarantined with file, line and reason",
            style="bold",
        )
    ]
    for reject in result.rejects:
        where = reject.file if reject.line is None else f"{reject.file}, line {reject.line}"
        fault = (
            Text(f"  (injected: {reject.injected})", style="dim")
            if reject.injected
            else Text("  (not injected by the generator)", style="bold red")
        )
        lines.append(Text(f" ✗ {where}", style="yellow") + fault)
        lines.append(Text(f"     {reject.reason}"))
    return Group(*lines)


def _checks(result: DemoResult) -> Table:
    table = Table(
        title="\nChecks", title_justify="left", title_style="bold", show_header=False, box=None
    )
    table.add_column("", width=1)
    table.add_column("check")
    for check in result.checks:
        line = Text(check.name) + Text(f"  ({check.detail})", style="dim")
        table.add_row(OK if check.ok else FAILED, line)
    return table


def _number(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, Decimal):
        return f"{value:,.2f}" if value.as_tuple().exponent != 0 else f"{value:,}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
