"""What changed between two versions of a raw table, for reports and ``lakelet show``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from lakelet.catalog.raw import Column, RawTable


@dataclass(frozen=True)
class TypeChange:
    name: str
    old: str
    new: str


@dataclass(frozen=True)
class ColumnsDiff:
    added: list[Column] = field(default_factory=list)
    removed: list[Column] = field(default_factory=list)
    changed: list[TypeChange] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


@dataclass(frozen=True)
class TableDiff:
    """Columns and partition keys added, removed or retyped; other changed settings."""

    columns: ColumnsDiff = field(default_factory=ColumnsDiff)
    partition_keys: ColumnsDiff = field(default_factory=ColumnsDiff)
    settings: list[str] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return self.columns.is_empty and self.partition_keys.is_empty and not self.settings

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        """One line: ``+qty BIGINT; price DOUBLE→VARCHAR; partition +date DATE``."""
        parts = _summarise(self.columns, "")
        parts += _summarise(self.partition_keys, "partition ")
        parts += [f"{s} changed" for s in self.settings]
        return "; ".join(parts) or "no change"


def _summarise(diff: ColumnsDiff, label: str) -> list[str]:
    return (
        [f"{label}+{c.name} {c.type}" for c in diff.added]
        + [f"{label}-{c.name}" for c in diff.removed]
        + [f"{label}{c.name} {c.old}→{c.new}" for c in diff.changed]
    )


def diff_columns(old: list[Column], new: list[Column]) -> ColumnsDiff:
    before = {c.name: c for c in old}
    after = {c.name: c for c in new}
    return ColumnsDiff(
        added=[c for c in new if c.name not in before],
        removed=[c for c in old if c.name not in after],
        changed=[
            TypeChange(c.name, before[c.name].type, c.type)
            for c in new
            if c.name in before and before[c.name].type != c.type
        ],
    )


def diff_tables(old: RawTable | None, new: RawTable) -> TableDiff:
    """The change from ``old`` to ``new``; from nothing, everything is added."""
    if old is None:
        return TableDiff(diff_columns([], new.columns), diff_columns([], new.partition_keys))
    settings = [
        k for k in ("location", "format", "classification") if getattr(old, k) != getattr(new, k)
    ]
    keys = sorted(set(old.dialect) | set(new.dialect))
    settings += [f"dialect.{k}" for k in keys if old.dialect.get(k) != new.dialect.get(k)]
    if [c.name for c in old.columns] != [c.name for c in new.columns] and not (
        {c.name for c in old.columns} ^ {c.name for c in new.columns}
    ):
        settings.append("column order")
    return TableDiff(
        diff_columns(old.columns, new.columns),
        diff_columns(old.partition_keys, new.partition_keys),
        settings,
    )
