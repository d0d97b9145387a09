"""``lakelet load``: put a curated catalog table into the warehouse."""

from __future__ import annotations

import dataclasses
from typing import Annotated

import typer

from lakelet.catalog.names import TableName
from lakelet.cli.context import open_project
from lakelet.cli.output import Format, console, print_json, print_rows
from lakelet.warehouse.base import LOAD_ERRORS_TABLE, LOAD_MODES
from lakelet.warehouse.loading import load_table
from lakelet.warehouse.request import LoadRequest

ERRORS_SHOWN = 10


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
        max_errors: Annotated[
            int,
            typer.Option(
                "--max-errors",
                metavar="N",
                help="Load anyway if at most N rows are rejected (they are recorded in "
                "lakelet.load_errors); more fail the load with nothing written.",
            ),
        ] = 0,
        dry_run: Annotated[
            bool,
            typer.Option(
                "--dry-run",
                help="Check every row and report what the load would do; change nothing.",
            ),
        ] = False,
        dist_key: Annotated[
            str | None,
            typer.Option(
                "--dist-key",
                metavar="COL",
                help="Redshift DISTKEY of a table the load creates (ignored elsewhere).",
            ),
        ] = None,
        sort_key: Annotated[
            list[str] | None,
            typer.Option(
                "--sort-key",
                metavar="COL",
                help="Redshift SORTKEY column(s) of a table the load creates (repeatable, "
                "or comma-separated; ignored elsewhere).",
            ),
        ] = None,
        fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.table,
    ) -> None:
        """Load a curated table into the warehouse in one transaction (schema on write)."""
        name = TableName.parse(source)
        keys = _columns(key)
        request = LoadRequest.check_options(
            into or str(name),
            mode,
            keys,
            max_errors=max_errors,
            dist_key=dist_key,
            sort_key=_columns(sort_key),
        )
        project = open_project(ctx)
        result = load_table(
            project,
            name,
            str(request.target),
            mode=request.mode,
            keys=request.keys,
            max_errors=request.max_errors,
            dry_run=dry_run,
            dist_key=request.dist_key,
            sort_key=request.sort_key,
        )
        if fmt is Format.json:
            print_json({"source": str(name), **dataclasses.asdict(result)})
            return
        columns = [
            "target",
            "mode",
            "loaded",
            "inserted",
            "updated",
            "rejected",
            "in target",
            "created",
        ]
        row = (
            result.target,
            result.mode,
            result.rows_loaded,
            result.rows_inserted,
            result.rows_updated,
            result.rows_rejected,
            result.rows_in_target,
            "yes" if result.created else "no",
        )
        print_rows(columns, [row], fmt)
        if result.errors:
            print_rows(
                ["line", "column", "value", "reason"],
                [(e.line, e.column, e.value, e.reason) for e in result.errors[:ERRORS_SHOWN]],
                fmt,
            )
        if fmt is Format.table:
            rejected = (
                f"; {result.rows_rejected} row(s) rejected (load id {result.load_id}"
                + ("" if result.dry_run else f", in {LOAD_ERRORS_TABLE}")
                + ")"
                if result.rows_rejected
                else ""
            )
            if result.dry_run:
                console().print(
                    f"dry run: {name} would load into {result.target} ({result.mode}) with "
                    f"{result.rows_in_target} row(s) in the table{rejected}; nothing changed"
                )
            else:
                console().print(
                    f"loaded {name} into the warehouse table {result.target} ({result.mode}): "
                    f"{result.rows_in_target} row(s) in the table{rejected}"
                )


def _columns(values: list[str] | None) -> list[str]:
    """Repeated and comma-separated column options, as one list."""
    return [c.strip() for item in values or [] for c in item.split(",") if c.strip()]
