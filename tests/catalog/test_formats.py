"""Avro and ORC read into Arrow, with types mapped as a user would expect."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import fastavro
import pyarrow as pa
import pyarrow.orc as orc
import pytest

from lakelet.catalog.formats import duckdb_columns, read_avro, read_orc
from lakelet.errors import CrawlError

SCHEMA = {
    "type": "record",
    "name": "Sale",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "machine", "type": ["null", "string"]},
        {
            "name": "price",
            "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2},
        },
        {"name": "sold_at", "type": {"type": "long", "logicalType": "timestamp-micros"}},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
        {
            "name": "loc",
            "type": {
                "type": "record",
                "name": "Loc",
                "fields": [{"name": "lat", "type": "double"}],
            },
        },
        {"name": "kind", "type": {"type": "enum", "name": "K", "symbols": ["A", "B"]}},
    ],
}


def avro_file(rows: int) -> io.BytesIO:
    buffer = io.BytesIO()
    records = [
        {
            "id": i,
            "machine": None if i % 2 else f"VM-{i}",
            "price": Decimal("1.50") + i,
            "sold_at": dt.datetime(2026, 11, 27, tzinfo=dt.UTC),
            "day": dt.date(2026, 11, 27),
            "tags": ["x"] * (i % 3),
            "loc": {"lat": 38.7},
            "kind": "A",
        }
        for i in range(rows)
    ]
    fastavro.writer(buffer, SCHEMA, records, codec="deflate")
    buffer.seek(0)
    return buffer


def test_avro_types_and_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("lakelet.catalog.formats.avro.BATCH_ROWS", 1000)
    schema, batches = read_avro(avro_file(2_500))
    parts = list(batches)
    assert [b.num_rows for b in parts] == [1000, 1000, 500]
    table = pa.Table.from_batches(parts, schema=schema)
    assert dict(duckdb_columns(schema)) == {
        "id": "BIGINT",
        "machine": "VARCHAR",
        "price": "DECIMAL(10,2)",
        "sold_at": "TIMESTAMP WITH TIME ZONE",
        "day": "DATE",
        "tags": "VARCHAR[]",
        "loc": "STRUCT(lat DOUBLE)",
        "kind": "VARCHAR",
    }
    first = table.slice(0, 2).to_pylist()
    assert first[0]["machine"] == "VM-0" and first[1]["machine"] is None
    assert first[1]["price"] == Decimal("2.50")


def test_orc_round_trip() -> None:
    buffer = io.BytesIO()
    orc.write_table(pa.table({"a": [1, 2, 3], "b": ["x", None, "z"]}), buffer)
    buffer.seek(0)
    schema, batches = read_orc(buffer)
    assert pa.Table.from_batches(list(batches), schema=schema).column("b").to_pylist() == [
        "x",
        None,
        "z",
    ]


@pytest.mark.parametrize("reader", [read_avro, read_orc])
def test_garbage_is_a_clear_error(reader: object) -> None:
    with pytest.raises(CrawlError, match="not a readable"):
        reader(io.BytesIO(b"definitely not a data file"))  # type: ignore[operator]
