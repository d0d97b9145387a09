"""``lakelet load``: put a curated catalog table into the warehouse."""

from __future__ import annotations

import dataclasses
from typing import Annotated

import typer

from lakelet.catalog.names import TableName
from lakelet.cli.context import open_project
from lakelet.cli.output import Format, console, print_json, print_rows
from lakelet.warehouse.base import LOAD_MODES
from lakelet.warehouse.loading import load_table
from lakelet.warehouse.request import LoadRequest


def register(app: typer.Typer) -> None:
    """Add this room's commands to the `lakelet` app."""

    @app.command("load")
    def load(
        ctx: typer.Context,
        source: Annotated[
            str, typer.Argument(metavar="DATABASE.TABLE", help="The catalog table to load.")
        ],
        into: Annotated[
            str | None,
            typer.Option(
                "--into",
                metavar="SCHEMA.TABLE",
                help="The warehouse table (default: the same name as the source).",
            ),
        ] = None,
        mode: Annotated[
            str,
            typer.Option(
                "--mode",
                metavar="MODE",
                help=f"{' | '.join(LOAD_MODES)}: replace the table, append rows, "
                "or merge (upsert) rows by --key.",
            ),
        ] = "replace",
        key: Annotated[
            list[str] | None,
            typer.Option(
                "--key",
                metavar="COL",
                help="A key column for merge (repeatable, or comma-separated).",
            ),
        ] = None,
        fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.table,
    ) -> None:
        """Load a curated table into the warehouse in one transaction (schema on write)."""
        name = TableName.parse(source)
        keys = [k.strip() for item in key or [] for k in item.split(",") if k.strip()]
        request = LoadRequest.check_options(into or str(name), mode, keys)
        project = open_project(ctx)
        result = load_table(
            project, name, str(request.target), mode=request.mode, keys=request.keys
        )
        if fmt is Format.json:
            print_json({"source": str(name), **dataclasses.asdict(result)})
            return
        columns = ["target", "mode", "loaded", "inserted", "updated", "in target", "created"]
        row = (
            result.target,
            result.mode,
            result.rows_loaded,
            result.rows_inserted,
            result.rows_updated,
            result.rows_in_target,
            "yes" if result.created else "no",
        )
        print_rows(columns, [row], fmt)
        if fmt is Format.table:
            console().print(
                f"loaded {name} into the warehouse table {result.target} ({result.mode}): "
                f"{result.rows_in_target} row(s) in the table"
            )
