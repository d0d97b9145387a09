"""``lakelet demo``: the vending-machine reference scenario in a throwaway project."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer

from lakelet.cli.output import Format, console, print_json
from lakelet.demo.generate import DEFAULT_END
from lakelet.errors import UserError


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        days: Annotated[int, typer.Option(min=1, help="Days of sales to generate.")] = 14,
        machines: Annotated[int, typer.Option(min=1, help="Vending machines.")] = 20,
        purchases: Annotated[
            int,
            typer.Option(
                min=0, help="Purchases sent through the functions gateway (0: skip the flow)."
            ),
        ] = 100,
        seed: Annotated[int, typer.Option(help="Random seed: same seed, same data.")] = 7,
        end: Annotated[
            str, typer.Option(help="Last day of sales (YYYY-MM-DD).")
        ] = DEFAULT_END.isoformat(),
        keep: Annotated[
            Path | None,
            typer.Option(help="Build the project in this new folder and keep it."),
        ] = None,
        fmt: Annotated[
            Format, typer.Option("--format", help="table (default) or json.")
        ] = Format.table,
    ) -> None:
        """Generate vending sales, land, crawl, aggregate and load them; print the books.

        Exits 1 when a check of the accounting fails.
        """
        from lakelet.demo.report import render, render_step
        from lakelet.demo.scenario import DemoOptions, run_demo

        if fmt is Format.csv:
            raise UserError("--format csv: the demo prints a report; use table or json")
        options = DemoOptions(
            days=days, machines=machines, seed=seed, end=_parse_date(end), purchases=purchases
        )
        out = console()
        if fmt is Format.table:
            out.print("[bold]lakelet demo[/]: the vending-machine reference scenario")
            result = run_demo(options, keep=keep, on_step=lambda step: render_step(step, out))
            render(result, out)
        else:
            result = run_demo(options, keep=keep)
            print_json(result.to_dict())
        if not result.ok:
            raise typer.Exit(1)


def _parse_date(text: str) -> date:
    try:
        return datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError as exc:
        raise UserError(f"--end {text!r}: expected a date as YYYY-MM-DD") from exc
