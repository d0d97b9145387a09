"""What every raw scan shares: the :class:`RawScan` record, SQL quoting, partition
values from paths, and the assembly of per-file reads into one typed relation."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
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
class Relocation:
    """A file's located rejects (``sql``) read from its lines in a temporary table that
    ``setup`` makes and ``cleanup`` drops: for a file whose lines DuckDB's plain line
    read refuses (bytes that are not UTF-8), which a read that skips them and then puts
    them back in their place can take."""

    setup: tuple[str, ...]
    sql: str
    cleanup: tuple[str, ...]


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
    relocated: dict[str, Relocation] = field(default_factory=dict)
    """File → the same rows, located the way that also reads lines that are not UTF-8."""
    lines_before_rows: dict[str, int] = field(default_factory=dict)
    """Local uncompressed file → the lines above its first row (skipped, header): with
    its newlines counted, a proof that no row failed (see :func:`count_scan`)."""


def union_scans(scans: list[RawScan], selects: list[str]) -> RawScan:
    """One scan of several: ``selects`` reads each one's rows (row for row, columns
    added), and what each counts and locates is kept, so a file's rejects are found as
    its own scan finds them (:func:`lakelet.catalog.rawscan.count_scan`)."""
    rejects = "\nUNION ALL\n".join(f"SELECT * FROM ({scan.rejects_sql})" for scan in scans)
    union = RawScan(
        select_sql="\nUNION ALL\n".join(selects),
        rejects_sql=f"SELECT * FROM (\n{rejects}\n) ORDER BY file, line",
        files=[f for scan in scans for f in scan.files],
        arrow_tables={k: v for scan in scans for k, v in scan.arrow_tables.items()},
        originals={k: v for scan in scans for k, v in scan.originals.items()},
    )
    counts = [s.counts_sql for s in scans]
    totals = [s.total_sql for s in scans]
    structural = [s.structural_sql for s in scans]
    if any(part is None for part in (*counts, *totals, *structural)):
        return union  # a format whose rejects_sql finds every reject itself
    each_total = "\nUNION ALL\n".join(f"SELECT ({total}) AS n" for total in totals)
    return replace(
        union,
        counts_sql="\nUNION ALL\n".join(str(c) for c in counts),
        total_sql=f"SELECT CAST(sum(n) AS BIGINT) FROM (\n{each_total}\n)",
        structural_sql="\nUNION ALL\n".join(f"SELECT * FROM ({part})" for part in structural),
        located_sql={k: v for scan in scans for k, v in scan.located_sql.items()},
        relocated={k: v for scan in scans for k, v in scan.relocated.items()},
        lines_before_rows={k: v for scan in scans for k, v in scan.lines_before_rows.items()},
    )


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
