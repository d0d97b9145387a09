"""Rows a target cannot hold: rejected one by one, recorded, counted against max errors.

Runs on every backend of the behaviour suite (``warehouse`` fixture).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from lakelet.errors import LoadError
from lakelet.warehouse import Warehouse
from lakelet.warehouse.base import LOAD_ERRORS_TABLE

TARGET = "analytics.sales"
AMOUNTS = pa.schema([("id", pa.int64()), ("amount", pa.decimal128(10, 2))])
WIDE = pa.schema([("id", pa.int64()), ("amount", pa.decimal128(14, 3))])


def load_errors(warehouse: Warehouse) -> list[dict[str, Any]]:
    if not warehouse.has_table(LOAD_ERRORS_TABLE):
        return []
    rows = warehouse.read_arrow(LOAD_ERRORS_TABLE).to_pylist()
    return sorted(rows, key=lambda r: (r["loaded_at"], r["line"], r["column_name"]))


def ids(warehouse: Warehouse, target: str = TARGET) -> list[int]:
    return sorted(r["id"] for r in warehouse.read_arrow(target).to_pylist())


def amounts(*rows: tuple[int | None, str], schema: pa.Schema = WIDE) -> pa.Table:
    return pa.Table.from_pylist([{"id": i, "amount": Decimal(a)} for i, a in rows], schema=schema)


@pytest.fixture
def existing(warehouse: Warehouse) -> Warehouse:
    """A warehouse holding ``analytics.sales (id BIGINT PRIMARY KEY, amount DECIMAL(10,2))``."""
    first = pa.Table.from_pylist([{"id": 1, "amount": Decimal("1.00")}], schema=AMOUNTS)
    warehouse.load(first, TARGET, keys=["id"])
    return warehouse


def test_rows_that_do_not_fit_are_recorded_and_nothing_is_loaded(existing: Warehouse) -> None:
    data = amounts(
        (2, "2.50"),
        (3, "123456789.00"),  # 9 digits before the point: DECIMAL(10,2) holds 8
        (None, "4.00"),  # a null key
        (5, "5.125"),  # a third decimal digit
    )
    with pytest.raises(LoadError, match=r"3 row\(s\).*nothing loaded") as caught:
        existing.load(data, TARGET, mode="merge", keys=["id"], source="curated.sales")
    assert caught.value.exit_code == 2
    assert "key column 'id' is null (row 3" in str(caught.value)
    assert ids(existing) == [1]
    errors = load_errors(existing)
    assert [(e["line"], e["column_name"], e["value"]) for e in errors] == [
        (2, "amount", "123456789.000"),
        (3, "id", None),
        (4, "amount", "5.125"),
    ]
    assert {(e["target"], e["source"]) for e in errors} == {(TARGET, "curated.sales")}
    assert len({e["load_id"] for e in errors}) == 1
    assert "null" in errors[1]["reason"]
    assert "10" in errors[0]["reason"] and "2" in errors[0]["reason"]


def test_max_errors_lets_the_good_rows_load(existing: Warehouse) -> None:
    data = amounts((2, "2.50"), (3, "123456789.00"), (4, "4.00"), (5, "5.125"))
    with pytest.raises(LoadError, match=r"max errors \(1\)"):
        existing.load(data, TARGET, mode="append", max_errors=1)
    assert ids(existing) == [1]
    assert len(load_errors(existing)) == 2

    result = existing.load(data, TARGET, mode="append", max_errors=2)
    assert (result.rows_loaded, result.rows_rejected, result.rows_in_target) == (2, 2, 3)
    assert [(e.line, e.column) for e in result.errors] == [(2, "amount"), (4, "amount")]
    assert ids(existing) == [1, 2, 4]
    recorded = [e for e in load_errors(existing) if e["load_id"] == result.load_id]
    assert [e["line"] for e in recorded] == [2, 4]
    got = {r["id"]: r["amount"] for r in existing.read_arrow(TARGET).to_pylist()}
    assert got[2] == Decimal("2.50")


def test_a_row_with_several_bad_values_counts_once(existing: Warehouse) -> None:
    data = amounts((None, "123456789.00"), (2, "1.00"))
    result = existing.load(data, TARGET, mode="merge", keys=["id"], max_errors=1)
    assert (result.rows_rejected, len(result.errors)) == (1, 2)
    assert {e.column for e in result.errors} == {"id", "amount"}


def test_a_null_key_of_a_new_table_is_a_load_error(warehouse: Warehouse) -> None:
    data = pa.table({"id": [1, None, 3], "name": ["a", "b", "c"]})
    result = warehouse.load(data, TARGET, keys=["id"], max_errors=5, source="file.csv")
    assert (result.created, result.rows_rejected, result.rows_in_target) == (True, 1, 2)
    assert [(e["line"], e["source"]) for e in load_errors(warehouse)] == [(2, "file.csv")]


def test_duplicate_keys_among_good_rows_still_fail_the_whole_load(warehouse: Warehouse) -> None:
    data = pa.table({"id": [1, None, 1]})
    with pytest.raises(LoadError, match="not unique"):
        warehouse.load(data, TARGET, keys=["id"], max_errors=5)
    assert not warehouse.has_table(TARGET)


def test_dry_run_changes_nothing(existing: Warehouse) -> None:
    before = existing.read_arrow(TARGET)
    data = amounts((1, "9.00"), (2, "2.50"), (3, "123456789.00"))
    result = existing.load(data, TARGET, mode="merge", keys=["id"], dry_run=True, max_errors=1)
    assert result.dry_run
    assert (result.rows_loaded, result.rows_inserted, result.rows_updated) == (2, 1, 1)
    assert (result.rows_rejected, result.rows_in_target) == (1, 2)
    assert [e.line for e in result.errors] == [3]
    assert existing.read_arrow(TARGET).equals(before)
    assert load_errors(existing) == []

    with pytest.raises(LoadError, match="nothing loaded"):
        existing.load(data, TARGET, mode="merge", keys=["id"], dry_run=True)
    assert load_errors(existing) == []
    new = existing.load(data, "analytics.fresh", dry_run=True)  # its own DECIMAL(14,3)
    assert (new.created, new.rows_rejected, new.rows_in_target) == (True, 0, 3)
    assert existing.tables() == [TARGET]


def test_dry_run_reports_database_errors_too(existing: Warehouse) -> None:
    # The key exists already: only the database can tell, so the dry run asks it.
    with pytest.raises(LoadError, match="id"):
        existing.load(amounts((1, "1.00")), TARGET, mode="append", dry_run=True)
    assert ids(existing) == [1]


def test_values_narrowing_into_a_smaller_integer_are_checked_row_by_row(
    warehouse: Warehouse,
) -> None:
    warehouse.load(pa.table({"id": pa.array([1], pa.int32())}), TARGET)
    data = pa.table({"id": pa.array([2, 2**40, 3], pa.int64())})
    result = warehouse.load(data, TARGET, mode="append", max_errors=1)
    assert ids(warehouse) == [1, 2, 3]
    assert [(e.line, e.value) for e in result.errors] == [(2, str(2**40))]
