"""Table statistics: rows, and per column nulls, min, max and a distinct estimate.

Computed by one streaming DuckDB aggregate (bounded memory, whatever the size) over the
table's good rows, read as the crawled schema types them (a CSV column whose values
have a format of their own — day-first dates, currency, null tokens — is converted as a
scan converts it, and a row that does not convert is left out). CSV and Parquet files are
read in batches, one ``read_csv``/``read_parquet`` over many files, because the per-file
plan of :mod:`lakelet.catalog.rawscan` grows too slowly to plan 10,000 files; partition
values join by file. JSON lines go through the raw scan itself.

Past :data:`~lakelet.crawler.sample.FULL_SCAN_BYTES` of data (or always, or never: a
crawler's ``statistics`` setting) the same aggregate runs over a sample of lines of the
files instead, and its figures are scaled (:mod:`lakelet.crawler.sample`); such
statistics say ``"estimated": true`` and the ``"sample_rows"`` they come from.

After an incremental crawl that only added files, the new files' statistics merge into
the previous ones: counts add up, min and max combine, and the distinct estimate is the
larger of the two (a lower bound until the next full computation). A merge with an
estimated part is estimated, from the rows its parts were computed from.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from lakelet.catalog.raw import Column, RawTable, RawTableRegistry
from lakelet.catalog.rawscan import (
    column_decision,
    csv_file_dialects,
    csv_layouts,
    csv_options,
    file_partitions,
    plan_raw_scan,
    relative_to_location,
    sql_ident,
    sql_literal,
)
from lakelet.crawler.bundle import FILE_COLUMN, bundle_read, bundled_csv
from lakelet.crawler.sample import LineSample, estimate_distinct, sample_lines
from lakelet.crawler.sample import Sampling as Sampling  # what callers pass
from lakelet.crawler.values.decision import ISO, TypeDecision

FULL = Sampling("full")
ORDERABLE = ("INT", "DECIMAL", "DOUBLE", "FLOAT", "REAL", "DATE", "TIME", "VARCHAR", "BOOLEAN")


@dataclass(frozen=True)
class StatsResult:
    stats: dict[str, Any] | None
    warning: str | None = None


def compute_stats(
    con: Any, table: RawTable, urls: list[str], sampling: Sampling = FULL
) -> StatsResult:
    """Statistics of ``table`` over the files ``urls``, exact or estimated as
    ``sampling`` says (a crawler passes its settings'); a failure is a warning."""
    if not urls:
        return StatsResult(_empty(table))
    cursor = con.cursor()  # its own cursor: an earlier result may still be open on ``con``
    try:
        with ExitStack() as temporary:
            sample = None
            if table.format == "csv" and sampling.wanted(_data_bytes(table, urls)):
                sample = sample_lines(table, urls, sampling.rows, temporary)
            if sample is not None:
                reads = _sample_reads(cursor, table, sample, temporary)
                source = _source(cursor, table, urls, reads)
                return StatsResult(_estimate(cursor, table, source, sample))
            source = _source(cursor, table, urls, _batch_reads(cursor, table, urls, temporary))
            return StatsResult(_aggregate(cursor, table, source))
    except Exception as exc:  # duckdb.Error: a file vanished or cannot be read
        text = str(exc).strip()
        reason = text.splitlines()[0] if text else type(exc).__name__
        return StatsResult(None, f"statistics not computed: {reason}")
    finally:
        cursor.close()


def _data_bytes(table: RawTable, urls: list[str]) -> int:
    """The bytes of ``urls``: the table's when they are all its files, else the local
    ones' sizes (remote files are not sampled)."""
    if len(urls) == table.properties.get("files") and "bytes" in table.properties:
        return int(table.properties["bytes"])
    total = 0
    for url in urls:
        if "://" not in url:
            try:
                total += os.path.getsize(url)
            except OSError:
                continue  # the read reports it
    return total


def merge_stats(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """Statistics of the union of two disjoint sets of files (see the module docstring)."""
    columns: dict[str, Any] = {}
    for name in {**old["columns"], **new["columns"]}:
        a, b = old["columns"].get(name), new["columns"].get(name)
        if a is None or b is None:
            columns[name] = None
            continue
        columns[name] = {
            "type": b["type"],
            "nulls": a["nulls"] + b["nulls"],
            "min": _pick(min, a["min"], b["min"]),
            "max": _pick(max, a["max"], b["max"]),
            "distinct": max(a["distinct"], b["distinct"]),
        }
    merged = {k: v for k, v in columns.items() if v is not None}
    stats = {"rows": old["rows"] + new["rows"], "columns": merged, "exact_distinct": False}
    if old.get("estimated") or new.get("estimated"):
        stats["estimated"] = True
        stats["sample_rows"] = _rows_read(old) + _rows_read(new)
    return stats


def _rows_read(stats: Mapping[str, Any]) -> int:
    """The rows statistics were computed from: all, unless estimated."""
    return int(stats["sample_rows"] if stats.get("estimated") else stats["rows"])


def _pick(choose: Any, a: Any, b: Any) -> Any:
    if a is None:
        return b
    if b is None:
        return a
    try:
        return choose(a, b)
    except TypeError:  # values of two types: keep the newer
        return b


def _source(con: Any, table: RawTable, urls: list[str], reads: list[str]) -> str:
    """SQL of the table's good rows in ``reads`` (each giving the file's URL and the
    columns), with their files' partition values."""
    if table.format == "json":
        return plan_raw_scan(table, urls, scan_id="lakelet_stats").select_sql
    data = "\nUNION ALL BY NAME\n".join(reads)
    if not table.partition_keys:
        return f"SELECT * EXCLUDE ({sql_ident(FILE_COLUMN)}) FROM ({data})"
    _register_partitions(con, table, urls)
    keys = ", ".join(
        f"CAST(p.{sql_ident(c.name)} AS {c.type}) AS {sql_ident(c.name)}"
        for c in table.partition_keys
    )
    return (
        f"SELECT d.* EXCLUDE ({sql_ident(FILE_COLUMN)}), {keys} FROM ({data}) AS d "
        f"JOIN lakelet_stats_files AS p ON d.{sql_ident(FILE_COLUMN)} = p.{sql_ident(FILE_COLUMN)}"
    )


def _batch_reads(con: Any, table: RawTable, urls: list[str], bundles: ExitStack) -> list[str]:
    """Reads of every row of ``urls``: small CSV files as bundles (see
    :mod:`lakelet.crawler.bundle`) that live in ``bundles``."""
    if table.format == "json":
        return []
    if table.format == "parquet":
        files = "[" + ", ".join(sql_literal(u) for u in urls) + "]"
        casts = ", ".join(
            f"TRY_CAST({sql_ident(c.name)} AS {c.type}) AS {sql_ident(c.name)}"
            for c in table.columns
        )
        return [
            f"SELECT {casts}, {sql_ident(FILE_COLUMN)} FROM read_parquet({files}, "
            f"union_by_name=true, hive_partitioning=false, filename={sql_literal(FILE_COLUMN)})"
        ]
    layouts = csv_layouts(table)
    own = csv_file_dialects(table)
    default = [c.name for c in table.columns]
    by_layout: dict[tuple[tuple[str, ...], str], list[str]] = {}
    for url in urls:
        relative = relative_to_location(url, table.location)
        names = layouts.get(relative, default)
        options = csv_options(own.get(relative, table.dialect))
        by_layout.setdefault((tuple(names), options), []).append(url)
    reads = []
    for (layout, options), members in by_layout.items():
        dialect = own.get(relative_to_location(members[0], table.location), table.dialect)
        reading = _Reading.of(table, layout, dialect)
        bundle = bundles.enter_context(bundled_csv(con, members, reading.columns, dialect))
        if bundle.sql:
            reads.append(reading.wrap(bundle.sql))
        if not bundle.rest:
            continue
        columns = ", ".join(f"{sql_literal(n)}: {sql_literal(t)}" for n, t in reading.columns)
        files = "[" + ", ".join(sql_literal(u) for u in bundle.rest) + "]"
        read = (
            f"SELECT * FROM read_csv({files}, columns={{{columns}}}, "
            f"{options}, ignore_errors=true, "
            f"filename={sql_literal(FILE_COLUMN)})"
        )
        reads.append(reading.wrap(read))
    return reads


def _sample_reads(con: Any, table: RawTable, sample: LineSample, bundles: ExitStack) -> list[str]:
    reads = []
    for sampled in sample.bundles:
        reading = _Reading.of(table, sampled.names, sampled.dialect)
        read = bundle_read(
            con, sampled.path, sampled.urls, reading.columns, sampled.dialect, sample.read_buffer
        )
        reads.append(reading.wrap(bundles.enter_context(read)))
    return reads


@dataclass(frozen=True)
class _Reading:
    """How a layout of a CSV table's files is read: DuckDB types a column itself, unless
    its recorded decision reads the text its own way (a date format, currency,
    percentages, decimal commas, null tokens). Such a column is read as text and
    converted as a scan converts it, and a row with a value that does not convert is
    left out, as a scan rejects it."""

    columns: list[tuple[str, str]]
    """Name and the type read, in the files' order."""
    converted: list[tuple[str, TypeDecision]]

    @classmethod
    def of(cls, table: RawTable, names: Sequence[str], dialect: dict[str, Any]) -> _Reading:
        known = {c.name.lower(): c for c in table.columns}
        stored = table.dialect.get("types", {})
        columns, converted = [], []
        for name in names:
            column = known.get(name.lower(), Column(name, "VARCHAR"))
            decision = column_decision(column, dialect, stored.get(column.name))
            if _own_reading(decision):
                columns.append((column.name, "VARCHAR"))
                converted.append((column.name, decision))
            else:
                columns.append((column.name, column.type))
        return cls(columns, converted)

    def wrap(self, read: str) -> str:
        """``read`` (of :attr:`columns`) with the converted values, rejected rows left out."""
        if not self.converted:
            return read
        from lakelet.crawler.values import conversion_sql, failure_sql

        values = ", ".join(
            f"{conversion_sql(d, sql_ident(n))} AS {sql_ident(n)}" for n, d in self.converted
        )
        failing = " OR ".join(failure_sql(d, sql_ident(n)) for n, d in self.converted)
        return f"SELECT * REPLACE ({values}) FROM ({read}) WHERE NOT ({failing})"


def _own_reading(decision: TypeDecision) -> bool:
    """Whether DuckDB's reading of a column's text differs from the recorded decision."""
    if decision.sql_type.upper() in ("VARCHAR", "JSON"):
        return False
    plain = decision.format in (None, ISO, "%Y-%m-%d")
    return bool(decision.currency or decision.nulls or not plain)


def _register_partitions(con: Any, table: RawTable, urls: list[str]) -> None:
    import pyarrow as pa

    values = [file_partitions(url, table.location) for url in urls]
    data = {FILE_COLUMN: urls}
    for column in table.partition_keys:
        data[column.name] = [v.get(column.name) for v in values]  # type: ignore[misc]
    con.register("lakelet_stats_files", pa.table(data))


def _aggregate(con: Any, table: RawTable, source: str) -> dict[str, Any]:
    columns = table.all_columns
    measures = ["count(*)"]
    for c in columns:
        value = sql_ident(c.name)
        orderable = any(word in c.type for word in ORDERABLE) and "[]" not in c.type
        measures.append(f"count({value})")
        measures.append(f"min({value})" if orderable else "NULL")
        measures.append(f"max({value})" if orderable else "NULL")
        measures.append(f"approx_count_distinct({value})")
    row = con.execute(f"SELECT {', '.join(measures)} FROM ({source})").fetchone()
    rows = int(row[0])
    stats: dict[str, Any] = {}
    for i, c in enumerate(columns):
        nonnull, low, high, distinct = row[1 + 4 * i : 5 + 4 * i]
        stats[c.name] = {
            "type": c.type,
            "nulls": rows - int(nonnull),
            "min": _plain(low),
            "max": _plain(high),
            "distinct": int(distinct or 0),
        }
    return {"rows": rows, "columns": stats, "exact_distinct": True}


def _estimate(con: Any, table: RawTable, source: str, sample: LineSample) -> dict[str, Any]:
    """The aggregate over the sampled rows, scaled to the data (see
    :mod:`lakelet.crawler.sample`)."""
    kept = f"lakelet_stats_sample_{secrets.token_hex(6)}"
    con.execute(f"CREATE TEMP TABLE {kept} AS {source}")
    try:
        stats = _aggregate(con, table, f"SELECT * FROM {kept}")
        seen = _frequencies(con, table, kept)
    finally:
        con.execute(f"DROP TABLE IF EXISTS {kept}")
    rows, scale = stats["rows"], sample.scale
    for name, column in stats["columns"].items():
        present = rows - column["nulls"]
        distinct, once = seen[name]
        column["nulls"] = min(round(column["nulls"] * scale), round(rows * scale))
        column["distinct"] = estimate_distinct(present, distinct, once, present * scale)
    stats.update(rows=round(rows * scale), exact_distinct=False, estimated=True, sample_rows=rows)
    return stats


def _frequencies(con: Any, table: RawTable, kept: str) -> dict[str, tuple[int, int]]:
    """Per column of the sampled rows: its distinct values, and those seen once."""
    parts = [
        f"SELECT {i} AS i, count(*) AS d, count(*) FILTER (WHERE n = 1) AS f1 FROM "
        f"(SELECT count(*) AS n FROM {kept} WHERE {sql_ident(c.name)} IS NOT NULL "
        f"GROUP BY {sql_ident(c.name)})"
        for i, c in enumerate(table.all_columns)
    ]
    rows = con.execute(" UNION ALL ".join(parts)).fetchall()
    found = {int(i): (int(d), int(f1)) for i, d, f1 in rows}
    return {c.name: found.get(i, (0, 0)) for i, c in enumerate(table.all_columns)}


def _empty(table: RawTable) -> dict[str, Any]:
    columns = {
        c.name: {"type": c.type, "nulls": 0, "min": None, "max": None, "distinct": 0}
        for c in table.all_columns
    }
    return {"rows": 0, "columns": columns, "exact_distinct": True}


def _plain(value: Any) -> Any:
    """A JSON-safe value that still orders like the original (ISO text for dates)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    return str(value)


def mergeable(previous: dict[str, Any], table: RawTable, added: int, files: int) -> bool:
    """Whether the statistics of ``added`` new files merge into ``previous`` (of the
    table's other files, typed as now) to give the table's."""
    return (
        0 < added < files and previous.get("files") == files - added and same_types(previous, table)
    )


def merge_new_files(
    registry: RawTableRegistry,
    con: Any,
    table: RawTable,
    version: int,
    previous: dict[str, Any],
    added: list[str],
    files: int,
    sampling: Sampling = FULL,
) -> str | None:
    result = compute_stats(con, table, added, sampling)
    if result.stats is not None:
        merged = merge_stats(previous, result.stats)
        merged["files"] = files
        registry.record_stats(table.table_name, version, merged)
    return result.warning


def same_types(stats: dict[str, Any], table: RawTable) -> bool:
    columns = stats.get("columns", {})
    return all(
        c.name in columns and columns[c.name].get("type") == c.type for c in table.all_columns
    )
