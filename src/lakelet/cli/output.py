"""How the CLI prints: Rich tables for people, JSON or CSV for scripts."""

from __future__ import annotations

import csv
import enum
import io
import json
import os
import sys
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table


class Format(enum.StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


PIPE_WIDTH = 120


def console(stderr: bool = False) -> Console:
    """A Rich console; when output is piped, lines are not cut at Rich's default 80."""
    out = Console(stderr=stderr, highlight=False, soft_wrap=False)
    if not out.is_terminal and "COLUMNS" not in os.environ:
        out.width = PIPE_WIDTH
    return out


def to_jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(to_jsonable(data), indent=2, ensure_ascii=False) + "\n")


def print_rows(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    fmt: Format = Format.table,
    *,
    title: str | None = None,
) -> None:
    """Print a result set in the chosen format."""
    if fmt is Format.json:
        print_json([dict(zip(columns, row, strict=True)) for row in rows])
        return
    if fmt is Format.csv:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(["" if v is None else v for v in row] for row in rows)
        sys.stdout.write(buffer.getvalue())
        return
    table = Table(title=title, title_justify="left", show_edge=False, header_style="bold")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*("NULL" if v is None else str(v) for v in row))
    console().print(table)
