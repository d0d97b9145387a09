"""Tables read from a messy file, written back as RFC 4180 CSV (``lakelet read``).

Each table is written header first, every field quoted, ``\\r\\n`` between records —
unambiguous for any reader. A table without a header row gets generated ``col_N``
names unless ``generated_header`` is off, in which case only the file's own rows are
written (the first line is then data, as in the file). With ``--out-dir`` the first
table of ``NAME.csv`` goes to ``NAME_converted.csv``, a second to
``NAME_converted_2.csv``, and so on; a file that cannot be read at all gets a file whose
first line is ``Application Error`` followed by the message.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import TextIO

from lakelet.crawler.messy.layout import TableLayout

ERROR_MARK = "Application Error"


def write_table(table: TableLayout, out: TextIO, *, generated_header: bool = True) -> None:
    """Write one table as RFC 4180 CSV."""
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    if table.has_header:
        writer.writerow(table.header)
    elif generated_header:
        writer.writerow(table.names)
    writer.writerows(table.rows)


def table_text(table: TableLayout, *, generated_header: bool = True) -> str:
    buffer = io.StringIO()
    write_table(table, buffer, generated_header=generated_header)
    return buffer.getvalue()


def converted_path(out_dir: Path, source: Path, index: int) -> Path:
    """``DIR/NAME_converted.csv`` for the first table, ``…_converted_N.csv`` after it."""
    suffix = "" if index == 0 else f"_{index + 1}"
    return out_dir / f"{source.stem}_converted{suffix}.csv"


def error_text(message: str) -> str:
    return f"{ERROR_MARK}\n{message}\n"
