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
* **Types** by value inference (:mod:`lakelet.crawler.values`) over up to
  ``SAMPLE_ROWS`` rows read with that dialect: dates in their format, currency,
  percentages, decimal commas, null tokens; each decision is recorded in
  ``dialect["types"]`` for the scan.

The layout comes from the head (``HEAD_BYTES``) only: bounded work per file. The older helpers
:func:`detect_encoding` and :func:`quotes_at_boundaries` are kept for their callers.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Mapping
from typing import Any

from lakelet.catalog.rawscan import csv_options, sql_literal
from lakelet.crawler.messy.layout import TableLayout, find_tables
from lakelet.crawler.messy.parse import Parser
from lakelet.crawler.messy.reader import NEWLINES, Detection, detect, sample_text
from lakelet.crawler.schema import Field, FileSchema
from lakelet.crawler.values import infer_column_type
from lakelet.errors import CrawlError

SAMPLE_ROWS = 20480
DUCKDB_CANNOT_DECOMPRESS = (".bz2",)  # scans stage a decompressed copy instead
STAGED_ENCODINGS = frozenset({"cp1252"})  # scans stage a UTF-8 copy instead
CP1252_ONLY = re.compile(rb"[\x80-\x9f]")  # bytes CP1252 and Latin-1 read differently
SAMPLE_BUFFER_BYTES = 4 << 20
"""DuckDB's read buffer for the sample: its default (32 MB) parses far more of a large
file than the sample needs (0.05 s against 0.035 on TPC-H lineitem); twice DuckDB's
longest line (2 MB), which a buffer must hold."""
TYPE_SAMPLE_VALUES = 2000  # values per column given to inference (its cost is per value)
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


def infer_csv(
    con: Any, url: str, head: bytes, size: int, hints: Mapping[str, Any] | None = None
) -> FileSchema:
    """The dialect, fields and row estimate of one CSV file (layout from its head).

    ``hints`` are a custom delimited classifier's settings: ``delimiter``, ``quote`` and
    ``header`` (``present`` / ``absent`` / ``auto``) take precedence over detection.
    """
    hints = hints or {}
    complete = len(head) >= size
    detection = detect(
        head, complete=complete, delimiter=hints.get("delimiter"), quote=hints.get("quote")
    )
    text = sample_text(head, detection.encoding, complete=complete)
    records = list(Parser(text, detection.dialect.dialect).records(width=detection.width))
    header = {"present": True, "absent": False}.get(str(hints.get("header", "auto")))
    tables = find_tables(records, detection.width, header=header)
    if not tables:
        raise CsvInferenceError("the file holds no CSV records")
    table = tables[0]
    dialect = csv_dialect(detection, table)
    if dialect.get("encoding") == "cp1252" and not CP1252_ONLY.search(head):
        dialect["encoding"] = "latin-1"  # no byte where they differ: DuckDB reads it itself
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
    encoding = detection.encoding.table_name
    if encoding:
        dialect["encoding"] = encoding
    return dialect


def _fields(
    con: Any, url: str, table: TableLayout, dialect: dict[str, Any]
) -> tuple[list[Field], int]:
    """Column types by value inference (:func:`lakelet.crawler.values.infer_column_type`)
    over up to ``SAMPLE_ROWS`` rows read with the detected dialect, and the rows sampled.

    Each column's decision (format, currency, null tokens) is recorded in
    ``dialect["types"]`` so a scan converts the text exactly as inference read it.
    """
    names = table.names
    staged = str(dialect.get("encoding")) in STAGED_ENCODINGS
    if staged or url.lower().endswith(DUCKDB_CANNOT_DECOMPRESS):  # the head's rows' values
        rows = len(table.rows)
        samples: list[Any] = [
            [r[j] if j < len(r) else None for r in table.rows] for j in range(len(names))
        ]
    else:
        rows, samples = _sample(con, url, dialect, names)
    fields: list[Field] = []
    types: dict[str, dict[str, Any]] = {}
    for name, column in zip(names, samples, strict=True):
        spread = _spread(column, TYPE_SAMPLE_VALUES)
        if not (_has_text(spread) or _has_text(_values(column))):  # the spread first
            fields.append(Field(name, None))
            continue
        decision = infer_column_type(spread)
        fields.append(Field(name, decision.sql_type))
        stored = decision.to_dict()
        if stored:
            types[name] = stored
    if types:
        dialect["types"] = types
    return fields, rows


def _has_text(values: list[str | None]) -> bool:
    return any(v is not None and v.strip() for v in values)


def _values(column: Any) -> list[str | None]:
    """A sampled column's values: a list already, or an Arrow column."""
    return column if isinstance(column, list) else list(column.to_pylist())


def _spread(column: Any, count: int) -> list[str | None]:
    """At most ``count`` values taken evenly from the whole sample (deterministic), of a
    list or an Arrow column (only those values become Python strings)."""
    if len(column) <= count:
        return _values(column)
    step = len(column) / count
    at = [int(i * step) for i in range(count)]
    if isinstance(column, list):
        return [column[i] for i in at]
    return list(column.take(at).to_pylist())


def _sample(con: Any, url: str, dialect: dict[str, Any], names: list[str]) -> tuple[int, list[Any]]:
    """Rows sampled and each column's text values (Arrow columns), read by DuckDB with
    the dialect: making Python rows of them first cost more than inference itself, and
    inference takes a spread of them."""
    columns = ", ".join(f"{sql_literal(n)}: 'VARCHAR'" for n in names)
    source = (
        f"SELECT * FROM read_csv({sql_literal(url)}, columns={{{columns}}}, "
        f"{csv_options(dialect)}, ignore_errors=true, buffer_size={SAMPLE_BUFFER_BYTES}) "
        f"LIMIT {SAMPLE_ROWS}"
    )
    cursor = con.cursor()
    try:
        sample = cursor.sql(source).to_arrow_table()
    except Exception as exc:  # duckdb.Error
        raise CsvInferenceError(_first_line(exc)) from exc
    finally:
        cursor.close()
    return sample.num_rows, list(sample.columns)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
