"""What every raw scan shares: the :class:`RawScan` record, SQL quoting, partition
values from paths, and the assembly of per-file reads into one typed relation."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from lakelet.catalog.raw import Column, RawTable
from lakelet.catalog.rawscan.files import HIVE_NULL, partition_segment

INTEGER_TYPES = frozenset({"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT"})
NESTED_TYPE_RE = re.compile(r"(\[\]$|^STRUCT\(|^MAP\(|^UNION\()")
REJECT_COLUMNS = "file, line, column_name, reason, raw_row"
# A quoted value never closed runs to the end of the file: a line number past any file.
UNCLOSED = 10**15


@dataclass(frozen=True)
class RawScan:
    """SQL reading one crawled table: good rows, and the rows that failed.

    ``select_sql`` returns the table's columns then its partition keys, typed;
    ``rejects_sql`` returns ``file, line, column_name, reason, raw_row``, one row per
    rejected line, and must run after a result of ``select_sql`` was read to its end.
    """

    select_sql: str
    rejects_sql: str
    files: list[str]
    arrow_tables: dict[str, Callable[[], Any]] = field(default_factory=dict)
    """Arrow tables ``select_sql`` reads by name: register each (name → its data) first."""
    originals: dict[str, str] = field(default_factory=dict)
    """Decompressed staging copy → the lake file it stands for (to name in rejects)."""
    counts_sql: str | None = None
    """``file, good, failed`` per file in one pass: rows read and rows a value of which
    does not convert (CSV; ``None`` for formats whose rejects need no extra read)."""
    total_sql: str | None = None
    """One value: the files' well-formed rows, counted without converting anything."""
    structural_sql: str | None = None
    """The rows the reader itself rejected (``REJECT_COLUMNS``), from its rejects tables."""
    located_sql: dict[str, str] = field(default_factory=dict)
    """File → its rows whose values do not convert, located (a second read of the file)."""
    lines_before_rows: dict[str, int] = field(default_factory=dict)
    """Local uncompressed file → the lines above its first row (skipped, header): with
    its newlines counted, a proof that no row failed (see :func:`count_scan`)."""


# --- shared SQL pieces ---------------------------------------------------------------


def file_columns(table: RawTable, url: str, *, data: str = "*") -> str:
    """A file's data columns plus its partition values as typed literals."""
    values = file_partitions(url, table.location)
    literals = []
    for c in table.partition_keys:
        value = values.get(c.name)
        literal = "NULL" if value is None else sql_literal(value)
        literals.append(f"CAST({literal} AS {c.type}) AS {sql_ident(c.name)}")
    return ", ".join([data, *literals])


def relative_to_location(url: str, location: str) -> str:
    """The part of a file's URL below the table location (``date=…/f.csv``)."""
    marker = "/" + location.strip("/") + "/"
    at = url.rfind(marker)
    return url[at + len(marker) :] if at >= 0 else url.rsplit("/", 1)[-1]


def file_partitions(url: str, location: str) -> dict[str, str | None]:
    """``key=value`` segments of a file's path below the table location; any other
    folder level N below it is ``partition_N`` (Glue's name; the crawler's rule)."""
    values: dict[str, str | None] = {}
    for level, segment in enumerate(relative_to_location(url, location).split("/")[:-1]):
        pair = partition_segment(segment)
        if pair is not None:
            key, value = pair
            values[key] = None if value == HIVE_NULL else value
        else:
            values[f"partition_{level}"] = unquote(segment)
    return values


def assemble(table: RawTable, parts: list[str], *, whole_rows: bool = True) -> str:
    """Union the per-file reads by name over a typed skeleton; keep whole-row-good rows.

    The skeleton guarantees every column exists with its crawled type; with
    ``whole_rows`` a filter names every column so DuckDB parses (and rejects) whole rows
    even under ``count(*)``. Parts that already filter on every typed column pass
    ``whole_rows=False``: only the partition keys are named then (a value that does not
    cast to its key's type fails the query, whatever it projects).
    """
    columns = table.all_columns
    union = "\nUNION ALL BY NAME\n".join([skeleton(columns), *parts])
    casts = ", ".join(
        f"CAST({sql_ident(c.name)} AS {c.type}) AS {sql_ident(c.name)}" for c in columns
    )
    checked = columns if whole_rows else table.partition_keys  # their casts fail loudly
    listed = ", ".join(sql_ident(c.name) for c in checked)
    where = f" WHERE hash({listed}) IS NOT NULL" if checked else ""
    return f"SELECT {casts} FROM (\n{union}\n){where}"


def skeleton(columns: list[Column]) -> str:
    typed = ", ".join(f"CAST(NULL AS {c.type}) AS {sql_ident(c.name)}" for c in columns)
    return f"SELECT {typed} WHERE false"


def empty_select(table: RawTable) -> str:
    return skeleton(table.all_columns)


def empty_rejects() -> str:
    return (
        "SELECT CAST(NULL AS VARCHAR) AS file, CAST(NULL AS BIGINT) AS line, "
        "CAST(NULL AS VARCHAR) AS column_name, CAST(NULL AS VARCHAR) AS reason, "
        "CAST(NULL AS VARCHAR) AS raw_row WHERE false"
    )


def sql_literal(text: str) -> str:
    """A SQL string literal (DuckDB and the crawler build SQL from file names)."""
    return "'" + text.replace("'", "''") + "'"


def sql_ident(name: str) -> str:
    """A quoted SQL identifier: column names come from files and may hold anything."""
    return '"' + name.replace('"', '""') + '"'


def every_column_read(names: list[str]) -> str:
    """A condition true of every row that names each of ``names``, so that a count
    reads them all. DuckDB checks a CSV value's UTF-8 only in a column it reads: a
    bare ``count(*)`` took a row whose text is not UTF-8, which a scan reading that
    column rejects (counted twice: accepted and rejected)."""
    if not names:
        return "true"
    return " AND ".join(f"({sql_ident(n)} IS NULL OR {sql_ident(n)} IS NOT NULL)" for n in names)
