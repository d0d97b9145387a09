"""Whether new files leave a table's definition as it is, decided without its other files.

An incremental crawl that only found new files would, on the full path, regroup and
re-merge every file of the lake to learn that the tables did not change. When a table's
definition is exactly what inference made of its files, a new file whose columns,
dialect, column decisions, classification and partition values all match that
definition cannot change it: merging by name and widening types is idempotent, the
file's dialect joins the most common one, and its partition values fit the keys' types.
These checks are that argument, one file at a time; anything they cannot vouch for sends
the crawl down the full path.
"""

from __future__ import annotations

import json
from typing import Any

from lakelet.catalog.raw import RawTable
from lakelet.catalog.rawscan import partition_segment
from lakelet.crawler.inference import FORMAT_KEYS, PER_FILE_KEYS
from lakelet.crawler.partitions import INTEGER_RE, path_partitions, value_type
from lakelet.crawler.schema import FileSchema

TABLE_DIALECT_KEYS = frozenset(
    {"nested", "exclude", "types", "layouts", "suffixes", "regex", *FORMAT_KEYS}
)
"""Keys a CSV table's dialect gets beside its files' common dialect (see ``build_table``)."""


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
