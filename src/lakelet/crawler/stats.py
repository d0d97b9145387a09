"""Table statistics: rows, and per column nulls, min, max and a distinct estimate.

Computed by one streaming DuckDB aggregate (bounded memory, whatever the size) over the
table's good rows, read as the crawled schema types them. CSV and Parquet files are
read in batches, one ``read_csv``/``read_parquet`` over many files, because the per-file
plan of :mod:`lakelet.catalog.rawscan` grows too slowly to plan 10,000 files; partition
values join by file. JSON lines go through the raw scan itself.

After an incremental crawl that only added files, the new files' statistics merge into
the previous ones: counts add up, min and max combine, and the distinct estimate is the
larger of the two (a lower bound until the next full computation).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from lakelet.catalog.raw import Column, RawTable, RawTableRegistry
from lakelet.catalog.rawscan import (
    csv_file_dialects,
    csv_layouts,
    csv_options,
    file_partitions,
    plan_raw_scan,
    relative_to_location,
    sql_ident,
    sql_literal,
)
from lakelet.crawler.bundle import FILE_COLUMN, bundled_csv

ORDERABLE = ("INT", "DECIMAL", "DOUBLE", "FLOAT", "REAL", "DATE", "TIME", "VARCHAR", "BOOLEAN")


@dataclass(frozen=True)
class StatsResult:
    stats: dict[str, Any] | None
    warning: str | None = None


def compute_stats(con: Any, table: RawTable, urls: list[str]) -> StatsResult:
    """Statistics of ``table`` over the files ``urls``; a failure is a warning."""
    if not urls:
        return StatsResult(_empty(table))
    cursor = con.cursor()  # its own cursor: an earlier result may still be open on ``con``
    try:
        with ExitStack() as bundles:
            source = _source(cursor, table, urls, bundles)
            return StatsResult(_aggregate(cursor, table, source))
    except Exception as exc:  # duckdb.Error: a file vanished or cannot be read
        text = str(exc).strip()
        reason = text.splitlines()[0] if text else type(exc).__name__
        return StatsResult(None, f"statistics not computed: {reason}")
    finally:
        cursor.close()


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
    return {"rows": old["rows"] + new["rows"], "columns": merged, "exact_distinct": False}


def _pick(choose: Any, a: Any, b: Any) -> Any:
    if a is None:
        return b
    if b is None:
        return a
    try:
        return choose(a, b)
    except TypeError:  # values of two types: keep the newer
        return b


def _source(con: Any, table: RawTable, urls: list[str], bundles: ExitStack) -> str:
    """SQL of the table's good rows over ``urls``, with its partition values; small CSV
    files are read as bundles (see :mod:`lakelet.crawler.bundle`) that live in
    ``bundles``."""
    if table.format == "json":
        return plan_raw_scan(table, urls, scan_id="lakelet_stats").select_sql
    reads = _batch_reads(con, table, urls, bundles)
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
    known = {c.name.lower(): c for c in table.columns}
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
        typed = [known.get(n.lower(), Column(n, "VARCHAR")) for n in layout]
        dialect = own.get(relative_to_location(members[0], table.location), table.dialect)
        pairs = [(c.name, c.type) for c in typed]
        bundle = bundles.enter_context(bundled_csv(con, members, pairs, dialect))
        if bundle.sql:
            reads.append(bundle.sql)
        if not bundle.rest:
            continue
        columns = ", ".join(f"{sql_literal(c.name)}: {sql_literal(c.type)}" for c in typed)
        files = "[" + ", ".join(sql_literal(u) for u in bundle.rest) + "]"
        reads.append(
            f"SELECT * FROM read_csv({files}, columns={{{columns}}}, "
            f"{options}, ignore_errors=true, "
            f"filename={sql_literal(FILE_COLUMN)})"
        )
    return reads


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
) -> str | None:
    result = compute_stats(con, table, added)
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
