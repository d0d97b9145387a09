"""Avro object container files → Arrow, with the writer's schema mapped to Arrow types."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

import pyarrow as pa

from lakelet.errors import CrawlError

BATCH_ROWS = 65_536
_PRIMITIVES: dict[str, pa.DataType] = {
    "null": pa.null(),
    "boolean": pa.bool_(),
    "int": pa.int32(),
    "long": pa.int64(),
    "float": pa.float32(),
    "double": pa.float64(),
    "bytes": pa.binary(),
    "string": pa.string(),
}
_LOGICAL: dict[str, pa.DataType] = {
    "date": pa.date32(),
    "time-millis": pa.time32("ms"),
    "time-micros": pa.time64("us"),
    "timestamp-millis": pa.timestamp("ms", tz="UTC"),
    "timestamp-micros": pa.timestamp("us", tz="UTC"),
    "local-timestamp-millis": pa.timestamp("ms"),
    "local-timestamp-micros": pa.timestamp("us"),
    "uuid": pa.string(),
}


def avro_arrow_schema(schema: Any) -> pa.Schema:
    """The Arrow schema of an Avro record schema (the file's writer schema)."""
    if not isinstance(schema, dict) or schema.get("type") != "record":
        raise CrawlError("an Avro file's schema must be a record to become a table")
    return pa.schema([_field(f) for f in schema["fields"]])


def _field(field: dict[str, Any]) -> pa.Field:
    arrow_type, nullable = _type(field["type"])
    return pa.field(field["name"], arrow_type, nullable=nullable)


def _type(avro: Any) -> tuple[pa.DataType, bool]:
    if isinstance(avro, list):  # a union: ["null", T] is a nullable T
        branches = [b for b in avro if b != "null"]
        if len(branches) == 1:
            return _type(branches[0])[0], True
        return pa.string(), True  # a multi-type union has no Arrow equivalent: keep text
    if isinstance(avro, str):
        if avro in _PRIMITIVES:
            return _PRIMITIVES[avro], avro == "null"
        return pa.string(), True  # a named type reference
    logical = avro.get("logicalType")
    if logical == "decimal":
        return pa.decimal128(int(avro["precision"]), int(avro.get("scale", 0))), False
    if logical in _LOGICAL:
        return _LOGICAL[logical], False
    kind = avro["type"]
    if kind == "record":
        return pa.struct([_field(f) for f in avro["fields"]]), False
    if kind == "array":
        return pa.list_(_type(avro["items"])[0]), False
    if kind == "map":
        return pa.map_(pa.string(), _type(avro["values"])[0]), False
    if kind == "enum":
        return pa.string(), False
    if kind == "fixed":
        return pa.binary(int(avro["size"])), False
    return _type(kind)


def read_avro(stream: IO[bytes]) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """The file's Arrow schema and its rows in batches (streaming, bounded memory)."""
    import fastavro

    try:
        reader = fastavro.reader(stream)
    except (ValueError, EOFError) as exc:
        raise CrawlError(f"not a readable Avro file: {exc}") from exc
    schema = avro_arrow_schema(reader.writer_schema)

    def batches() -> Iterator[pa.RecordBatch]:
        rows: list[dict[str, Any]] = []
        for record in reader:
            rows.append(record)  # type: ignore[arg-type]
            if len(rows) >= BATCH_ROWS:
                yield pa.RecordBatch.from_pylist(rows, schema=schema)
                rows = []
        if rows:
            yield pa.RecordBatch.from_pylist(rows, schema=schema)

    return schema, batches()
