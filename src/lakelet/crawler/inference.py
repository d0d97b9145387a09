"""From a group of files of one format to a raw-table definition.

Every file of the group is inferred (demo sizes are small; each read is capped at ~20k
rows) and the results merged by column name with widened types. A file that cannot be
read at all is skipped with its reason; it never fails the crawl.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lakelet.catalog.raw import Column, RawTable
from lakelet.crawler.csv import HEAD_BYTES, infer_csv
from lakelet.crawler.files import DataFile, SkippedFile
from lakelet.crawler.grouping import TableGroup
from lakelet.crawler.jsonl import count_lines, infer_jsonl
from lakelet.crawler.parquet import infer_parquet
from lakelet.crawler.partitions import partition_columns
from lakelet.crawler.schema import Field, FileSchema, merge_fields
from lakelet.errors import CrawlError
from lakelet.storage.base import ObjectStore

FileDone = Callable[[DataFile], None]
# Dialect keys that may differ between a table's files: one value is kept (the reader
# handles either newline; a second date format is reported).
FORMAT_KEYS = ("newline", "dateformat", "timestampformat")


@dataclass(frozen=True)
class TableSource:
    """Where a table comes from: the crawl that finds it and the files' layout rules."""

    database: str
    crawler: str
    crawl_path: str
    exclude: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class InferredTable:
    table: RawTable
    files: int
    warnings: list[str]


@dataclass
class Inference:
    """The outcome for one group: the table (if any file was usable) and what was not."""

    table: InferredTable | None = None
    skipped: list[SkippedFile] = field(default_factory=list)


def infer_table(
    con: Any,
    store: ObjectStore,
    source: TableSource,
    fmt: str,
    group: TableGroup,
    done: FileDone | None = None,
) -> Inference:
    """Infer one table from its files; ``done`` is called once per file looked at."""
    result = Inference()
    usable = _infer_files(con, store, fmt, group.files, result.skipped, done)
    if not usable:
        return result

    warnings: list[str] = []
    dialect: dict[str, Any] = {"nested": group.nested}
    if source.exclude:
        dialect["exclude"] = list(source.exclude)
    fields = merge_fields(schema.fields for _, schema in usable)
    if fmt == "csv":
        dialect.update(_csv_dialect(group, usable, fields, warnings))
    columns = [Column(f.name, f.type or "VARCHAR") for f in fields]
    names = {c.name.lower() for c in columns}
    partitions = []
    for key in partition_columns(group.relative(file) for file, _ in usable):
        if key.name.lower() in names:
            warnings.append(
                f"partition key {key.name!r} is also a column of the files; the files' "
                "values are kept"
            )
        else:
            partitions.append(key)
    files = [file for file, _ in usable]
    table = RawTable(
        database=source.database,
        name=group.name,
        location=group.location,
        format=fmt,
        columns=columns,
        partition_keys=partitions,
        classification=fmt,
        dialect=dialect,
        properties={
            "files": len(files),
            "bytes": sum(f.size for f in files),
            "rows_estimate": sum(schema.rows for _, schema in usable),
            "crawl_path": source.crawl_path,
        },
        crawler=source.crawler,
    )
    result.table = InferredTable(table, len(files), warnings)
    return result


def _infer_files(
    con: Any,
    store: ObjectStore,
    fmt: str,
    files: list[DataFile],
    skipped: list[SkippedFile],
    done: FileDone | None,
) -> list[tuple[DataFile, FileSchema]]:
    """The files inference could read, with what it learnt; the others go to ``skipped``."""
    usable: list[tuple[DataFile, FileSchema]] = []
    if fmt == "json":
        usable = _json_files(con, files, skipped)
    for file in files:
        if fmt != "json":
            try:
                if fmt == "csv":
                    schema = infer_csv(con, file.url, _head(store, file), file.size)
                else:
                    schema = infer_parquet(con, file.url)
                usable.append((file, schema))
            except CrawlError as exc:
                skipped.append(SkippedFile(f"{file.bucket}/{file.key}", str(exc)))
        if done is not None:
            done(file)
    return usable


def _head(store: ObjectStore, file: DataFile) -> bytes:
    """The first bytes of a file's text (decompressed for ``.gz``, as DuckDB reads it)."""
    with store.open(file.bucket, file.key) as stream:
        if not file.key.lower().endswith(".gz"):
            return stream.read(HEAD_BYTES)
        try:
            with gzip.GzipFile(fileobj=stream) as text:
                return text.read(HEAD_BYTES)
        except (OSError, EOFError) as exc:
            raise CrawlError(f"not a readable gzip file: {exc}") from exc


def _json_files(
    con: Any, files: list[DataFile], skipped: list[SkippedFile]
) -> list[tuple[DataFile, FileSchema]]:
    """JSON files holding objects; the merged schema is attached to the first of them."""
    try:
        counts = count_lines(con, [f.url for f in files])
    except Exception:  # duckdb.Error: find the files DuckDB cannot read, one by one
        counts = {}
        for file in files:
            try:
                counts.update(count_lines(con, [file.url]))
            except Exception as exc:
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
                skipped.append(SkippedFile(f"{file.bucket}/{file.key}", reason))
    usable = []
    for file in files:
        if file.url not in counts:
            continue
        lines, objects = counts[file.url]
        if objects == 0:
            reason = "no JSON object on its first lines (expected JSON lines: one per line)"
            skipped.append(SkippedFile(f"{file.bucket}/{file.key}", reason))
        else:
            usable.append((file, lines))
    if not usable:
        return []
    schema = infer_jsonl(con, [f.url for f, _ in usable])
    if not schema.fields:
        return []
    first, *rest = usable
    merged = [(first[0], FileSchema(schema.fields, first[1]))]
    return merged + [(f, FileSchema([], lines)) for f, lines in rest]


def _csv_dialect(
    group: TableGroup,
    usable: list[tuple[DataFile, FileSchema]],
    fields: list[Field],
    warnings: list[str],
) -> dict[str, Any]:
    """The dialect most files share, and the files whose column order is their own."""
    cores = [
        json.dumps({k: v for k, v in s.dialect.items() if k not in FORMAT_KEYS}, sort_keys=True)
        for _, s in usable
    ]
    common = Counter(cores).most_common(1)[0][0]
    dialect: dict[str, Any] = json.loads(common)
    for (file, _), core in zip(usable, cores, strict=True):
        if core != common:
            warnings.append(
                f"{file.bucket}/{file.key}: its CSV dialect differs from the table's "
                f"({core} vs {common}); its rows may be rejected when read"
            )
    for key in FORMAT_KEYS:
        values = sorted({str(s.dialect[key]) for _, s in usable if key in s.dialect})
        if values:
            dialect[key] = values[0]
        if len(values) > 1 and key != "newline":
            warnings.append(f"files use several {key}s ({', '.join(values)}); {values[0]} is used")

    order = [f.name.lower() for f in fields]
    layouts: dict[tuple[str, ...], list[str]] = {}
    for file, schema in usable:
        names = tuple(f.name for f in schema.fields)
        if [n.lower() for n in names] != order:
            layouts.setdefault(names, []).append(group.relative(file))
    if layouts:
        dialect["layouts"] = [
            {"columns": list(names), "files": members} for names, members in layouts.items()
        ]
    return dialect
