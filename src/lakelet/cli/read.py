"""``lakelet read``: messy files → RFC 4180 CSV, decided exactly as a crawler would."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from lakelet.cli.output import console
from lakelet.errors import UserError


def register(app: typer.Typer) -> None:
    """Add this room's commands to the `lakelet` app."""

    @app.command("read")
    def read(
        files: Annotated[list[Path], typer.Argument(help="CSV files to read.")],
        out_dir: Annotated[
            Path | None,
            typer.Option("--out-dir", help="Write DIR/NAME_converted.csv per input."),
        ] = None,
        explain: Annotated[
            bool, typer.Option("--explain", help="Print the decisions and why (stderr).")
        ] = False,
        generated_header: Annotated[
            bool,
            typer.Option(
                "--generated-header/--no-generated-header",
                help="Name the columns of a file without a header col_0, col_1, … "
                "(--no-generated-header writes its rows only).",
            ),
        ] = True,
    ) -> None:
        """Read raw CSV files (any encoding, dialect and layout) and write clean CSV."""
        from lakelet.crawler.messy.convert import converted_path, error_text, write_table
        from lakelet.crawler.messy.explain import explain as explain_lines
        from lakelet.crawler.messy.reader import read_csv_file

        err = console(stderr=True)
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
        for path in files:
            if not path.is_file():
                raise UserError(f"{path}: no such file")
            try:
                result = read_csv_file(path)
            except (OSError, ValueError, UnicodeError) as exc:
                message = f"{path}: {exc}"
                if out_dir is None:
                    raise UserError(message) from exc
                converted_path(out_dir, path, 0).write_text(error_text(message))
                err.print(f"[red]{escape(message)}[/]", soft_wrap=True)
                continue
            if explain:
                err.print(f"[bold]{escape(str(path))}[/]")
                for line in explain_lines(result):
                    err.print(escape(line), soft_wrap=True)
            for index, table in enumerate(result.tables):
                if out_dir is not None:
                    target = converted_path(out_dir, path, index)
                    with target.open("w", newline="", encoding="utf-8") as out:
                        write_table(table, out, generated_header=generated_header)
                else:
                    if index:
                        sys.stdout.write("\r\n")
                    write_table(table, sys.stdout, generated_header=generated_header)
            if not result.tables and out_dir is not None:
                converted_path(out_dir, path, 0).write_text("")
