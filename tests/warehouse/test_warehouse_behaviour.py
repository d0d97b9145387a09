"""What every warehouse backend promises: typed tables, atomic loads, upserts by key."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from lakelet.errors import InvalidTableNameError, LoadError, TableNotFoundError
from lakelet.warehouse import Warehouse

ColumnTypes = Callable[[str], dict[str, str]]  # see conftest.column_types
TARGET = "analytics.sales"

SALES_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("machine", pa.string()),
        ("amount", pa.decimal128(10, 2)),
        ("day", pa.date32()),
        ("sold_at", pa.timestamp("us", tz="UTC")),
        ("logged_at", pa.timestamp("us")),
        ("paid", pa.bool_()),
        ("ratio", pa.float64()),
        ("tags", pa.list_(pa.string())),
        ("slot", pa.struct([("row", pa.int32()), ("label", pa.string())])),
    ]
)
# The same columns as each backend's information_schema reports them.
SALES_SQL_TYPES = {
    "duckdb": {
        "id": "BIGINT",
        "machine": "VARCHAR",
        "amount": "DECIMAL(10,2)",
        "day": "DATE",
        "sold_at": "TIMESTAMP WITH TIME ZONE",
        "logged_at": "TIMESTAMP",
        "paid": "BOOLEAN",
        "ratio": "DOUBLE",
        "tags": "VARCHAR[]",
        "slot": 'STRUCT("row" INTEGER, "label" VARCHAR)',
    },
    "postgres": {
        "id": "bigint",
        "machine": "text",
        "amount": "numeric(10,2)",
        "day": "date",
        "sold_at": "timestamp with time zone",
        "logged_at": "timestamp without time zone",
        "paid": "boolean",
        "ratio": "double precision",
        "tags": "jsonb",  # nested values are JSON; read_arrow gives back the Arrow type
        "slot": "jsonb",
    },
}


def sale(id: int, machine: str = "m1", amount: str = "1.50", **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": id,
        "machine": machine,
        "amount": Decimal(amount),
        "day": date(2026, 11, 27),
        "sold_at": datetime(2026, 11, 27, 9, 30, id % 60, tzinfo=UTC),
        "logged_at": datetime(2026, 11, 27, 10, 0, id % 60),
        "paid": id % 2 == 0,
        "ratio": id / 4,
        "tags": ["cola", "cold"] if id % 2 else [],
        "slot": {"row": id, "label": f"s{id}"},
    }
    row.update(extra)
    return row


def sales(*rows: dict[str, Any]) -> pa.Table:
    return pa.Table.from_pylist(list(rows), schema=SALES_SCHEMA)


def rows_of(warehouse: Warehouse, target: str = TARGET) -> list[dict[str, Any]]:
    return sorted(warehouse.read_arrow(target).to_pylist(), key=lambda r: r["id"])


# --- replace -------------------------------------------------------------------------


def test_replace_creates_a_typed_table(
    warehouse: Warehouse, column_types: ColumnTypes, backend: str
) -> None:
    data = sales(sale(1), sale(2), sale(3))
    result = warehouse.load(data, TARGET)
    assert result.created
    assert (result.mode, result.rows_loaded, result.rows_inserted) == ("replace", 3, 3)
    assert (result.rows_updated, result.rows_in_target) == (0, 3)
    assert column_types(TARGET) == SALES_SQL_TYPES[backend]
    assert rows_of(warehouse) == data.to_pylist()


def test_replace_again_swaps_rows_and_columns(
    warehouse: Warehouse, column_types: ColumnTypes
) -> None:
    warehouse.load(sales(sale(1), sale(2), sale(3)), TARGET)
    new = pa.table({"id": pa.array([7], pa.int32()), "note": ["fresh"]})
    result = warehouse.load(new, TARGET, mode="replace")
    assert not result.created
    assert (result.rows_inserted, result.rows_in_target) == (1, 1)
    assert list(column_types(TARGET)) == ["id", "note"]
    assert warehouse.read_arrow(TARGET).to_pylist() == [{"id": 7, "note": "fresh"}]


def test_replace_with_keys_twice_keeps_the_keys_unique(warehouse: Warehouse) -> None:
    warehouse.load(sales(sale(1), sale(2)), TARGET, keys=["id"])
    warehouse.load(sales(sale(1, machine="m9"), sale(2)), TARGET, keys=["id"])
    assert [r["machine"] for r in rows_of(warehouse)] == ["m9", "m1"]
    with pytest.raises(LoadError, match="id"):
        warehouse.load(sales(sale(2)), TARGET, mode="append")
    assert len(rows_of(warehouse)) == 2


def test_a_replace_that_fails_mid_load_leaves_the_old_table(
    warehouse: Warehouse, column_types: ColumnTypes
) -> None:
    old = sales(sale(1), sale(2))
    warehouse.load(old, TARGET)
    types_before = column_types(TARGET)
    # Valid request and types, but no warehouse stores a timestamp ~285,000 years ahead:
    # the failure happens while inserting, after the old table was dropped.
    far = pa.table({"id": [1], "at": pa.array([9 * 10**15], pa.timestamp("s"))})
    with pytest.raises(LoadError, match=TARGET):
        warehouse.load(far, TARGET, mode="replace")
    assert column_types(TARGET) == types_before
    assert rows_of(warehouse) == old.to_pylist()


def test_replace_of_no_rows_creates_an_empty_typed_table(
    warehouse: Warehouse, column_types: ColumnTypes, backend: str
) -> None:
    result = warehouse.load(sales(), TARGET)
    assert (result.created, result.rows_loaded, result.rows_in_target) == (True, 0, 0)
    assert column_types(TARGET) == SALES_SQL_TYPES[backend]


def test_a_column_without_a_type_is_refused(warehouse: Warehouse) -> None:
    data = pa.table({"id": [1, 2], "empty": pa.nulls(2)})
    with pytest.raises(LoadError, match="'empty'"):
        warehouse.load(data, TARGET)
    assert warehouse.tables() == []


def test_columns_differing_only_in_case_are_refused(warehouse: Warehouse) -> None:
    with pytest.raises(LoadError, match="'Id'"):
        warehouse.load(pa.table({"id": [1], "Id": [2]}), TARGET)


# --- append --------------------------------------------------------------------------


def test_append_adds_rows(warehouse: Warehouse) -> None:
    warehouse.load(sales(sale(1), sale(2)), TARGET)
    result = warehouse.load(sales(sale(3)), TARGET, mode="append")
    assert not result.created
    assert (result.rows_inserted, result.rows_updated, result.rows_in_target) == (1, 0, 3)
    assert rows_of(warehouse) == sales(sale(1), sale(2), sale(3)).to_pylist()


def test_append_creates_a_missing_table(
    warehouse: Warehouse, column_types: ColumnTypes, backend: str
) -> None:
    result = warehouse.load(sales(sale(1)), TARGET, mode="append")
    assert result.created and result.rows_in_target == 1
    assert column_types(TARGET) == SALES_SQL_TYPES[backend]


def test_append_fills_target_columns_missing_from_the_data_with_null(
    warehouse: Warehouse,
) -> None:
    warehouse.load(sales(sale(1)), TARGET)
    warehouse.load(pa.table({"id": [2], "machine": ["m2"]}), TARGET, mode="append")
    added = rows_of(warehouse)[1]
    assert added["id"] == 2 and added["machine"] == "m2"
    assert all(added[c] is None for c in SALES_SCHEMA.names if c not in ("id", "machine"))


def test_append_widens_compatible_types(warehouse: Warehouse) -> None:
    warehouse.load(sales(sale(1)), TARGET)
    narrower = pa.table(
        {
            "id": pa.array([2], pa.int32()),
            "amount": pa.array([Decimal("12.5")], pa.decimal128(5, 1)),
            "ratio": pa.array([0.5], pa.float32()),
            "logged_at": pa.array([datetime(2026, 1, 2, 3, 4, 5)], pa.timestamp("s")),
        }
    )
    warehouse.load(narrower, TARGET, mode="append")
    added = rows_of(warehouse)[1]
    assert (added["id"], added["amount"], added["ratio"]) == (2, Decimal("12.50"), 0.5)
    assert added["logged_at"] == datetime(2026, 1, 2, 3, 4, 5)


@pytest.mark.parametrize(
    ("column", "values"),
    [
        ("colour", pa.array(["red"])),  # not in the table
        ("id", pa.array(["7"])),  # text into BIGINT
        ("id", pa.array([7.0])),  # DOUBLE into BIGINT
        ("amount", pa.array([Decimal("1.125")], pa.decimal128(10, 3))),  # would round
        ("amount", pa.array([1.5])),  # DOUBLE into DECIMAL
        ("day", pa.array([datetime(2026, 1, 1)], pa.timestamp("us"))),  # would drop time
        ("tags", pa.array([[1]])),  # BIGINT[] into VARCHAR[]
    ],
)
def test_append_refuses_incompatible_columns_and_leaves_the_table(
    warehouse: Warehouse, column: str, values: pa.Array
) -> None:
    before = sales(sale(1), sale(2))
    warehouse.load(before, TARGET)
    with pytest.raises(LoadError, match=f"'{column}'"):
        warehouse.load(pa.table({column: values}), TARGET, mode="append")
    assert rows_of(warehouse) == before.to_pylist()


# --- merge ---------------------------------------------------------------------------


def test_merge_updates_matching_rows_and_inserts_the_rest(warehouse: Warehouse) -> None:
    warehouse.load(sales(sale(1), sale(2), sale(3)), TARGET, keys=["id"])
    change = sales(sale(2, amount="9.99"), sale(3, machine="m7"), sale(4), sale(5))
    result = warehouse.load(change, TARGET, mode="merge", keys=["id"])
    assert not result.created
    assert (result.rows_loaded, result.rows_inserted, result.rows_updated) == (4, 2, 2)
    assert result.rows_in_target == 5
    expected = [sale(1), sale(2, amount="9.99"), sale(3, machine="m7"), sale(4), sale(5)]
    assert rows_of(warehouse) == sales(*expected).to_pylist()


def test_merge_creates_a_missing_table(warehouse: Warehouse) -> None:
    result = warehouse.load(sales(sale(1), sale(2)), TARGET, mode="merge", keys=["id"])
    assert result.created
    assert (result.rows_inserted, result.rows_updated, result.rows_in_target) == (2, 0, 2)


def test_merge_by_composite_key(warehouse: Warehouse) -> None:
    first = pa.table({"machine": ["a", "a", "b"], "day": [1, 2, 1], "sold": [10, 20, 30]})
    warehouse.load(first, TARGET, mode="merge", keys=["machine", "day"])
    change = pa.table({"machine": ["a", "b"], "day": [2, 2], "sold": [25, 5]})
    result = warehouse.load(change, TARGET, mode="merge", keys=["machine", "day"])
    assert (result.rows_inserted, result.rows_updated, result.rows_in_target) == (1, 1, 4)
    got = sorted(warehouse.read_arrow(TARGET).to_pylist(), key=lambda r: (r["machine"], r["day"]))
    assert [r["sold"] for r in got] == [10, 25, 30, 5]


def test_merge_keeps_target_columns_missing_from_the_data(warehouse: Warehouse) -> None:
    warehouse.load(sales(sale(1), sale(2)), TARGET, keys=["id"])
    change = pa.table({"id": [2, 3], "machine": ["m8", "m9"]})
    result = warehouse.load(change, TARGET, mode="merge", keys=["id"])
    assert (result.rows_inserted, result.rows_updated) == (1, 1)
    one, two, three = rows_of(warehouse)
    assert one == sale(1)
    assert two == sale(2, machine="m8")
    assert three["machine"] == "m9" and three["amount"] is None


def test_merge_of_key_columns_only_inserts_new_keys(warehouse: Warehouse) -> None:
    warehouse.load(pa.table({"id": [1, 2]}), TARGET, keys=["id"])
    result = warehouse.load(pa.table({"id": [2, 3]}), TARGET, mode="merge", keys=["id"])
    assert (result.rows_inserted, result.rows_updated, result.rows_in_target) == (1, 0, 3)


def test_merge_needs_keys(warehouse: Warehouse) -> None:
    with pytest.raises(LoadError, match="key"):
        warehouse.load(sales(sale(1)), TARGET, mode="merge")
    assert warehouse.tables() == []


def test_merge_keys_must_be_columns_of_the_data(warehouse: Warehouse) -> None:
    with pytest.raises(LoadError, match="'sku'"):
        warehouse.load(sales(sale(1)), TARGET, mode="merge", keys=["sku"])


def test_duplicate_keys_are_refused_and_the_table_is_unchanged(warehouse: Warehouse) -> None:
    before = sales(sale(1), sale(2))
    warehouse.load(before, TARGET, keys=["id"])
    with pytest.raises(LoadError, match=r"\(id\).*id=2"):
        warehouse.load(sales(sale(2), sale(3), sale(2)), TARGET, mode="merge", keys=["id"])
    assert rows_of(warehouse) == before.to_pylist()


def test_duplicate_composite_keys_name_an_example(warehouse: Warehouse) -> None:
    data = pa.table({"a": [1, 1, 1], "b": ["x", "y", "x"]})
    with pytest.raises(LoadError, match=r"a=1, b='x'"):
        warehouse.load(data, TARGET, mode="merge", keys=["a", "b"])


def test_null_keys_are_refused_and_the_table_is_unchanged(warehouse: Warehouse) -> None:
    before = sales(sale(1))
    warehouse.load(before, TARGET, keys=["id"])
    data = pa.table({"id": [5, None], "machine": ["m1", "m2"]})
    with pytest.raises(LoadError, match=r"'id' is null.*row 2"):
        warehouse.load(data, TARGET, mode="merge", keys=["id"])
    assert rows_of(warehouse) == before.to_pylist()


def test_merge_into_a_table_with_an_incompatible_column_is_refused(
    warehouse: Warehouse,
) -> None:
    before = sales(sale(1))
    warehouse.load(before, TARGET, keys=["id"])
    with pytest.raises(LoadError, match="'amount'"):
        warehouse.load(pa.table({"id": [1], "amount": ["lots"]}), TARGET, mode="merge", keys=["id"])
    assert rows_of(warehouse) == before.to_pylist()


# --- requests ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    ["sales", "a.b.c", "Analytics.sales", "analytics.1st", "analytics.sales-2026", ".sales", ""],
)
def test_bad_target_names_are_user_errors(warehouse: Warehouse, target: str) -> None:
    with pytest.raises(InvalidTableNameError) as caught:
        warehouse.load(sales(sale(1)), target)
    assert caught.value.exit_code == 2
    assert warehouse.tables() == []


def test_an_unknown_mode_is_refused(warehouse: Warehouse) -> None:
    with pytest.raises(LoadError, match="upsert"):
        warehouse.load(sales(sale(1)), TARGET, mode="upsert")  # type: ignore[arg-type]


# --- reading -------------------------------------------------------------------------


def test_tables_lists_every_schema_and_table(warehouse: Warehouse) -> None:
    assert warehouse.tables() == []
    for target in ("sales.b", "analytics.z", "analytics.a"):
        warehouse.load(pa.table({"id": [1]}), target)
    assert warehouse.tables() == ["analytics.a", "analytics.z", "sales.b"]
    assert warehouse.has_table("analytics.z")
    assert not warehouse.has_table("analytics.b")


def test_read_arrow_of_a_missing_table_names_the_existing_ones(warehouse: Warehouse) -> None:
    with pytest.raises(TableNotFoundError, match="none yet"):
        warehouse.read_arrow(TARGET)
    warehouse.load(pa.table({"id": [1]}), "analytics.other")
    with pytest.raises(TableNotFoundError, match=r"analytics\.sales.*analytics\.other") as caught:
        warehouse.read_arrow(TARGET)
    assert caught.value.exit_code == 2


def test_read_arrow_returns_the_loaded_types(warehouse: Warehouse) -> None:
    warehouse.load(sales(sale(1)), TARGET)
    schema = warehouse.read_arrow(TARGET).schema
    assert schema.field("amount").type == pa.decimal128(10, 2)
    assert schema.field("day").type == pa.date32()
    assert schema.field("sold_at").type == pa.timestamp("us", tz="UTC")
    assert schema.field("id").type == pa.int64()


def test_register_makes_tables_queryable_in_another_connection(warehouse: Warehouse) -> None:
    warehouse.load(sales(sale(1), sale(2), sale(3)), TARGET)
    machines = pa.table({"machine": ["m1"], "place": ["station"]})
    warehouse.load(machines, "analytics.machines")
    with duckdb.connect() as con:
        warehouse.register(con, TARGET, "s")
        warehouse.register(con, "analytics.machines", "m")
        total = con.execute(
            "SELECT m.place, sum(s.amount) FROM s JOIN m USING (machine) GROUP BY 1"
        ).fetchall()
    assert total == [("station", Decimal("4.50"))]


def test_register_sees_later_loads(warehouse: Warehouse) -> None:
    warehouse.load(sales(sale(1)), TARGET)
    with duckdb.connect() as con:
        warehouse.register(con, TARGET, "s")
        assert con.execute("SELECT count(*) FROM s").fetchall() == [(1,)]
    warehouse.load(sales(sale(1), sale(2)), TARGET)
    with duckdb.connect() as con:
        warehouse.register(con, TARGET, "s")
        assert con.execute("SELECT count(*) FROM s").fetchall() == [(2,)]


def test_register_of_a_missing_table_is_not_found(warehouse: Warehouse) -> None:
    with duckdb.connect() as con:
        with pytest.raises(TableNotFoundError):
            warehouse.register(con, TARGET, "s")
        warehouse.load(pa.table({"id": [1]}), "analytics.other")
        with pytest.raises(TableNotFoundError, match=r"analytics\.other"):
            warehouse.register(con, TARGET, "s")
