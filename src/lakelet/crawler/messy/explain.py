"""``--explain``: every decision the reader took about a file, and why, as text lines.

Column types come from the crawler's type inference
(``lakelet.crawler.values.infer_column_type``, with its votes) when it is available,
else from the reader's own cell kinds (counts per kind) — the header says which.
"""

from __future__ import annotations

import importlib
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from lakelet.crawler.messy.cells import EMPTY, kind_of
from lakelet.crawler.messy.layout import TableLayout
from lakelet.crawler.messy.reader import NEWLINES, ReadResult

TYPE_SAMPLE = 1000
SHOW_REJECTS = 20


def explain(result: ReadResult) -> list[str]:
    """The decisions of one read, one line each."""
    detection = result.detection
    lines = [
        f"encoding: {detection.encoding.name} ({detection.encoding.reason})",
        f"dialect: {result.dialect.describe()} ({detection.dialect.reason})",
        f"record delimiter: {NEWLINES.get(detection.newline, detection.newline)} "
        "(most common line end; \\n, \\r\\n and \\r are all accepted)",
        f"width: {detection.width} fields (most common record width)",
    ]
    if result.repaired_lines:
        shown = ", ".join(str(n) for n in result.repaired_lines[:SHOW_REJECTS])
        lines.append(f"stray quotes read as text on line(s) {shown}")
    if not result.tables:
        lines.append("no table: the file holds no records")
    infer = _type_inference()
    for number, table in enumerate(result.tables, start=1):
        lines.extend(_table_lines(number, table, infer))
    return lines


def _table_lines(number: int, table: TableLayout, infer: Callable[..., Any] | None) -> list[str]:
    first = table.first_line
    lines = [f"table {number}: {len(table.rows)} rows × {table.width} columns from line {first}"]
    lines.extend(f"  {reason}" for reason in table.reasons)
    source = "type inference" if infer is not None else "cell kinds (type inference unavailable)"
    lines.append(f"  types ({source}):")
    for j, name in enumerate(table.names):
        values = [row[j] for row in table.rows[:TYPE_SAMPLE]]
        lines.append(f"    {name}: {_type_of(values, infer)}")
    for reject in table.rejects[:SHOW_REJECTS]:
        lines.append(f"  reject line {reject.line}: {reject.reason}")
    if len(table.rejects) > SHOW_REJECTS:
        lines.append(f"  … and {len(table.rejects) - SHOW_REJECTS} more rejected lines")
    return lines


def _type_of(values: Sequence[str], infer: Callable[..., Any] | None) -> str:
    if infer is not None:
        decision = infer([v if v != "" else None for v in values])
        votes = getattr(decision, "votes", {})
        shown = ", ".join(f"{k} {v}" for k, v in dict(votes).items())
        return f"{decision.sql_type}" + (f" (votes: {shown})" if shown else "")
    counts = Counter(kind_of(v.strip()) for v in values)
    empty = counts.pop(EMPTY, 0)
    if not counts:
        return f"no values ({empty} empty)"
    kind = counts.most_common(1)[0][0]
    shown = ", ".join(f"{k} {n}" for k, n in counts.most_common())
    return f"{kind} (votes: {shown}; {empty} empty)"


def _type_inference() -> Callable[..., Any] | None:
    """The crawler's column type inference, when its module provides it."""
    try:
        module = importlib.import_module("lakelet.crawler.values")
    except ImportError:
        return None
    infer = getattr(module, "infer_column_type", None)
    return infer if callable(infer) else None
