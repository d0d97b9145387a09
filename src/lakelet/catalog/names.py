"""Table names: ``database.table``, lower-case identifiers, as in Glue and Iceberg."""

from __future__ import annotations

import re
from dataclasses import dataclass

from lakelet.errors import InvalidTableNameError

IDENTIFIER_RE = re.compile(r"^[a-z_][a-z0-9_]{0,127}$")


@dataclass(frozen=True, order=True)
class TableName:
    database: str
    name: str

    def __str__(self) -> str:
        return f"{self.database}.{self.name}"

    @classmethod
    def parse(cls, text: str) -> TableName:
        parts = text.strip().split(".")
        if len(parts) != 2:
            raise InvalidTableNameError(
                f"invalid table name {text!r}: expected DATABASE.TABLE, e.g. raw.sales"
            )
        return cls(check_identifier(parts[0], "database"), check_identifier(parts[1], "table"))


def check_identifier(text: str, what: str) -> str:
    if not IDENTIFIER_RE.match(text):
        raise InvalidTableNameError(
            f"invalid {what} name {text!r}: use lower-case letters, digits and '_', "
            "starting with a letter or '_'"
        )
    return text


def to_identifier(text: str) -> str:
    """Turn a folder or column name into a valid identifier (``Sales-2026`` → ``sales_2026``)."""
    cleaned = re.sub(r"[^a-z0-9_]+", "_", text.strip().lower()).strip("_")
    if not cleaned:
        cleaned = "unnamed"
    if cleaned[0].isdigit():
        cleaned = f"_{cleaned}"
    return cleaned[:128]
