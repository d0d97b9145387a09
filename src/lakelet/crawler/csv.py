"""CSV inference: DuckDB's sniffer for the dialect, header and types, then two fixes.

The sniffer (``sniff_csv`` over ~20k rows, ignoring malformed rows so a few of them
cannot derail it) decides delimiter, quote, escape, header, skipped rows, newline and
date formats. Two things it cannot know are settled here:

* **Quoting.** A malformed quote (an unterminated ``"``) makes the sniffer give up on
  quoting altogether. When every ``"`` in the sample sits at a field boundary, the
  file is RFC 4180 quoted and the dialect says so; the broken row is then rejected at
  read instead of being read with a stray ``"`` in a value. A sample without any ``"``
  gets RFC 4180 quoting too (it reads the same), so clean and quoted files of one
  table share a dialect. A ``"`` quote always escapes itself by doubling (RFC 4180):
  the sniffer reports no escape when its sample happens to hold no doubled quote, and
  a later ``""`` would then fail every row that has one.
* **Types.** A column the sniffer types VARCHAR because of a few bad values keeps the
  type most values have, by the majority rule in :mod:`lakelet.crawler.schema`.

Files that are not UTF-8 are read as Latin-1 (``encoding`` in the dialect), UTF-16 when
they start with its byte-order mark.
"""

from __future__ import annotations

import codecs
import re
from typing import Any

from lakelet.catalog.rawscan import csv_options, sql_ident, sql_literal
from lakelet.crawler.schema import Field, FileSchema, candidate_checks, majority_type
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
    """The dialect, fields and row estimate of one CSV file."""
    encoding = detect_encoding(head)
    sniffed = _sniff(con, url, encoding)
    dialect = _dialect(sniffed, encoding)
    text = head.decode(encoding or "utf-8", errors="replace")
    if not dialect["quote"] and (
        '"' not in text or quotes_at_boundaries(text, dialect["delimiter"])
    ):
        dialect["quote"] = '"'
    if dialect["quote"] == '"' and not dialect["escape"]:
        dialect["escape"] = '"'
    columns: list[dict[str, str]] = list(sniffed["Columns"])
    names = [c["name"] for c in columns]
    untyped = [c["name"] for c in columns if c["type"] == "VARCHAR"]
    rows, nonnull, castable = _sample(con, url, dialect, names, untyped)
    fields = []
    for column in columns:
        name, type_ = column["name"], column["type"]
        if nonnull[name] == 0:
            fields.append(Field(name, None))
        elif type_ == "VARCHAR":
            fields.append(Field(name, majority_type(nonnull[name], castable[name]) or type_))
        else:
            fields.append(Field(name, type_))
    if rows >= SAMPLE_ROWS and head:
        rows = int(size * head.count(b"\n") / len(head))
    return FileSchema(fields, rows, dialect)


def _sniff(con: Any, url: str, encoding: str | None) -> dict[str, Any]:
    options = f"sample_size={SAMPLE_ROWS}, ignore_errors=true"
    if encoding:
        options += f", encoding={sql_literal(encoding)}"
    query = f"SELECT * FROM sniff_csv({sql_literal(url)}, {options})"
    try:
        cursor = con.execute(query)
        row = cursor.fetchone()
    except Exception as exc:  # duckdb.Error: the file is not a CSV DuckDB can read
        raise CsvInferenceError(_first_line(exc)) from exc
    if row is None:
        raise CsvInferenceError("the CSV sniffer returned nothing")
    names = [d[0] for d in cursor.description]
    return dict(zip(names, row, strict=True))


def _dialect(sniffed: dict[str, Any], encoding: str | None) -> dict[str, Any]:
    def text(value: Any) -> str:
        return "" if value in (None, "(empty)") else str(value)

    dialect: dict[str, Any] = {
        "delimiter": text(sniffed["Delimiter"]),
        "quote": text(sniffed["Quote"]),
        "escape": text(sniffed["Escape"]),
        "header": bool(sniffed["HasHeader"]),
        "skip": int(sniffed["SkipRows"] or 0),
        "newline": text(sniffed["NewLineDelimiter"]),
        "comment": text(sniffed["Comment"]),
    }
    if encoding:
        dialect["encoding"] = encoding
    types = {c["type"] for c in sniffed["Columns"]}
    dateformat = text(sniffed["DateFormat"])
    if "DATE" in types and dateformat and dateformat != ISO_DATE:
        dialect["dateformat"] = dateformat
    timestampformat = text(sniffed["TimestampFormat"])
    if "TIMESTAMP" in types and timestampformat and timestampformat not in ISO_TIMESTAMPS:
        dialect["timestampformat"] = timestampformat
    return dialect


def _sample(
    con: Any, url: str, dialect: dict[str, Any], names: list[str], untyped: list[str]
) -> tuple[int, dict[str, int], dict[str, dict[str, int]]]:
    """Rows sampled, non-null values per column, and for the ``untyped`` (VARCHAR)
    columns the values castable to each candidate type."""
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
        if name not in untyped:
            continue
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
