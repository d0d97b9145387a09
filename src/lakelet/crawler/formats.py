"""Schemas of Avro, ORC and log files (CSV, JSON lines and Parquet have modules of their own).

Avro keeps its schema in the file's header, which the probe's head usually holds; ORC
keeps it in the footer, so the file is opened through the store. A log file's columns
are the named groups of the classifier that recognised it.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

from lakelet.crawler.files import DataFile, SkippedFile
from lakelet.crawler.schema import Field, FileSchema
from lakelet.errors import CrawlError, LakeletError

if TYPE_CHECKING:
    from lakelet.crawler.classify import Classification
    from lakelet.crawler.probe import Probe
    from lakelet.storage.base import ObjectStore


def binary_schema(
    con: Any, file: DataFile, probe: Probe, store: ObjectStore | None
) -> FileSchema | SkippedFile:
    """An Avro or ORC file's columns as DuckDB types."""
    from lakelet.catalog.formats import duckdb_columns, read_orc

    try:
        if file.format == "avro":
            schema, rows = _avro_header(file, probe, store)
        else:
            if store is None:
                raise CrawlError("an ORC file is read through the store")
            with store.open(file.bucket, file.key) as stream:
                import pyarrow.orc as orc

                schema, _ = read_orc(stream)
                rows = int(orc.ORCFile(stream).nrows)
    except (LakeletError, OSError, ValueError) as exc:
        return SkippedFile(file.location, f"not a readable {file.format} file: {exc}")
    fields = [Field(name, sql_type) for name, sql_type in duckdb_columns(schema)]
    return FileSchema(fields, rows)


def _avro_header(file: DataFile, probe: Probe, store: ObjectStore | None) -> tuple[Any, int]:
    import fastavro

    from lakelet.catalog.formats import avro_arrow_schema

    try:
        reader = fastavro.reader(io.BytesIO(probe.head))
    except (ValueError, EOFError, StopIteration):
        if store is None:
            raise
        with store.open(file.bucket, file.key) as stream:  # a header larger than the head
            reader = fastavro.reader(stream)
            return avro_arrow_schema(reader.writer_schema), 0
    return avro_arrow_schema(reader.writer_schema), 0


def log_schema(file: DataFile, probe: Probe, winner: Classification) -> FileSchema:
    """A log's columns are its pattern's fields; rows are estimated from the head."""
    fields = [Field(str(name), str(sql_type)) for name, sql_type in winner.options["fields"]]
    lines = probe.head.count(b"\n")
    rows = (
        lines if len(probe.head) >= file.size else int(lines * file.size / max(len(probe.head), 1))
    )
    return FileSchema(fields, rows, {"regex": winner.options["regex"]})
