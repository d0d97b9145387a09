"""A load request checked before any database is touched, for every backend.

Target names, modes and keys are the user's input: checking them here gives the same
clear error on every backend. Problems of single rows (a null key, a value too wide for
its column) are not request errors: ``validation`` rejects those rows one by one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lakelet.catalog.names import check_identifier
from lakelet.errors import InvalidTableNameError, LoadError
from lakelet.warehouse.base import LOAD_MODES, LoadMode

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass(frozen=True, order=True)
class Target:
    """A warehouse table: ``schema.table``, lower-case identifiers."""

    schema: str
    table: str

    def __str__(self) -> str:
        return f"{self.schema}.{self.table}"

    @classmethod
    def parse(cls, text: str) -> Target:
        parts = text.strip().split(".")
        if len(parts) != 2:
            raise InvalidTableNameError(
                f"invalid warehouse table {text!r}: expected SCHEMA.TABLE, e.g. analytics.sales"
            )
        return cls(check_identifier(parts[0], "schema"), check_identifier(parts[1], "table"))


@dataclass(frozen=True)
class LoadRequest:
    target: Target
    mode: LoadMode
    keys: tuple[str, ...]
    max_errors: int = 0
    dist_key: str | None = None
    sort_key: tuple[str, ...] = ()

    @classmethod
    def check(
        cls,
        data: pa.Table,
        target: str,
        mode: str,
        keys: Sequence[str],
        *,
        max_errors: int = 0,
        dist_key: str | None = None,
        sort_key: Sequence[str] = (),
    ) -> LoadRequest:
        """Validate a request; raise ``LoadError`` naming what is wrong and what to do."""
        request = cls.check_options(
            target, mode, keys, max_errors=max_errors, dist_key=dist_key, sort_key=sort_key
        )
        request._check_columns(data)
        request._check_keys(data)
        return request

    @classmethod
    def check_options(
        cls,
        target: str,
        mode: str,
        keys: Sequence[str],
        *,
        max_errors: int = 0,
        dist_key: str | None = None,
        sort_key: Sequence[str] = (),
    ) -> LoadRequest:
        """What can be checked without the data, so a bad request fails before reading it."""
        parsed = Target.parse(target)
        if isinstance(sort_key, str):
            sort_key = [sort_key]
        if max_errors < 0:
            raise LoadError(f"max errors must be 0 or more, not {max_errors}")
        if mode not in LOAD_MODES:
            raise LoadError(f"unknown load mode {mode!r}: use one of {', '.join(LOAD_MODES)}")
        if isinstance(keys, str):  # a lone "id" would otherwise be read as ("i", "d")
            keys = [keys]
        if mode == "merge" and not keys:
            raise LoadError(
                f"merge into {parsed} needs key columns (--key COL) that identify a row"
            )
        if len(set(keys)) != len(keys):
            raise LoadError(f"key columns repeat a name: {', '.join(keys)}")
        if len(set(sort_key)) != len(sort_key):
            raise LoadError(f"sort key columns repeat a name: {', '.join(sort_key)}")
        return cls(parsed, mode, tuple(keys), max_errors, dist_key or None, tuple(sort_key))

    def _check_columns(self, data: pa.Table) -> None:
        if data.num_columns == 0:
            raise LoadError(f"nothing to load into {self.target}: the data has no columns")
        seen: dict[str, str] = {}
        for name in data.column_names:
            if not name:
                raise LoadError(f"the data for {self.target} has a column without a name")
            if (other := seen.get(name.lower())) is not None:
                raise LoadError(
                    f"the data for {self.target} has columns {other!r} and {name!r}; SQL "
                    "column names ignore case, so rename one of them"
                )
            seen[name.lower()] = name

    def _check_keys(self, data: pa.Table) -> None:
        named = [("key", k) for k in self.keys] + [("sort key", k) for k in self.sort_key]
        if self.dist_key:
            named.append(("distribution key", self.dist_key))
        for kind, key in named:
            if key not in data.column_names:
                raise LoadError(
                    f"{kind} column {key!r} is not in the data loaded into {self.target}; "
                    f"columns: {', '.join(data.column_names)}"
                )

    def check_unique(self, data: pa.Table) -> None:
        """Refuse the load if two rows of ``data`` share a key: which one would win?"""
        if self.keys:
            _check_unique(data, self.keys, self.target)


def _check_unique(data: pa.Table, keys: tuple[str, ...], target: Target) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        counts = data.select(list(keys)).group_by(list(keys), use_threads=False)
        counted = counts.aggregate([([], "count_all")])
    except (pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        types = ", ".join(f"{k} {data.schema.field(k).type}" for k in keys)
        raise LoadError(f"key columns ({types}) cannot identify rows: {exc}") from exc
    repeated = counted.filter(pc.greater(counted.column("count_all"), 1))
    if repeated.num_rows:
        example = ", ".join(f"{k}={repeated.column(k)[0].as_py()!r}" for k in keys)
        raise LoadError(
            f"key ({', '.join(keys)}) is not unique in the data loaded into {target}: "
            f"{repeated.num_rows} key value(s) appear more than once, e.g. {example}; "
            "deduplicate the data or choose other key columns"
        )
