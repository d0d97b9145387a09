"""Inferred schemas: fields by name, how types widen, and the majority rule.

Types are DuckDB SQL types, the engine that reads the files. A field whose type is
``None`` had no values in the sample (a header-only file, an always-empty column): it
takes its type from the other files and becomes VARCHAR only if none has values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

# Rank of the smallest signed integer type holding every value of the type.
INTEGER_RANK = {
    "TINYINT": 1,
    "UTINYINT": 2,
    "SMALLINT": 2,
    "USMALLINT": 3,
    "INTEGER": 3,
    "UINTEGER": 4,
    "BIGINT": 4,
    "UBIGINT": 5,
    "HUGEINT": 5,
}
SIGNED_BY_RANK = {1: "TINYINT", 2: "SMALLINT", 3: "INTEGER", 4: "BIGINT", 5: "HUGEINT"}
FLOAT_TYPES = frozenset({"FLOAT", "REAL", "DOUBLE"})
DECIMAL_RE = re.compile(r"^DECIMAL\(\d+,\s*\d+\)$")

# Majority rule: a column the sampler would type VARCHAR because of a few malformed
# values keeps the type that at most 1 % of its non-null values fail (one stray value
# is tolerated in a small sample, provided 90 % still cast). The failing rows are then
# rejected, with their line and reason, when the table is read.
MAJORITY_SHARE = 0.01
MAJORITY_FLOOR = 0.9


@dataclass(frozen=True)
class Field:
    """A column found in a file; ``type`` is ``None`` when no value was seen."""

    name: str
    type: str | None


@dataclass(frozen=True)
class FileSchema:
    """What inference learnt from one file (or, for JSON lines, one table's files)."""

    fields: list[Field]
    rows: int
    dialect: dict[str, Any] = field(default_factory=dict)


def _is_numeric(t: str) -> bool:
    return t in INTEGER_RANK or t in FLOAT_TYPES or bool(DECIMAL_RE.match(t))


def widen(a: str | None, b: str | None) -> str | None:
    """The narrowest type holding values of both: ints widen to the larger int, mixed
    numbers to DOUBLE, DATE with TIMESTAMP to TIMESTAMP, anything else to VARCHAR."""
    if a is None or a == b:
        return b
    if b is None:
        return a
    if a in INTEGER_RANK and b in INTEGER_RANK:
        return SIGNED_BY_RANK[max(INTEGER_RANK[a], INTEGER_RANK[b])]
    if _is_numeric(a) and _is_numeric(b):
        return "DOUBLE"
    if {a, b} == {"DATE", "TIMESTAMP"}:
        return "TIMESTAMP"
    return "VARCHAR"


def merge_fields(schemas: Iterable[list[Field]]) -> list[Field]:
    """Union of fields by name (case-insensitive, first spelling and order win)."""
    merged: dict[str, Field] = {}
    for fields in schemas:
        for f in fields:
            key = f.name.lower()
            current = merged.get(key)
            merged[key] = f if current is None else Field(current.name, widen(current.type, f.type))
    return list(merged.values())


def majority_type(nonnull: int, castable: dict[str, int]) -> str | None:
    """The first candidate type (in ``castable``'s order) the majority rule accepts."""
    if nonnull == 0:
        return None
    allowed = max(1, int(nonnull * MAJORITY_SHARE))
    for type_, ok in castable.items():
        if nonnull - ok <= allowed and ok >= nonnull * MAJORITY_FLOOR:
            return type_
    return None


def candidate_checks(
    value: str, *, numbers: bool = True, dateformat: str | None = None
) -> dict[str, str]:
    """SQL conditions, by candidate type, that a text ``value`` fits the type.

    Integers must look like integers (DuckDB would round ``1.5``); booleans must not be
    digits; dates use the detected format, ISO otherwise.
    """
    checks: dict[str, str] = {}
    if numbers:
        checks["BIGINT"] = (
            f"regexp_full_match(trim({value}), '[+-]?[0-9]+') "
            f"AND TRY_CAST({value} AS BIGINT) IS NOT NULL"
        )
        checks["DOUBLE"] = f"TRY_CAST({value} AS DOUBLE) IS NOT NULL"
    fmt = (dateformat or "%Y-%m-%d").replace("'", "''")
    checks["DATE"] = f"try_strptime(trim({value}), '{fmt}') IS NOT NULL"
    checks["TIMESTAMP"] = f"TRY_CAST({value} AS TIMESTAMP) IS NOT NULL"
    if numbers:
        checks["BOOLEAN"] = (
            f"NOT regexp_full_match(trim({value}), '[0-9.+-]+') "
            f"AND TRY_CAST({value} AS BOOLEAN) IS NOT NULL"
        )
    return checks
