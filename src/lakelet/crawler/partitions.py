"""Partitions from folders: ``key=value/`` folders give typed, named partition columns;
any other folder level below a table's location gives ``partition_N`` (N its depth
below the location, from 0), as Glue names them.

A key is BIGINT when every value is an integer, DATE when every value is an ISO date
(``2026-11-27``), VARCHAR otherwise; missing values (``__HIVE_DEFAULT_PARTITION__``)
do not vote. Keys are listed in the order they first appear in the paths; a file
without a key reads NULL for it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date
from urllib.parse import unquote

from lakelet.catalog.raw import Column
from lakelet.catalog.rawscan import HIVE_NULL, partition_segment

INTEGER_RE = re.compile(r"^[+-]?[0-9]{1,18}$")
ISO_DATE_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def path_partitions(relative_key: str) -> list[tuple[str, str | None]]:
    """``date=2026-11-27/3/f.csv`` → ``[("date", "2026-11-27"), ("partition_1", "3")]``."""
    pairs: list[tuple[str, str | None]] = []
    for level, segment in enumerate(relative_key.split("/")[:-1]):
        pair = partition_segment(segment)
        if pair is not None:
            key, value = pair
            pairs.append((key, None if value == HIVE_NULL else value))
        else:
            pairs.append((f"partition_{level}", unquote(segment)))
    return pairs


def value_type(values: Iterable[str | None]) -> str:
    present = [v for v in values if v is not None]
    if not present:
        return "VARCHAR"
    if all(INTEGER_RE.match(v) for v in present):
        return "BIGINT"
    if all(ISO_DATE_RE.match(v) and _is_date(v) for v in present):
        return "DATE"
    return "VARCHAR"


def _is_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def partition_columns(relative_keys: Iterable[str]) -> list[Column]:
    """The typed partition keys of a set of files (paths relative to the table)."""
    values: dict[str, list[str | None]] = {}
    folders: dict[str, None] = {}  # distinct folders, in order: 10,000 files, 1,000 folders
    for relative in relative_keys:
        folders.setdefault(relative[: relative.rfind("/") + 1], None)
    for folder in folders:
        for key, value in path_partitions(folder):
            values.setdefault(key, []).append(value)
    return [Column(key, value_type(vs)) for key, vs in values.items()]
