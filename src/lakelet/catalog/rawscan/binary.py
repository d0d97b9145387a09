"""Scanning Avro and ORC tables: files read into Arrow and handed to DuckDB.

DuckDB cannot read these formats here (its extensions cannot be downloaded), so the
scan registers an Arrow table built from the files, with each file's partition values
added as columns. Typed binary formats have no parse rejects: a file that cannot be
read at all fails the query, naming the file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import IO, Any

import pyarrow as pa

from lakelet.catalog.raw import RawTable
from lakelet.errors import CrawlError

Opener = Callable[[str], IO[bytes]]


def arrow_loader(table: RawTable, files: list[str], opener: Opener) -> Callable[[], pa.Table]:
    """A function building the table's Arrow data (called when the scan is bound)."""

    def load() -> pa.Table:
        from lakelet.catalog.formats import read_avro, read_orc
        from lakelet.catalog.rawscan.core import file_partitions

        reader = read_avro if table.format == "avro" else read_orc
        pieces = []
        for url in files:
            try:
                with opener(url) as stream:
                    schema, batches = reader(stream)
                    data = pa.Table.from_batches(list(batches), schema=schema)
            except CrawlError as exc:
                raise CrawlError(f"{url}: {exc}") from exc
            values = file_partitions(url, table.location)
            for key in table.partition_keys:
                data = data.append_column(
                    key.name, pa.array([values.get(key.name)] * data.num_rows, pa.string())
                )
            pieces.append(data)
        return pa.concat_tables(pieces, promote_options="permissive")

    return load


def default_opener(filesystem: Any | None) -> Opener:
    """Open local paths directly, anything else through the store's fsspec filesystem."""

    def open_url(url: str) -> IO[bytes]:
        if "://" not in url or filesystem is None:
            return open(url.removeprefix("file://"), "rb")
        stream: IO[bytes] = filesystem.open(url, "rb")
        return stream

    return open_url
