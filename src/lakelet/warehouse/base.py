"""The warehouse protocol: schema-on-write tables loaded from Arrow in one transaction.

Targets are ``schema.table``. ``replace`` swaps the table's rows (and type) for the
data's; ``append`` adds rows to a compatible table; ``merge`` upserts by key columns
(updates matching rows, inserts the rest). Every load is one transaction: on error the
target is left as it was.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    import pyarrow as pa

LoadMode = Literal["replace", "append", "merge"]
LOAD_MODES: tuple[LoadMode, ...] = ("replace", "append", "merge")


@dataclass(frozen=True)
class LoadResult:
    target: str
    mode: LoadMode
    rows_loaded: int
    rows_inserted: int
    rows_updated: int
    rows_in_target: int
    created: bool


class Warehouse(Protocol):
    """A schema-on-write SQL database that Lakelet loads curated tables into."""

    def load(
        self, data: pa.Table, target: str, *, mode: LoadMode = "replace", keys: Sequence[str] = ()
    ) -> LoadResult: ...

    def tables(self) -> list[str]:
        """Every ``schema.table`` in the warehouse."""

    def has_table(self, target: str) -> bool: ...

    def read_arrow(self, target: str) -> pa.Table: ...

    def register(self, con: Any, target: str, as_name: str) -> None:
        """Make ``target`` readable as the view ``as_name`` in a DuckDB connection.

        ``as_name`` is dotted and unquoted (``analytics.t`` or ``warehouse.analytics.t``);
        its schema must already exist in ``con``.
        """
