"""CSV inference: the messy-CSV reader decides, DuckDB reads at query time.

The file's head is read by :mod:`lakelet.crawler.messy` — the same code as
``lakelet read`` — so the crawler and the command agree on everything:

* **Encoding** (BOM, UTF-8 validity, UTF-16 by its NUL bytes, else CP1252/Latin-1; DuckDB
  reads the non-UTF-8 ones as ``latin-1`` or ``utf-16``).
* **Dialect** (delimiter, quote, escape) by consistency; a ``"`` quote escapes itself by
  doubling when no escape character is seen (RFC 4180), and a file without any quote
  gets RFC 4180 quoting too, so clean and quoted files of one table share a dialect.
* **Layout**: the preamble lines to skip, the header row(s) (several rows: DuckDB skips
  all but the last one, the names are the joined cells), generated ``col_0``, ``col_1``,
  … names when there is no header. Rows that do not fit are rejected at read time with
  their line and reason (``store_rejects`` in :mod:`lakelet.catalog.rawscan`).
* **Types** by DuckDB casts over up to ``SAMPLE_ROWS`` rows read with that dialect,
  kept when most values cast (the majority rule of :mod:`lakelet.crawler.schema`); a
  non-ISO date format comes from :func:`lakelet.crawler.values.infer_column_type`.

The layout comes from the head (``HEAD_BYTES``) only: bounded work per file. The older helpers
:func:`detect_encoding` and :func:`quotes_at_boundaries` are kept for their callers.
"""

from __future__ import annotations

import codecs
import re
from typing import Any

from lakelet.catalog.rawscan import csv_options, sql_ident, sql_literal
from lakelet.crawler.messy.layout import TableLayout, find_tables
from lakelet.crawler.messy.parse import Parser
from lakelet.crawler.messy.reader import NEWLINES, Detection, detect, sample_text
from lakelet.crawler.schema import Field, FileSchema, candidate_checks, majority_type
from lakelet.crawler.values import ISO, infer_column_type
from lakelet.errors import CrawlError

SAMPLE_ROWS = 20480
HEAD_BYTES = 1 << 16
ISO_DATE = "%Y-%m-%d"
ISO_TIMESTAMPS = frozenset({"%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"})


class CsvInferenceError(CrawlError):
    """DuckDB could not make sense of a file; the crawl skips it and says why."""


def detect_encoding(head: bytes) -> str | None:
    """``None`` for UTF-8 (DuckDB's default), else the encoding to read with."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return "latin-1"
    return None


def quotes_at_boundaries(text: str, delimiter: str) -> bool:
    """True when the text has ``"`` and each one opens or closes a field."""
    if '"' not in text or not delimiter:
        return False
    width = len(delimiter)
    for match in re.finditer('"', text):
        at = match.start()
        opens = at == 0 or text[at - 1] in "\r\n" or text[at - width : at] == delimiter
        closes = (
            at + 1 == len(text)
            or text[at + 1] in "\r\n"
            or text[at + 1 : at + 1 + width] == delimiter
        )
        if not (opens or closes):
            return False
    return True


def infer_csv(con: Any, url: str, head: bytes, size: int) -> FileSchema:
    """The dialect, fields and row estimate of one CSV file (layout from its head)."""
    complete = len(head) >= size
    detection = detect(head, complete=complete)
    text = sample_text(head, detection.encoding, complete=complete)
    records = list(Parser(text, detection.dialect.dialect).records(width=detection.width))
    tables = find_tables(records, detection.width)
    if not tables:
        raise CsvInferenceError("the file holds no CSV records")
    table = tables[0]
    dialect = csv_dialect(detection, table)
    fields, rows = _fields(con, url, table, dialect)
    if rows >= SAMPLE_ROWS and head:
        rows = int(size * len(table.rows) / len(head))
    return FileSchema(fields, rows, dialect)


def csv_dialect(detection: Detection, table: TableLayout) -> dict[str, Any]:
    """The read options of a file's main table (the ``RawTable.dialect`` keys)."""
    found = detection.dialect.dialect
    quote = found.quote or '"'
    escape = found.escape or quote
    if table.header_rows:
        header, skip = True, table.header_rows[-1].line - 1
    else:
        header, skip = False, (table.first_line - 1 if table.row_lines else 0)
    dialect: dict[str, Any] = {
        "delimiter": found.delimiter or ",",
        "quote": quote,
        "escape": escape,
        "header": header,
        "skip": skip,
        "newline": NEWLINES.get(detection.newline, "\\n"),
        "comment": "",
    }
    if len(table.header_rows) > 1:
        dialect["header_rows"] = len(table.header_rows)
    encoding = detection.encoding.duckdb_name
    if encoding:
        dialect["encoding"] = encoding
    return dialect


def _fields(
    con: Any, url: str, table: TableLayout, dialect: dict[str, Any]
) -> tuple[list[Field], int]:
    """Column types by DuckDB casts over the file read with the detected dialect (the
    majority rule of :mod:`lakelet.crawler.schema`), and the rows sampled. A non-ISO
    date or timestamp format comes from the value inference over the head's rows."""
    names = table.names
    for j, _ in enumerate(names):
        values = [row[j] for row in table.rows[:SAMPLE_ROWS] if row[j].strip()]
        decision = infer_column_type(values) if values else None
        if decision is None or decision.sql_type not in ("DATE", "TIMESTAMP"):
            continue
        fmt = decision.format
        if fmt and fmt != ISO and fmt != ISO_DATE and fmt not in ISO_TIMESTAMPS:
            dialect.setdefault(
                "dateformat" if decision.sql_type == "DATE" else "timestampformat", fmt
            )
    rows, nonnull, castable = _sample(con, url, dialect, names)
    fields = []
    for name in names:
        if nonnull[name] == 0:
            fields.append(Field(name, None))
        else:
            fields.append(Field(name, majority_type(nonnull[name], castable[name]) or "VARCHAR"))
    return fields, rows


def _sample(
    con: Any, url: str, dialect: dict[str, Any], names: list[str]
) -> tuple[int, dict[str, int], dict[str, dict[str, int]]]:
    """Rows sampled, non-null values per column, and values castable to each candidate."""
    columns = ", ".join(f"{sql_literal(n)}: 'VARCHAR'" for n in names)
    source = (
        f"SELECT * FROM read_csv({sql_literal(url)}, columns={{{columns}}}, "
        f"{csv_options(dialect)}, ignore_errors=true) LIMIT {SAMPLE_ROWS}"
    )
    measures = ["count(*)"]
    keys: list[tuple[str, str | None]] = []
    for name in names:
        value = sql_ident(name)
        measures.append(f"count({value})")
        keys.append((name, None))
        checks = candidate_checks(value, dateformat=dialect.get("dateformat"))
        for type_, check in checks.items():
            measures.append(f"count(*) FILTER (WHERE {check})")
            keys.append((name, type_))
    try:
        row = con.execute(f"SELECT {', '.join(measures)} FROM ({source})").fetchone()
    except Exception as exc:  # duckdb.Error
        raise CsvInferenceError(_first_line(exc)) from exc
    nonnull: dict[str, int] = {}
    castable: dict[str, dict[str, int]] = {n: {} for n in names}
    for (column, candidate), count in zip(keys, row[1:], strict=True):
        if candidate is None:
            nonnull[column] = int(count)
        else:
            castable[column][candidate] = int(count)
    return int(row[0]), nonnull, castable


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
