"""The incremental fast path: new files in tables whose definitions they cannot change.

An incremental crawl that only found new files would, on the full path, regroup and
re-merge every file of the lake to learn that the tables did not change. When a table's
definition is exactly what inference made of its files, a new file whose columns,
dialect, column decisions, classification and partition values all match that
definition cannot change it: merging by name and widening types is idempotent, the
file's dialect joins the most common one, and its partition values fit the keys' types.
:func:`keeps_definition` is that argument, one file at a time; :func:`only_added` runs the
crawl on it, and anything the checks cannot vouch for sends the crawl down the full path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from lakelet.catalog.names import TableName
from lakelet.catalog.raw import ACTIVE, RawTable
from lakelet.catalog.rawscan import attach_store, partition_segment
from lakelet.crawler.classify import custom_classifiers
from lakelet.crawler.crawler import (
    Progress,
    _Crawl,
    _infer,
    _seconds,
)
from lakelet.crawler.diff import TableDiff
from lakelet.crawler.files import DataFile, Listing, SkippedFile
from lakelet.crawler.grouping import (
    group_by_folder,
    levels_below,
)
from lakelet.crawler.inference import FORMAT_KEYS, PER_FILE_KEYS
from lakelet.crawler.manifest import (
    CrawlerState,
    SeenFile,
)
from lakelet.crawler.partitions import INTEGER_RE, path_partitions, value_type
from lakelet.crawler.probe import classify_probed, probe_file
from lakelet.crawler.report import TableReport, table_report
from lakelet.crawler.sample import Sampling
from lakelet.crawler.schema import FileSchema
from lakelet.crawler.stats import merge_new_files, mergeable

TABLE_DIALECT_KEYS = frozenset(
    {"nested", "exclude", "types", "layouts", "file_options", "suffixes", "regex", *FORMAT_KEYS}
)
"""Keys a CSV table's dialect gets beside its files' common dialect (see ``build_table``)."""


@dataclass(frozen=True)
class Added:
    """A crawl that only added files to tables that keep their definitions."""

    summary: dict[str, Any]
    reports: list[TableReport]
    lines: list[str]
    """The new files' listing lines."""
    parts: int
    """How many parts the kept listing had."""


def only_added(
    crawl: _Crawl,
    listing: Listing,
    lines: list[str],
    state: CrawlerState,
    progress: Progress | None,
) -> Added | None:
    """The crawl when every change since the last one is a new file that leaves its table
    as it is: the new summary and the reports; ``None`` sends the crawl down the full
    path (nothing is written before it is sure)."""
    exact: list[dict[str, Any]] | None = state.summary.get("exact")
    kept = crawl.manifest.listing(crawl.name) if exact else None
    if exact is None or kept is None or kept[0] != state.listing:
        return None
    before = kept[1]
    fresh = [i for i, line in enumerate(lines) if line not in before]
    new = [listing.files[i] for i in fresh]
    if not new or len(lines) - len(new) != len(before):  # something changed or went
        return None
    registry = crawl.project.catalog.raw
    tables: list[RawTable] = []
    for entry in exact:
        current = registry.find(TableName(crawl.database, entry["name"]))
        if current is None or current.version != entry["version"] or current.status != ACTIVE:
            return None
        tables.append(current)
    homes = _homes(crawl, new, tables)
    if homes is None:
        return None
    import duckdb

    store = crawl.project.store
    probes = {f.key: probe_file(store, f) for f in new}
    custom = custom_classifiers(crawl.spec.classifiers, crawl.project.settings.classifiers)
    classes = classify_probed(new, probes, custom)
    if any(k not in classes or classes[k].format != "csv" for k in probes):
        return None
    references = crawl.manifest.reference_schemas(
        crawl.name, {p.signature for p in probes.values() if p.signature is not None}
    )
    if any(r is None for r in references.values()):  # the full path's pick is the last one's
        return None
    known = {sig: schema for sig, schema in references.items() if schema is not None}
    con = duckdb.connect()
    try:
        attach_store(con, store)
        outcomes = _infer(crawl, con, new, probes, classes, known)
        schemas: dict[str, FileSchema] = {}
        for file in new:
            table = tables[homes[file.key]]
            outcome = outcomes[file.key]
            relative = file.location[len(table.location) :]
            if not isinstance(outcome, FileSchema) or not keeps_definition(
                table, relative, outcome
            ):
                return None
            schemas[file.key] = outcome
        grown = _grown(exact, tables, new, homes, schemas)
        previous: dict[int, dict[str, Any]] = {}
        for index, (table, added) in grown.items() if not crawl.plan else ():
            stats = registry.stats(table.table_name)
            total = int(table.properties["files"])
            if stats is None or not mergeable(stats, table, len(added), total):
                return None  # the full path computes them again over every file
            previous[index] = stats
        reports: list[TableReport] = []
        for index, (entry, current) in enumerate(zip(exact, tables, strict=True)):
            warnings: list[str] = []
            table = current
            if index in grown:
                table, added = grown[index]
                if not crawl.plan:
                    files = int(table.properties["files"])
                    version = current.version
                    urls = [f.url for f in added]
                    warning = merge_new_files(
                        crawl.project.catalog.raw,
                        con,
                        table,
                        version,
                        previous[index],
                        urls,
                        files,
                        Sampling.of(crawl.spec),
                    )
                    warnings += [warning] if warning else []
            else:
                props = {**current.properties, "rows_estimate": entry["rows"]}
                table = replace(current, properties=props)
            report = table_report(table, "unchanged", current.version, TableDiff(), warnings)
            reports.append(
                replace(report, files=int(table.properties.get("files", entry["files"])))
            )
    finally:
        con.close()
    for key, reason in state.summary.get("skipped", []):
        crawl.skipped.append(SkippedFile(key, reason))
    if not crawl.plan:
        entries = [
            SeenFile(
                f.bucket,
                f.key,
                f.size,
                f.etag,
                _seconds(f.modified),
                probes[f.key].hash,
                probes[f.key].signature,
                tables[homes[f.key]].name,
                schemas[f.key],
            )
            for f in new
        ]
        crawl.manifest.update(crawl.name, entries)
    if progress is not None:
        for done, file in enumerate(new, 1):
            progress(done, len(new), file.location)
    counts = [
        {**entry, **_counts(grown[i][0])} if i in grown else entry for i, entry in enumerate(exact)
    ]
    tables_files = {**state.summary.get("tables", {})}
    for entry in counts:
        tables_files[entry["name"]] = entry["files"]
    summary = {**state.summary, "tables": tables_files, "exact": counts}
    return Added(summary, reports, [lines[i] for i in fresh], kept[2])


def _homes(crawl: _Crawl, files: list[DataFile], tables: list[RawTable]) -> dict[str, int] | None:
    """The table (its index) each new file joins, as the full path would group it;
    ``None`` when that is not sure (a new table, or grouping that could shift)."""
    spec = crawl.spec
    by_folder = spec.table_level is not None or spec.grouping == "folder"
    if not by_folder and len(tables) != 1:  # more tables: a new file could merge them
        return None
    levels = 1 if spec.table_level is None else levels_below(crawl.prefix, spec.table_level)
    homes: dict[str, int] = {}
    for file in files:
        found = [
            i
            for i, t in enumerate(tables)
            if t.format == "csv" == file.format and file.location.startswith(t.location)
        ]
        if len(found) != 1:
            return None
        table = tables[found[0]]
        if by_folder:
            (group,) = group_by_folder(crawl.bucket, crawl.prefix, [file], levels)
            if group.location != table.location or group.nested != table.dialect.get("nested"):
                return None
        elif not only_partitions_below(file.location[len(table.location) :]):
            return None
        homes[file.key] = found[0]
    return homes


def _grown(
    exact: list[dict[str, Any]],
    tables: list[RawTable],
    new: list[DataFile],
    homes: dict[str, int],
    schemas: dict[str, FileSchema],
) -> dict[int, tuple[RawTable, list[DataFile]]]:
    """Each table that gains files: with its counts grown, and the files it gains."""
    gained: dict[int, list[DataFile]] = {}
    for file in new:
        gained.setdefault(homes[file.key], []).append(file)
    grown = {}
    for index, added in gained.items():
        entry, table = exact[index], tables[index]
        properties = {
            **table.properties,
            "files": entry["files"] + len(added),
            "bytes": entry["bytes"] + sum(f.size for f in added),
            "rows_estimate": entry["rows"] + sum(schemas[f.key].rows for f in added),
        }
        grown[index] = (replace(table, properties=properties), added)
    return grown


def _counts(table: RawTable) -> dict[str, int]:
    props = table.properties
    return {"files": props["files"], "bytes": props["bytes"], "rows": props["rows_estimate"]}


def only_partitions_below(relative: str) -> bool:
    """True when every folder of ``relative`` (a key below a table) is ``key=value``."""
    return all(partition_segment(s) is not None for s in relative.split("/")[:-1])


def keeps_definition(table: RawTable, relative: str, schema: FileSchema) -> bool:
    """True when a CSV file at ``relative`` (below the table's location) with ``schema``
    joins ``table`` without changing its definition and without a warning."""
    return (
        table.format == "csv"
        and _same_columns(table, schema)
        and _same_dialect(table, schema)
        and _same_decisions(table, schema)
        and _fits_partitions(table, relative)
    )


def _same_columns(table: RawTable, schema: FileSchema) -> bool:
    """The file has the table's columns, spelt, typed and ordered alike (so it is in no
    ``layouts`` entry and merging it widens nothing)."""
    if any(f.type is None for f in schema.fields):
        return False
    return [(f.name, f.type) for f in schema.fields] == [(c.name, c.type) for c in table.columns]


def _same_dialect(table: RawTable, schema: FileSchema) -> bool:
    """The file's dialect is the table's common one (it then stays the most common), and
    its date formats and newline are the table's (no second value, no warning)."""
    core = {k: v for k, v in schema.dialect.items() if k not in PER_FILE_KEYS}
    if TABLE_DIALECT_KEYS & core.keys() or "format" in core:
        return False
    common = {k: v for k, v in table.dialect.items() if k not in TABLE_DIALECT_KEYS}
    if json.loads(json.dumps(core, sort_keys=True)) != common:
        return False
    return all(
        str(schema.dialect[option]) == table.dialect.get(option)
        for option in FORMAT_KEYS
        if option in schema.dialect
    )


def _same_decisions(table: RawTable, schema: FileSchema) -> bool:
    """Each column decision the file recorded is the table's, its null tokens among the
    table's (whichever file comes first, the merged decision is the same)."""
    recorded: dict[str, Any] = table.dialect.get("types", {})
    for name, stored in dict(schema.dialect.get("types", {})).items():
        merged = recorded.get(name)
        if merged is None:
            return False
        stored = json.loads(json.dumps(stored, sort_keys=True))
        if stored == merged:
            continue
        nulls = merged.get("nulls") or []
        rest = {k: v for k, v in stored.items() if k != "nulls"}
        if not nulls or rest != {k: v for k, v in merged.items() if k != "nulls"}:
            return False
        if not set(stored.get("nulls") or []) <= set(nulls):
            return False
    return True


def _fits_partitions(table: RawTable, relative: str) -> bool:
    """The file's folders give the table's keys, in order, with values of their types."""
    pairs = path_partitions(relative)
    if [k for k, _ in pairs] != [c.name for c in table.partition_keys]:
        return False
    return all(
        _fits(value, c.type) for (_, value), c in zip(pairs, table.partition_keys, strict=True)
    )


def _fits(value: str | None, type_: str) -> bool:
    if value is None:
        return True
    if type_ == "BIGINT":
        return INTEGER_RE.match(value) is not None
    if type_ == "DATE":
        return value_type([value]) == "DATE"
    # VARCHAR: kept by a value that is neither a number nor a date (an earlier key may
    # have had no value at all, so a number could narrow it).
    return type_ == "VARCHAR" and value_type([value]) == "VARCHAR"
