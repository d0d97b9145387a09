"""The warehouse protocol: schema-on-write tables loaded from Arrow in one transaction.

Targets are ``schema.table``. ``replace`` swaps the table's rows (and type) for the
data's; ``append`` adds rows to a compatible table; ``merge`` upserts by key columns
(updates matching rows, inserts the rest). Every load is one transaction: on error the
target is left as it was.

Rows whose values the target cannot hold (a null key, a number too wide for its
``DECIMAL``, a string too long for its ``VARCHAR(n)``) are rejected one by one, like
Redshift's ``COPY``: up to ``max_errors`` of them are left out and the rest load; more
fail the whole load. Either way the rejected rows are recorded in the warehouse table
``lakelet.load_errors`` (``LOAD_ERRORS_TABLE``), unless the load is a dry run, which
checks everything and changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    import pyarrow as pa

LoadMode = Literal["replace", "append", "merge"]
LOAD_MODES: tuple[LoadMode, ...] = ("replace", "append", "merge")
LOAD_ERRORS_TABLE = "lakelet.load_errors"


@dataclass(frozen=True)
class RowError:
    """One value of one row that the target could not hold (a row of ``load_errors``)."""

    line: int  # 1-based row number in the source
    column: str
    value: str | None
    reason: str


@dataclass(frozen=True)
class LoadResult:
    target: str
    mode: LoadMode
    rows_loaded: int
    rows_inserted: int
    rows_updated: int
    rows_in_target: int
    created: bool
    rows_rejected: int = 0
    dry_run: bool = False
    load_id: str = ""
    errors: tuple[RowError, ...] = ()


class Warehouse(Protocol):
    """A schema-on-write SQL database that Lakelet loads curated tables into."""

    def load(
        self,
        data: pa.Table,
        target: str,
        *,
        mode: LoadMode = "replace",
        keys: Sequence[str] = (),
        max_errors: int = 0,
        dry_run: bool = False,
        source: str = "",
        dist_key: str | None = None,
        sort_key: Sequence[str] = (),
    ) -> LoadResult:
        """Load ``data`` into ``target``; see the module docstring for the promises.

        ``source`` names where the rows come from (a file or a table) in
        ``load_errors``. ``dist_key``/``sort_key`` shape a table the load creates on
        Redshift (``DISTKEY``/``SORTKEY``); other backends check and ignore them.
        """

    def tables(self) -> list[str]:
        """Every ``schema.table`` in the warehouse."""

    def has_table(self, target: str) -> bool: ...

    def read_arrow(self, target: str) -> pa.Table: ...

    def register(self, con: Any, target: str, as_name: str) -> None:
        """Make ``target`` readable as the view ``as_name`` in a DuckDB connection.

        ``as_name`` is dotted and unquoted (``analytics.t`` or ``warehouse.analytics.t``);
        its schema must already exist in ``con``.
        """
