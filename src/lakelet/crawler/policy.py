"""Schema evolution under a crawler's policy: what a changed table becomes.

``on_change``:

* ``update`` — the table takes the crawl's definition, but a column is never dropped
  and a type never narrowed: columns only the old version has are kept (they read
  NULL), new columns are appended, and a type that changed widens along the explicit
  ladder of :data:`LADDER` (int → bigint → decimal → double → string); DATE with
  TIMESTAMP is TIMESTAMP; any other pair becomes VARCHAR, which reads every value.
* ``log`` — the change is reported, the table keeps its current version.
* ``fail`` — a crawl that would change any existing table stops before registering
  anything, naming each table and its diff.

New tables are created under every policy: there is nothing to protect yet.
"""

from __future__ import annotations

import re
from typing import Literal

from lakelet.catalog.raw import Column, RawTable
from lakelet.errors import UserError

ChangePolicy = Literal["update", "log", "fail"]
DeletePolicy = Literal["deprecate", "delete", "log"]

# The widening ladder: a pair of types on it widens to the higher rung.
LADDER: dict[str, int] = {
    "TINYINT": 0,
    "UTINYINT": 0,
    "SMALLINT": 0,
    "USMALLINT": 0,
    "INTEGER": 0,
    "UINTEGER": 1,
    "BIGINT": 1,
    "UBIGINT": 2,
    "HUGEINT": 2,
    "DECIMAL": 2,
    "FLOAT": 3,
    "REAL": 3,
    "DOUBLE": 3,
    "VARCHAR": 4,
}
RUNG_TYPE = {0: "INTEGER", 1: "BIGINT", 3: "DOUBLE", 4: "VARCHAR"}
DECIMAL_RE = re.compile(r"^DECIMAL\((\d+),\s*(\d+)\)$")
MAX_DECIMAL_PRECISION = 38
BIGINT_DIGITS = 19


class SchemaChangeRefused(UserError):
    """A crawler with ``on_change = "fail"`` found a table whose schema changed."""


def _rung(type_: str) -> int | None:
    if DECIMAL_RE.match(type_):
        return LADDER["DECIMAL"]
    return LADDER.get(type_)


def widen_type(old: str, new: str) -> str:
    """The type holding both ``old`` and ``new`` values, by the ladder; never narrower
    than ``old``."""
    if old == new:
        return old
    if {old, new} == {"DATE", "TIMESTAMP"}:
        return "TIMESTAMP"
    rung_old, rung_new = _rung(old), _rung(new)
    if rung_old is None or rung_new is None:
        return "VARCHAR"
    top = max(rung_old, rung_new)
    if top == LADDER["DECIMAL"]:
        return _widen_decimal(old, new)
    if rung_old == rung_new:
        return RUNG_TYPE[top]
    return old if top == rung_old else new


def _widen_decimal(a: str, b: str) -> str:
    """Two decimals (or a decimal and an integer): enough digits on both sides."""
    digits, scale = 0, 0
    for type_ in (a, b):
        match = DECIMAL_RE.match(type_)
        if match:
            precision, s = int(match.group(1)), int(match.group(2))
            digits, scale = max(digits, precision - s), max(scale, s)
        elif type_ in ("HUGEINT", "UBIGINT"):
            return "DOUBLE"
        else:
            digits = max(digits, BIGINT_DIGITS)
    if digits + scale > MAX_DECIMAL_PRECISION:
        return "DOUBLE"
    return f"DECIMAL({digits + scale},{scale})"


def evolve_columns(old: list[Column], new: list[Column]) -> list[Column]:
    """``update``: old columns first (widened), then the new ones; nothing dropped."""
    found = {c.name.lower(): c for c in new}
    kept = [
        Column(c.name, widen_type(c.type, found[c.name.lower()].type), c.nullable)
        if c.name.lower() in found
        else c
        for c in old
    ]
    known = {c.name.lower() for c in old}
    return kept + [c for c in new if c.name.lower() not in known]


def evolve(current: RawTable, inferred: RawTable) -> tuple[list[Column], list[Column]]:
    """The columns and partition keys an ``update`` gives the table."""
    return (
        evolve_columns(current.columns, inferred.columns),
        evolve_columns(current.partition_keys, inferred.partition_keys),
    )
