"""How a DuckDB connection reads a crawled raw table straight from its files.

A scan is typed by the crawled schema, never re-inferred, and loses nothing: every data
row of the files is either returned by :attr:`RawScan.select_sql` or listed by
:attr:`RawScan.rejects_sql` with its file, line and reason. A row counts as good only when
*every* column of the table parses, whatever columns a query projects (so ``count(*)``
and ``SELECT price`` see the same rows).

Which files belong to a table is decided here too, because the crawler and every reader
must agree on it: data files under ``table.location`` with the table's format, ignoring
hidden and marker files (a path segment starting with ``.`` or ``_``), empty objects and
the table's ``exclude`` globs; a table with ``dialect["nested"] = False`` (the crawl
path's own table) holds only files at its location or in its ``key=value`` folders,
because its other sub-folders are tables of their own.

Partition values come from the ``key=value`` path segments below the table's location
and are added to each file's rows as typed literals (instead of DuckDB's
``hive_partitioning``, which also reads segments above the location and needs every
file to have the same keys). A value that does not cast to its crawled type fails the
query loudly rather than becoming NULL; re-crawling widens the key's type.

JSON lines are read as text lines, so a malformed line, a line that is not an object,
or a top-level value that does not fit its column's type is a reject, not an error.

CSV is read as text and each column converted by its :class:`TypeDecision` (recorded by
the crawler in ``dialect["types"]``, else derived from the column type and the
dialect's date formats): DuckDB's reader would round ``1.5`` read into an integer
column and truncate a timestamp read into a DATE column; here such a value rejects its
row. A value written the way DuckDB writes it (``42``, ``2026-11-27``) takes one cast,
checked by turning it back into text; others take the recorded conversion. Null tokens
(``N/A``, ``NULL``, ``-``, …) are NULL in typed columns. :func:`count_scan` counts
what a scan read after a query used it, reading a file again only when a row of it
failed to convert.

Known limits: in JSON a value nested inside a STRUCT or LIST that does not fit becomes
NULL (only top-level values are checked); a file that cannot be read at all (corrupt
gzip or Parquet, JSON that is not UTF-8) fails the query, naming the file; a CSV file
with a value that does not convert is parsed twice more (to number its lines). A CSV row
whose text is not UTF-8 is rejected whatever columns a query reads (every column is
read). In a file with such a row *and* a value that does not convert, DuckDB's bare read
of the lines (which numbers the value's row) refuses the other row: :func:`count_scan`
then reads the lines into a table, skipping and putting back the refused ones
(:attr:`RawScan.relocated`); the single statement ``rejects_sql`` still fails there.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from lakelet.catalog.raw import RawTable
from lakelet.catalog.rawscan.accounting import ScanCount, count_scan
from lakelet.catalog.rawscan.binary import arrow_loader, default_opener
from lakelet.catalog.rawscan.core import (
    REJECT_COLUMNS,
    RawScan,
    assemble,
    empty_rejects,
    empty_select,
    file_partitions,
    relative_to_location,
    sql_ident,
    sql_literal,
)
from lakelet.catalog.rawscan.csv import (
    column_decision,
    csv_file_dialects,
    csv_layouts,
    csv_options,
    plan_csv,
)
from lakelet.catalog.rawscan.files import (
    FORMAT_SUFFIXES,
    HIVE_NULL,
    attach_store,
    belongs_to,
    format_of,
    glob_regex,
    is_excluded,
    is_hidden,
    partition_segment,
    raw_files,
    suffix_of,
)
from lakelet.catalog.rawscan.json import plan_json, text_lines_sql
from lakelet.catalog.rawscan.parquet import plan_parquet
from lakelet.catalog.rawscan.staging import needs_staging, stage, transcoded
from lakelet.errors import CatalogError

__all__ = [
    "FORMAT_SUFFIXES",
    "HIVE_NULL",
    "REJECT_COLUMNS",
    "RawScan",
    "ScanCount",
    "attach_store",
    "belongs_to",
    "column_decision",
    "count_scan",
    "csv_file_dialects",
    "csv_layouts",
    "csv_options",
    "file_partitions",
    "format_of",
    "glob_regex",
    "is_excluded",
    "is_hidden",
    "partition_segment",
    "plan_raw_scan",
    "raw_files",
    "relative_to_location",
    "sql_ident",
    "sql_literal",
    "suffix_of",
    "text_lines_sql",
]


def plan_raw_scan(
    table: RawTable,
    files: list[str],
    *,
    scan_id: str,
    filesystem: Any | None = None,
    stage_dir: Path | None = None,
) -> RawScan:
    """The SQL reading ``files`` as ``table``; ``scan_id`` names this scan's temp tables.

    For CSV, run ``rejects_sql`` only after a result of ``select_sql`` has been consumed
    to the end (``fetchall``, a full Arrow read, ``CREATE TABLE … AS``): DuckDB writes a
    scan's malformed rows to its rejects tables when the scan finishes, so a result
    read with ``fetchone`` and left open has recorded none yet.
    """
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", scan_id):
        raise ValueError(f"scan_id {scan_id!r} must be a SQL identifier")
    if not files:
        return RawScan(empty_select(table), empty_rejects(), [])
    originals: dict[str, str] = {}
    if any(needs_staging(table, url) for url in files):
        if stage_dir is None:
            raise CatalogError(
                f"raw table {table.table_name} has compressed files DuckDB cannot read "
                "directly; the scan needs a staging folder to decompress them into"
            )
        files, staged = stage(table, files, stage_dir, default_opener(filesystem))
        originals = staged.originals
        if transcoded(table) is not None:  # the staged copies are UTF-8
            dialect = {k: v for k, v in table.dialect.items() if k != "encoding"}
            table = replace(table, dialect=dialect)
    scan = _plan(table, files, scan_id, filesystem)
    return replace(scan, originals=originals) if originals else scan


def _plan(table: RawTable, files: list[str], scan_id: str, filesystem: Any | None) -> RawScan:
    if table.format == "csv":
        return plan_csv(table, files, scan_id)
    if table.format == "json":
        return plan_json(table, files)
    if table.format == "parquet":
        return plan_parquet(table, files)
    if table.format == "log":
        from lakelet.catalog.rawscan.log import plan_log

        return RawScan(*plan_log(table, files), list(files))
    if table.format in ("avro", "orc"):
        name = f"{scan_id}_arrow"
        select = assemble(table, [f"SELECT * FROM {name}"])
        loader = arrow_loader(table, files, default_opener(filesystem))
        return RawScan(select, empty_rejects(), list(files), {name: loader})
    raise ValueError(f"raw table {table.table_name} has unknown format {table.format!r}")
