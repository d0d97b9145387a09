"""Row-level checks before a load: what Redshift's ``COPY`` reports in ``STL_LOAD_ERRORS``.

Every backend describes its target table as ``TargetColumn`` records (the SQL type, the
Arrow type its values come back as, NOT NULL, a ``VARCHAR(n)`` limit). A column whose
incoming type cannot become the target's at all (text into numbers, doubles into
decimals) fails the whole load: that is a schema problem, not a bad row. Within one
family (integers and decimals, timestamps, strings, …) each value is checked by casting
the column to the target's Arrow type, which either succeeds at once (the common case:
one vectorised cast) or is bisected down to the rows that do not fit. Null keys and
nulls in NOT NULL columns are rejected the same way. Rejected rows are left out of the
load and recorded; more than ``max_errors`` of them fail the load with nothing written.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from lakelet.errors import LoadError
from lakelet.warehouse.base import LOAD_ERRORS_TABLE, RowError
from lakelet.warehouse.request import LoadRequest, Target

if TYPE_CHECKING:
    import pyarrow as pa

ERRORS_SHOWN = 5  # in the message of a failed load
VALUE_CHARS = 200  # a longer offending value is cut in load_errors
ERROR_COLUMNS = (
    "load_id",
    "loaded_at",
    "target",
    "source",
    "line",
    "column_name",
    "value",
    "reason",
)


@dataclass(frozen=True)
class TargetColumn:
    """A column of the target table, as its warehouse reports it."""

    name: str
    sql_type: str
    arrow_type: pa.DataType
    nullable: bool = True
    max_length: int | None = None


# Whether the warehouse stores ``incoming`` values in ``column`` unchanged, as they are.
Accepts = Callable[["pa.DataType", TargetColumn], bool]


@dataclass(frozen=True)
class CheckedData:
    """The rows that can be loaded, and why the others cannot."""

    data: pa.Table  # incoming names; family-checked columns cast to the target's type
    columns: dict[str, str]  # incoming → target column name
    errors: tuple[RowError, ...]
    rows_rejected: int


class RejectedRowsError(LoadError):
    """More rows were rejected than ``max_errors`` allows; nothing was loaded."""

    def __init__(self, target: Target, checked: CheckedData, max_errors: int) -> None:
        shown = "; ".join(describe(e) for e in checked.errors[:ERRORS_SHOWN])
        more = len(checked.errors) - ERRORS_SHOWN
        super().__init__(
            f"{checked.rows_rejected} row(s) of the data for {target} cannot be loaded, "
            f"more than max errors ({max_errors}), so nothing loaded: {shown}"
            + (f"; and {more} more" if more > 0 else "")
            + f". Every rejected row is in the warehouse table {LOAD_ERRORS_TABLE}; fix "
            "the data in the job that writes it, or allow them with --max-errors N"
        )
        self.errors = checked.errors
        self.rows_rejected = checked.rows_rejected


def describe(error: RowError) -> str:
    value = "null" if error.value is None else repr(error.value)
    return f"{error.reason} (row {error.line}, column {error.column!r}, value {value})"


def new_load_id() -> str:
    return uuid.uuid4().hex


def check_rows(
    data: pa.Table,
    request: LoadRequest,
    columns: Sequence[TargetColumn],
    accepts: Accepts,
) -> CheckedData:
    """Match ``data`` to the target's columns and reject the rows it cannot hold."""
    import pyarrow as pa
    import pyarrow.compute as pc

    matched = _match_columns(data, request.target, columns)
    failures: dict[tuple[int, str], str] = {}
    casts: dict[str, pa.DataType] = {}
    for name, column in matched.items():
        values = data.column(name).combine_chunks()
        if name in request.keys and values.null_count:
            for row in _true_indices(pc.is_null(values)):
                failures[(row, name)] = f"key column {name!r} is null"
        elif not column.nullable and values.null_count:
            for row in _true_indices(pc.is_null(values)):
                failures[(row, name)] = f"column {name!r} is NOT NULL in {request.target}"
        incoming = values.type
        if incoming.equals(column.arrow_type):
            pass
        elif _castable(incoming, column.arrow_type):
            casts[name] = column.arrow_type
            for row, why in _unfit(values, column.arrow_type).items():
                failures.setdefault((row, name), f"value does not fit {column.sql_type} ({why})")
        elif not accepts(incoming, column):
            raise LoadError(
                f"column {name!r} is {incoming} in the data but {column.sql_type} in "
                f"{request.target}, and converting it could change values; cast it in the "
                "job that writes the data, or load with --mode replace to change the "
                "column's type"
            )
        if column.max_length is not None and _is_text(incoming):
            lengths = pc.utf8_length(values.cast(pa.string()))
            for row in _true_indices(pc.greater(lengths, column.max_length)):
                failures.setdefault((row, name), f"value is longer than {column.sql_type} allows")
    rejected = sorted({row for row, _ in failures})
    order = list(matched)
    errors = tuple(
        RowError(row + 1, name, _value(data, name, row), reason)
        for (row, name), reason in sorted(
            failures.items(), key=lambda f: (f[0][0], order.index(f[0][1]))
        )
    )
    keep = data
    if rejected:
        rows = pa.array(range(data.num_rows), pa.int64())
        keep = data.filter(pc.invert(pc.is_in(rows, pa.array(rejected, pa.int64()))))
    for name, arrow_type in casts.items():
        index = keep.column_names.index(name)
        keep = keep.set_column(index, name, keep.column(name).cast(arrow_type))
    request.check_unique(keep)
    return CheckedData(
        data=keep,
        columns={name: column.name for name, column in matched.items()},
        errors=errors,
        rows_rejected=len(rejected),
    )


def errors_table(load_id: str, target: Target, source: str, errors: Sequence[RowError]) -> pa.Table:
    """The rows ``load_errors`` gets for one load."""
    import pyarrow as pa

    now = datetime.now(UTC)
    return pa.table(
        {
            "load_id": pa.array([load_id] * len(errors), pa.string()),
            "loaded_at": pa.array([now] * len(errors), pa.timestamp("us", tz="UTC")),
            "target": pa.array([str(target)] * len(errors), pa.string()),
            "source": pa.array([source] * len(errors), pa.string()),
            "line": pa.array([e.line for e in errors], pa.int64()),
            "column_name": pa.array([e.column for e in errors], pa.string()),
            "value": pa.array([e.value for e in errors], pa.string()),
            "reason": pa.array([e.reason for e in errors], pa.string()),
        }
    )


def arrow_widens(incoming: pa.DataType, target: pa.DataType) -> bool:
    """Conversions outside a family that never change a value (into floating point)."""
    import pyarrow as pa

    types = pa.types
    if types.is_float64(target):
        if types.is_floating(incoming):
            return not types.is_float16(incoming)
        return bool(types.is_integer(incoming) and incoming.bit_width <= 32)
    return False


# --- helpers ---------------------------------------------------------------------------


def _match_columns(
    data: pa.Table, target: Target, columns: Sequence[TargetColumn]
) -> dict[str, TargetColumn]:
    """Incoming name → target column; names match as SQL matches them (ignoring case)."""
    existing = {c.name.lower(): c for c in columns}
    matched: dict[str, TargetColumn] = {}
    for name in data.column_names:
        column = existing.get(name.lower())
        if column is None:
            known = ", ".join(c.name for c in columns)
            raise LoadError(
                f"column {name!r} is not in the warehouse table {target} (columns: {known}); "
                "load with --mode replace to recreate the table with the new columns"
            )
        matched[name] = column
    given = {name.lower() for name in data.column_names}
    for column in columns:
        if not column.nullable and column.name.lower() not in given:
            raise LoadError(
                f"column {column.name!r} of {target} is NOT NULL but the data has no such "
                "column; add it to the data or load with --mode replace"
            )
    return matched


def _family(dtype: pa.DataType) -> str | None:
    """Types whose values convert into each other when they fit (checked row by row)."""
    import pyarrow as pa

    types = pa.types
    if types.is_dictionary(dtype):
        return _family(dtype.value_type)
    if types.is_integer(dtype) or types.is_decimal(dtype):
        return "number"
    if types.is_timestamp(dtype):
        return "timestamp with zone" if dtype.tz else "timestamp"
    if types.is_date(dtype):
        return "date"
    if types.is_time(dtype):
        return "time"
    if _is_text(dtype):
        return "text"
    if (
        types.is_binary(dtype)
        or types.is_large_binary(dtype)
        or types.is_fixed_size_binary(dtype)
        or types.is_binary_view(dtype)
    ):
        return "binary"
    return None


def _is_text(dtype: pa.DataType) -> bool:
    import pyarrow as pa

    types = pa.types
    if types.is_dictionary(dtype):
        return _is_text(dtype.value_type)
    return bool(
        types.is_string(dtype) or types.is_large_string(dtype) or types.is_string_view(dtype)
    )


def _castable(incoming: pa.DataType, target: pa.DataType) -> bool:
    import pyarrow as pa

    family = _family(incoming)
    if family is None or family != _family(target):
        return False
    try:
        pa.array([], incoming).cast(target)
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError):
        return False
    return True


def _unfit(values: pa.Array, target: pa.DataType) -> dict[int, str]:
    """Row → why, for the values a safe cast refuses; bisects only where a cast fails."""
    import pyarrow as pa

    try:
        values.cast(target, safe=True)
    except pa.ArrowInvalid as exc:
        if len(values) == 1:
            return {0: str(exc).splitlines()[0]}
        half = len(values) // 2
        found = _unfit(values.slice(0, half), target)
        found.update({half + r: why for r, why in _unfit(values.slice(half), target).items()})
        return found
    return {}


def _true_indices(mask: pa.Array) -> list[int]:
    import pyarrow.compute as pc

    return [int(i) for i in pc.indices_nonzero(mask.fill_null(False)).to_pylist()]


def _value(data: pa.Table, column: str, row: int) -> str | None:
    import pyarrow as pa

    scalar = data.column(column)[row]
    try:
        value = scalar.as_py()
    except (OverflowError, ValueError):  # a date or time Python cannot represent
        raw = data.column(column).slice(row, 1).cast(pa.int64())[0].as_py()
        unit = getattr(scalar.type, "unit", "")
        value = f"{raw} {unit}".strip()
    if value is None:
        return None
    text = str(value)
    return text if len(text) <= VALUE_CHARS else text[: VALUE_CHARS - 1] + "…"
