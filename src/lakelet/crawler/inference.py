"""From files to schemas, and from a group of files of one format to a raw-table definition.

Per-file inference is what a crawl pays for, so it is spent where it tells something:

* CSV files are grouped by header signature (:mod:`lakelet.crawler.probe`). Per
  signature a sample of files (``sample_files``, spread over the group; or a file an
  earlier crawl already inferred) is sniffed with :func:`~lakelet.crawler.csv.infer_csv`;
  every other file of the group is read once, all together, as text, checking that each
  value fits the sampled types and counting rows. A file whose values do not fit is
  inferred on its own, so sampling never narrows a type.
* JSON lines and Parquet files are inferred one by one (Parquet reads only the footer).

A file that cannot be read is skipped with its reason; it never fails the crawl. The
table is then the merge of its files' schemas by column name, with widened types.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lakelet.catalog.raw import Column, RawTable
from lakelet.catalog.rawscan import csv_options, sql_ident, sql_literal, suffix_of
from lakelet.catalog.rawscan.staging import compression_of, decompress_to
from lakelet.crawler.bundle import FILE_COLUMN, bundled_csv
from lakelet.crawler.classify import Classification
from lakelet.crawler.csv import infer_csv
from lakelet.crawler.files import DataFile, SkippedFile
from lakelet.crawler.formats import binary_schema, log_schema
from lakelet.crawler.grouping import TableGroup
from lakelet.crawler.jsonl import count_lines, infer_jsonl, infer_jsonl_each
from lakelet.crawler.parquet import infer_parquet
from lakelet.crawler.partitions import partition_columns
from lakelet.crawler.probe import Probe
from lakelet.crawler.schema import Field, FileSchema, merge_fields
from lakelet.errors import CrawlError
from lakelet.storage.base import ObjectStore

# Dialect keys that may differ between a table's files: one value is kept (the reader
# handles either newline; a second date format is reported).
FORMAT_KEYS = ("newline", "dateformat", "timestampformat")
PER_FILE_KEYS = (*FORMAT_KEYS, "types")  # "types" is merged column by column
READ_KEYS = (
    *("delimiter", "quote", "escape", "encoding", "comment", "header", "skip", "header_rows"),
)
"""Dialect keys that change how a file reads: a file differing in them gets its own."""
DEFAULT_SAMPLE_FILES = 3
JSON_BATCH = 500
"""Small JSON-lines files inferred per query (a query costs ~10 ms; a file ~0.5 ms)."""
BATCH_BYTES = 1 << 20
"""Larger files are inferred on their own."""
INTEGER_TYPES = frozenset({"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT"})

FileOutcome = FileSchema | SkippedFile
"""What inference made of one file: its schema, or why it was skipped."""


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


# --- per file -------------------------------------------------------------------------


def infer_files(
    con: Any,
    files: list[DataFile],
    probes: Mapping[str, Probe],
    *,
    sample_files: int | None = None,
    known: Mapping[str, FileSchema] | None = None,
    store: ObjectStore | None = None,
    classes: Mapping[str, Classification] | None = None,
) -> dict[str, FileOutcome]:
    """Schemas of ``files`` (by key); ``known`` maps CSV header signatures to a schema
    an earlier crawl inferred, which then stands in for the sample."""
    outcomes: dict[str, FileOutcome] = {}
    by_signature: dict[str, list[DataFile]] = {}
    small_json: list[DataFile] = []
    for file in files:
        probe = probes[file.key]
        if probe.problem is not None:
            outcomes[file.key] = SkippedFile(file.location, probe.problem)
        elif file.format == "csv" and probe.signature is not None:
            by_signature.setdefault(probe.signature, []).append(file)
        elif (
            file.format == "json" and compression_of(file.url) is None and file.size <= BATCH_BYTES
        ):
            small_json.append(file)
        elif file.format == "json":
            outcomes[file.key] = _json(con, file, store)
        elif file.format in ("avro", "orc"):
            outcomes[file.key] = binary_schema(con, file, probe, store)
        elif file.format == "log":
            outcomes[file.key] = log_schema(file, probe, (classes or {})[file.key])
        else:
            outcomes[file.key] = _parquet(con, file)
    for start in range(0, len(small_json), JSON_BATCH):
        outcomes.update(_json_batch(con, small_json[start : start + JSON_BATCH], store))
    sample = max(1, sample_files or DEFAULT_SAMPLE_FILES)
    for signature, group in by_signature.items():
        reference = (known or {}).get(signature)
        hints = _csv_hints((classes or {}).get(group[0].key))
        outcomes.update(_csv_group(con, group, probes, sample, reference, hints))
    return outcomes


def _csv_group(
    con: Any,
    files: list[DataFile],
    probes: Mapping[str, Probe],
    sample: int,
    reference: FileSchema | None,
    hints: Mapping[str, Any] | None = None,
) -> dict[str, FileOutcome]:
    """Sniff a spread sample of one signature's files, verify the rest in one read."""
    outcomes: dict[str, FileOutcome] = {}
    sampled: list[FileSchema] = []
    rest = list(files)
    if reference is None:
        for file in _spread(files, sample):
            outcome = _csv(con, file, probes[file.key], hints)
            outcomes[file.key] = outcome
            if isinstance(outcome, FileSchema):
                sampled.append(outcome)
        rest = [f for f in files if f.key not in outcomes]
    else:
        sampled.append(reference)
    while rest and not sampled:  # every sampled file failed: try the next one
        file, *rest = rest
        outcome = _csv(con, file, probes[file.key], hints)
        outcomes[file.key] = outcome
        if isinstance(outcome, FileSchema):
            sampled.append(outcome)
    if not rest:
        return outcomes
    model = FileSchema(merge_fields(s.fields for s in sampled), 0, sampled[0].dialect)
    checked = _verify(con, rest, model)
    for file in rest:
        rows = checked.get(file.url)
        if rows is None:  # values that do not fit, or the batch could not be read
            outcomes[file.key] = _csv(con, file, probes[file.key], hints)
        else:
            outcomes[file.key] = FileSchema(model.fields, rows, model.dialect)
    return outcomes


def _spread(files: list[DataFile], count: int) -> list[DataFile]:
    """``count`` files spread evenly over the list (first and last included)."""
    if len(files) <= count:
        return list(files)
    if count == 1:
        return [files[0]]
    step = (len(files) - 1) / (count - 1)
    return [files[round(i * step)] for i in range(count)]


def _verify(con: Any, files: list[DataFile], model: FileSchema) -> dict[str, int]:
    """Rows per file (by URL) of the files whose every value fits ``model``'s types."""
    names = [f.name for f in model.fields]
    misfits = [
        f"count(*) FILTER (WHERE {sql_ident(f.name)} IS NOT NULL AND NOT ({check}))"
        for f in model.fields
        if (check := fits_sql(sql_ident(f.name), f.type, model.dialect)) is not None
    ]
    bad = " + ".join(misfits) if misfits else "0"
    urls = [f.url for f in files]
    cursor = con.cursor()  # its own cursor: an earlier result may still be open on ``con``
    try:
        with bundled_csv(cursor, urls, [(n, "VARCHAR") for n in names], model.dialect) as bundle:
            reads = [bundle.sql] if bundle.sql else []
            if bundle.rest:
                columns = ", ".join(f"{sql_literal(n)}: 'VARCHAR'" for n in names)
                listed = "[" + ", ".join(sql_literal(u) for u in bundle.rest) + "]"
                reads.append(
                    f"SELECT * FROM read_csv({listed}, columns={{{columns}}}, "
                    f"{csv_options(model.dialect)}, ignore_errors=true, "
                    f"filename={sql_literal(FILE_COLUMN)})"
                )
            source = " UNION ALL BY NAME ".join(f"({read})" for read in reads)
            query = f"SELECT {sql_ident(FILE_COLUMN)}, count(*), {bad} FROM ({source}) GROUP BY ALL"
            rows = cursor.execute(query).fetchall()
    except Exception:  # duckdb.Error: a file vanished or is unreadable; infer one by one
        return {}
    finally:
        cursor.close()
    counts = {str(url): int(n) for url, n, failing in rows if int(failing) == 0}
    # A file with no data row has no group; it fits (a header-only file).
    seen = {str(url) for url, _, _ in rows}
    counts.update({f.url: 0 for f in files if f.url not in seen})
    return counts


def fits_sql(value: str, type_: str | None, dialect: Mapping[str, Any]) -> str | None:
    """SQL true when the text ``value`` reads as ``type_`` by the column's recorded
    decision (``None``: no check needed)."""
    if type_ in ("VARCHAR", "JSON"):
        return None
    if type_ is None:
        return "false"  # the sample saw no value in this column: infer the file
    from lakelet.catalog.rawscan import column_decision
    from lakelet.crawler.values import failure_sql

    name = value.strip('"').replace('""', '"')
    stored = dict(dialect.get("types", {})).get(name)
    decision = column_decision(Column(name, type_), dict(dialect), stored)
    return f"NOT {failure_sql(decision, value)}"


def _csv_hints(winner: Classification | None) -> dict[str, Any] | None:
    """A custom delimited classifier's settings, for CSV inference to honour."""
    if winner is None or not winner.classifier.startswith("custom:"):
        return None
    return {k: winner.options[k] for k in ("delimiter", "quote", "header") if k in winner.options}


def _csv(
    con: Any, file: DataFile, probe: Probe, hints: Mapping[str, Any] | None = None
) -> FileOutcome:
    try:
        return infer_csv(con, file.url, probe.head, file.size, hints)
    except CrawlError as exc:
        return SkippedFile(file.location, str(exc))


def _parquet(con: Any, file: DataFile) -> FileOutcome:
    try:
        return infer_parquet(con, file.url)
    except CrawlError as exc:
        return SkippedFile(file.location, str(exc))


def _json(con: Any, file: DataFile, store: ObjectStore | None = None) -> FileOutcome:
    """A JSON-lines file's schema; a compressed one is read from a decompressed copy."""
    if compression_of(file.url) is None:
        return _json_at(con, file, file.url)
    from lakelet.catalog.rawscan.binary import default_opener

    opener = default_opener(None if store is None else store.filesystem())
    with tempfile.TemporaryDirectory(prefix="lakelet-json-") as folder:
        copy = Path(folder) / "data.jsonl"
        try:
            decompress_to(file.url, copy, opener)
        except Exception as exc:  # corrupt stream: gzip, bz2 and zstd raise their own
            return SkippedFile(file.location, f"not a readable compressed file: {exc}")
        return _json_at(con, file, str(copy))


def _json_batch(
    con: Any, files: list[DataFile], store: ObjectStore | None
) -> dict[str, FileOutcome]:
    """Small JSON-lines files inferred together, each as if alone; if the batch cannot
    be read (a file is not UTF-8 or vanished), file by file, so each gets its reason."""
    try:
        found = infer_jsonl_each(con, [f.url for f in files])
    except Exception:  # duckdb.Error
        return {f.key: _json(con, f, store) for f in files}
    outcomes: dict[str, FileOutcome] = {}
    for file in files:
        outcome = found[file.url]
        outcomes[file.key] = (
            SkippedFile(file.location, outcome) if isinstance(outcome, str) else outcome
        )
    return outcomes


def _json_at(con: Any, file: DataFile, url: str) -> FileOutcome:
    try:
        counts = count_lines(con, [url])
        lines, objects = counts[url]
        if objects == 0:
            return SkippedFile(
                file.location,
                "no JSON object on its first lines (expected JSON lines: one per line)",
            )
        schema = infer_jsonl(con, [url])
    except Exception as exc:  # duckdb.Error: not UTF-8, unreadable, vanished
        text = str(exc).strip()
        return SkippedFile(file.location, text.splitlines()[0] if text else repr(exc))
    if not schema.fields:
        return SkippedFile(file.location, "no JSON object with keys")
    return FileSchema(schema.fields, lines)


# --- per table ------------------------------------------------------------------------


def build_table(
    source: TableSource,
    fmt: str,
    group: TableGroup,
    schemas: Mapping[str, FileSchema],
    *,
    columns: tuple[list[Column], list[Column]] | None = None,
) -> InferredTable | None:
    """The table of ``group``'s files that have a schema (``None`` if none has one).

    ``columns`` (columns, partition keys) overrides the inferred ones, as a schema
    policy decides them; CSV files are then laid out against those columns.
    """
    usable = [(f, schemas[f.key]) for f in group.files if f.key in schemas]
    if not usable:
        return None
    warnings: list[str] = []
    dialect: dict[str, Any] = {"nested": group.nested}
    if source.exclude:
        dialect["exclude"] = list(source.exclude)
    fields = merge_fields(_distinct_field_lists(s for _, s in usable))
    if columns is not None:
        fields = [Field(c.name, c.type) for c in columns[0]]
    if fmt == "csv":
        dialect.update(_csv_dialect(group, usable, fields, warnings))
    classification, class_props = _classification(fmt, [s.dialect for _, s in usable])
    by_content = sorted({suffix_of(f.key) for f, s in usable if "format" in s.dialect})
    if by_content:  # files without a telling suffix belong to the table (by these suffixes)
        dialect["suffixes"] = by_content
    if fmt == "log":
        dialect["regex"] = usable[0][1].dialect["regex"]
    table_columns = [Column(f.name, f.type or "VARCHAR") for f in fields]
    names = {c.name.lower() for c in table_columns}
    partitions = []
    for key in partition_columns(group.relative(file) for file, _ in usable):
        if key.name.lower() in names:
            warnings.append(
                f"partition key {key.name!r} is also a column of the files; the files' "
                "values are kept"
            )
        else:
            partitions.append(key)
    if columns is not None:
        partitions = columns[1]
    files = [file for file, _ in usable]
    table = RawTable(
        database=source.database,
        name=group.name,
        location=group.location,
        format=fmt,
        columns=table_columns,
        partition_keys=partitions,
        classification=classification,
        dialect=dialect,
        properties={
            **class_props,
            "files": len(files),
            "bytes": sum(f.size for f in files),
            "rows_estimate": sum(schema.rows for _, schema in usable),
            "crawl_path": source.crawl_path,
        },
        crawler=source.crawler,
    )
    return InferredTable(table, len(files), warnings)


def _classification(fmt: str, notes: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """The table's classification (its files' most common) and the least certainty."""
    names = Counter(str(n.get("classification", fmt)) for n in notes)
    classifiers = Counter(str(n["classifier"]) for n in notes if "classifier" in n)
    certainties = [float(n["certainty"]) for n in notes if "certainty" in n]
    props: dict[str, Any] = {}
    if classifiers:
        props["classifier"] = classifiers.most_common(1)[0][0]
    if certainties:
        props["certainty"] = min(certainties)
    return names.most_common(1)[0][0], props


def _distinct_field_lists(schemas: Any) -> list[list[Field]]:
    """Each distinct field list once, in first-seen order (10,000 files, a few schemas)."""
    seen: dict[int, list[Field]] = {}
    ordered: dict[tuple[tuple[str, str | None], ...], list[Field]] = {}
    for schema in schemas:
        fields = schema.fields
        if id(fields) in seen:
            continue
        seen[id(fields)] = fields
        ordered.setdefault(tuple((f.name, f.type) for f in fields), fields)
    return list(ordered.values())


def _csv_dialect(
    group: TableGroup,
    usable: list[tuple[DataFile, FileSchema]],
    fields: list[Field],
    warnings: list[str],
) -> dict[str, Any]:
    """The dialect most files share, and the files whose column order is their own."""
    texts: dict[int, str] = {}
    cores: list[str] = []
    for _, schema in usable:
        if id(schema.dialect) not in texts:
            core = {k: v for k, v in schema.dialect.items() if k not in PER_FILE_KEYS}
            texts[id(schema.dialect)] = json.dumps(core, sort_keys=True)
        cores.append(texts[id(schema.dialect)])
    common = Counter(cores).most_common(1)[0][0]
    dialect: dict[str, Any] = json.loads(common)
    own: dict[str, list[str]] = {}
    differing: dict[str, str] = {}
    for (file, _), text in zip(usable, cores, strict=True):
        if text != common:
            if text not in differing:
                differing[text] = json.dumps(_own_options(json.loads(text), dialect))
            if differing[text] != "{}":
                own.setdefault(differing[text], []).append(group.relative(file))
    if own:  # each such file is read with its own options (a title line, no header, …)
        dialect["file_options"] = [
            {"files": members, **json.loads(options)} for options, members in own.items()
        ]
    types: dict[str, dict[str, Any]] = {}
    for _, schema in usable:  # each column's recorded decision: the first file's, null
        for name, stored in schema.dialect.get("types", {}).items():  # tokens of all
            merged = types.setdefault(name, dict(stored))
            nulls = sorted({*merged.get("nulls", []), *stored.get("nulls", [])})
            if nulls:
                merged["nulls"] = nulls
    if types:
        dialect["types"] = types
    for option in FORMAT_KEYS:
        values = sorted({str(s.dialect[option]) for _, s in usable if option in s.dialect})
        if values:
            dialect[option] = values[0]
        if len(values) > 1 and option != "newline":
            warnings.append(
                f"files use several {option}s ({', '.join(values)}); {values[0]} is used"
            )

    order = [f.name.lower() for f in fields]
    layouts: dict[tuple[str, ...], list[str]] = {}
    checked: dict[int, bool] = {}
    for file, schema in usable:
        key = id(schema.fields)
        if key not in checked:
            checked[key] = [f.name.lower() for f in schema.fields] == order
        if not checked[key]:
            names = tuple(f.name for f in schema.fields)
            layouts.setdefault(names, []).append(group.relative(file))
    if layouts:
        dialect["layouts"] = [
            {"columns": list(names), "files": members} for names, members in layouts.items()
        ]
    return dialect


def _own_options(core: dict[str, Any], common: dict[str, Any]) -> dict[str, Any]:
    """The read options where a file's dialect differs from the table's common one;
    ``None`` for an option the file does not set (its default applies)."""
    return {k: core.get(k) for k in READ_KEYS if core.get(k) != common.get(k)}
