"""Where the table is in the records: preamble, header rows, body, footnotes, more tables.

The table's width is the most common record width. Then, in order:

* **preamble** — leading records of another width, or with at most one non-empty
  cell (a title, ``PREAMBLE,,,,``, a blank separator row);
* **header rows** — up to three leading records that *vote* header: in the columns
  whose body values share one kind (numbers, dates, …), a strict majority of their
  filled cells (null tokens count as empty) are of another kind and none is of its
  column's kind (or family: an integer in a decimal column). When no column is typed,
  the first record is the header if its cells are all filled and distinct. Several
  header rows are joined cell by cell with a space;
* **another table** — a record repeating the header, or a run of at least
  ``NEW_TABLE_RUN`` records of one other width, starts a new table (laid out the same
  way); a blank line only separates;
* **footnotes** — trailing records of another width or with at most one value;
* **rejects** — any other record whose width is not the table's, with its line and
  why. A record with extra fields that are all empty (trailing delimiters) fits.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from lakelet.crawler.messy.cells import EMPTY, TEXT, kind_of
from lakelet.crawler.messy.parse import Record
from lakelet.crawler.values import is_null_token

MAX_HEADER_ROWS = 3
NEW_TABLE_RUN = 3
KIND_SAMPLE = 200
TYPED_SHARE = 0.6
NULL = "null"
_FAMILIES = (
    frozenset({"integer", "number", "percent", "currency"}),
    frozenset({"date", "datetime"}),
)


@dataclass(frozen=True)
class Reject:
    """A record that does not fit its table: first line, why, and its fields."""

    line: int
    reason: str
    fields: list[str]


@dataclass
class TableLayout:
    """One table found in a file."""

    width: int
    preamble: list[Record] = field(default_factory=list)
    header_rows: list[Record] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    row_lines: list[int] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    footnotes: list[Record] = field(default_factory=list)
    column_kinds: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    @property
    def has_header(self) -> bool:
        return bool(self.header_rows)

    @property
    def header(self) -> list[str]:
        """The header cells (several header rows joined by a space), or ``[]``."""
        if not self.header_rows:
            return []
        cells = []
        for j in range(self.width):
            parts = [r.fields[j].strip() for r in self.header_rows if j < r.width]
            cells.append(" ".join(p for p in parts if p))
        return cells

    @property
    def names(self) -> list[str]:
        """Unique, non-empty column names: the header's, else ``col_0``, ``col_1``, …"""
        names: list[str] = []
        seen: set[str] = set()
        for j, cell in enumerate(self.header or [""] * self.width):
            name = cell or f"col_{j}"
            base, n = name, 2
            while name.lower() in seen:
                name, n = f"{base}_{n}", n + 1
            seen.add(name.lower())
            names.append(name)
        return names

    @property
    def first_line(self) -> int:
        """Physical line of the first header or data row (1-based)."""
        if self.header_rows:
            return self.header_rows[0].line
        return self.row_lines[0] if self.row_lines else 0


def modal_width(records: list[Record]) -> int:
    """The most common width of non-blank records (ties: the wider), 1 when none."""
    widths = Counter(r.width for r in records if not r.blank)
    if not widths:
        return 1
    return max(widths.items(), key=lambda item: (item[1], item[0]))[0]


def find_tables(
    records: list[Record], width: int | None = None, *, header: bool | None = None
) -> list[TableLayout]:
    """Split parsed records into tables (the first one is the file's main table).

    ``header`` forces the main table's first row to be a header (``True``) or data
    (``False``), as a custom classifier may; ``None`` lets the rows vote.
    """
    tables: list[TableLayout] = []
    rest = [r for r in records if not r.blank]
    while rest:
        table, rest = _one_table(
            rest, width if not tables else None, header if not tables else None
        )
        if table.rows or table.header_rows or not tables:
            tables.append(table)
        elif tables:
            tables[-1].footnotes.extend(table.preamble + table.footnotes)
    return tables


def _sparse(record: Record) -> bool:
    return record.width > 1 and sum(1 for v in record.fields if v.strip()) <= 1


def _fits(record: Record, width: int) -> bool:
    if record.width == width:
        return True
    return record.width > width and not any(v.strip() for v in record.fields[width:])


def _one_table(
    records: list[Record], width: int | None, header: bool | None = None
) -> tuple[TableLayout, list[Record]]:
    """The first table of ``records`` and the records after it."""
    w = width or modal_width(records[: KIND_SAMPLE * 5])
    table = TableLayout(width=w)
    i = 0
    while i < len(records) and (not _fits(records[i], w) or (w > 2 and _sparse(records[i]))):
        table.preamble.append(records[i])
        i += 1
    if table.preamble:
        table.reasons.append(
            f"preamble: {len(table.preamble)} line(s) before line {_line(records, i)} "
            f"(another width than {w} fields, or at most one value)"
        )
    body_start = i
    candidates = [r for r in records[i : i + MAX_HEADER_ROWS] if _fits(r, w)]
    body = [r for r in records[i + MAX_HEADER_ROWS : i + MAX_HEADER_ROWS + KIND_SAMPLE]]
    kinds = _column_kinds([r for r in body if _fits(r, w)] or candidates[1:], w)
    header_count, why = _header_rows(candidates, kinds, w)
    if header is not None and candidates:
        header_count = 1 if header else 0
        why = "header: " + ("present" if header else "absent") + " (set by the classifier)"
    table.header_rows = candidates[:header_count]
    body_start += header_count
    table.reasons.append(why)
    end = _table_end(records, body_start, w, table.header)
    data = records[body_start:end]
    footer = len(data)
    while footer > 0 and (not _fits(data[footer - 1], w) or (w > 2 and _sparse(data[footer - 1]))):
        footer -= 1
    table.footnotes = data[footer:]
    if table.footnotes:
        table.reasons.append(
            f"footnotes: {len(table.footnotes)} trailing line(s) from line "
            f"{table.footnotes[0].line} (another width or at most one value)"
        )
    for record in data[:footer]:
        if _fits(record, w):
            table.rows.append(record.fields[:w])
            table.row_lines.append(record.line)
        else:
            table.rejects.append(
                Reject(record.line, f"{record.width} fields where the table has {w}", record.fields)
            )
    table.column_kinds = _column_kinds_of_rows(table.rows, w)
    return table, records[end:]


def _line(records: list[Record], i: int) -> int:
    return records[i].line if i < len(records) else records[-1].end_line + 1


def _column_kinds(records: list[Record], width: int) -> list[str]:
    return _column_kinds_of_rows([r.fields for r in records], width)


def _column_kinds_of_rows(rows: list[list[str]], width: int) -> list[str]:
    """Per column, the kind most non-empty values share (``text`` when none dominates)."""
    kinds = []
    for j in range(width):
        counts = Counter(kind_of(row[j]) for row in rows[:KIND_SAMPLE] if j < len(row))
        counts.pop(EMPTY, None)
        total = sum(counts.values())
        if not total:
            kinds.append(EMPTY)
            continue
        kind, n = counts.most_common(1)[0]
        kinds.append(kind if n >= TYPED_SHARE * total else TEXT)
    return kinds


def _header_rows(candidates: list[Record], kinds: list[str], width: int) -> tuple[int, str]:
    """How many leading records are header rows, and why."""
    typed = [j for j, k in enumerate(kinds) if k not in (TEXT, EMPTY, NULL)]
    if typed:
        count = 0
        for record in candidates:
            filled = [j for j in typed if not is_null_token(record.fields[j])]
            matching = sum(1 for j in filled if _matches(record.fields[j].strip(), kinds[j]))
            # A header cell is never a value of its column's kind: one such cell (an id
            # in an integer column) makes the row data, even if its other cells are odd.
            if matching or (len(filled) - matching) * 2 <= len(filled):
                break
            count += 1
        columns = ", ".join(f"{j}:{kinds[j]}" for j in typed[:6])
        if count:
            return count, (
                f"header: {count} row(s) from line {candidates[0].line}, whose cells are "
                f"not of their column's kind ({columns})"
            )
        line = candidates[0].line if candidates else 0
        return 0, (
            f"no header: line {line} has values of its columns' kinds ({columns}); "
            "columns are named col_0, col_1, …"
        )
    if candidates:
        first = candidates[0]
        cells = [v.strip() for v in first.fields[:width]]
        if all(cells) and len({c.lower() for c in cells}) == len(cells):
            return 1, (
                f"header: line {first.line} (no typed column to compare; its cells are "
                "all filled and distinct)"
            )
    return 0, "no header: no typed column and the first row has empty or repeated cells"


def _matches(value: str, column_kind: str) -> bool:
    """A cell of the column's kind, or of its family (``2`` in a column of ``1.5``)."""
    kind = kind_of(value)
    if kind == column_kind:
        return True
    return any(kind in family and column_kind in family for family in _FAMILIES)


def _table_end(records: list[Record], start: int, width: int, header: list[str]) -> int:
    """Index of the first record of the next table (``len(records)`` when none)."""
    key = [h.lower() for h in header]
    for i in range(start, len(records)):
        record = records[i]
        if key and [v.strip().lower() for v in record.fields] == key:
            return i
        if not _fits(record, width):
            run = records[i : i + NEW_TABLE_RUN]
            if len(run) == NEW_TABLE_RUN and all(r.width == record.width for r in run):
                return i
    return len(records)
