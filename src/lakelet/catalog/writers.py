"""Parquet files written by threads: pyarrow's writer keeps one core busy per file and
releases the GIL, so two writers (or two reader-writers) use two cores.

Batches are gathered into row groups of :data:`ROW_GROUP_ROWS` (small parse blocks keep
readers' memory low; Parquet wants larger groups) and files roll over past
``file_bytes``. After a failure every thread only drains its queue, so a producer never
blocks, and the first exception is raised once all have stopped.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import pyarrow as pa

DEFAULT_FILE_BYTES = 256 * 1024 * 1024
"""Target size of one data file: a new one starts past it (Iceberg's default target is
512 MB; smaller files let later readers split the work)."""
DEFAULT_CODEC = "snappy"
"""Unless the table sets ``write.parquet.compression-codec``: DuckDB's and Spark's
default, a fifth to a third cheaper to write than zstd (pyiceberg's default)."""
ROW_GROUP_ROWS = 122_880
"""Rows per Parquet row group (DuckDB's own size)."""
T = TypeVar("T")


@dataclass(frozen=True)
class ParquetOptions:
    """How files are written: codec, size, dictionary-encoded columns (``None``: all)."""

    codec: str = DEFAULT_CODEC
    file_bytes: int = DEFAULT_FILE_BYTES
    dictionary: list[str] | None = None


class _RollingFile:
    """One thread's output: batches gathered into row groups of exactly
    :data:`ROW_GROUP_ROWS` (the last one of a file excepted), files ``{stem}-{n}``."""

    def __init__(self, stem: str, schema: pa.Schema, options: ParquetOptions) -> None:
        self.stem, self.schema, self.options = stem, schema, options
        self.files: list[str] = []
        self.rows = 0
        self._gathered: list[pa.RecordBatch] = []
        self._pending = 0
        self._sink: Any = None
        self._writer: Any = None

    def add(self, batch: pa.RecordBatch) -> None:
        self._gathered.append(batch)
        self.rows += batch.num_rows
        self._pending += batch.num_rows
        while self._pending >= ROW_GROUP_ROWS:
            self._write(ROW_GROUP_ROWS)

    def flush(self) -> None:
        """Write what is gathered, as the file's last row group."""
        if self._pending:
            self._write(self._pending)

    def _write(self, rows: int) -> None:
        """Write the first ``rows`` gathered rows as one row group; keep the rest (a
        remainder written at once made a row group of a few thousand rows every time)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self._writer is None:
            self.files.append(f"{self.stem}-{len(self.files)}.parquet")
            self._sink = pa.OSFile(self.files[-1], "wb")
            dictionary = self.options.dictionary
            self._writer = pq.ParquetWriter(
                self._sink,
                self.schema,
                compression=self.options.codec,
                use_dictionary=True if dictionary is None else dictionary,
                store_decimal_as_integer=True,
            )
        table = pa.Table.from_batches(self._gathered, self.schema)
        self._writer.write_table(table.slice(0, rows), rows)
        rest = table.slice(rows)
        self._gathered, self._pending = rest.to_batches(), rest.num_rows
        if self._sink.tell() >= self.options.file_bytes:
            self.close()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._sink is not None:
            self._sink.close()
        self._writer = self._sink = None


def write_parallel(
    tasks: Iterable[T],
    read: Callable[[T], Iterable[pa.RecordBatch]],
    schema: pa.Schema,
    folder: str,
    options: ParquetOptions,
    workers: int,
) -> tuple[int, list[str]]:
    """Write under ``folder`` the batches ``read`` makes of each task, with ``workers``
    threads each taking the next task and writing its own files; the caller's thread
    produces the tasks meanwhile (rows of a task stay together and in order; the table
    interleaves tasks). (rows, file paths)."""
    pending: queue.Queue[T | None] = queue.Queue(workers)

    def work(output: _RollingFile) -> None:
        while (task := pending.get()) is not None:
            for batch in read(task):
                output.add(batch)

    def drain() -> None:  # until this thread's end mark: each thread takes one
        while pending.get() is not None:
            pass

    outputs, failures, threads = _start(folder, schema, options, workers, work, drain)
    try:
        for task in tasks:
            if failures:
                break
            pending.put(task)
    finally:
        for _ in threads:
            pending.put(None)
        for thread in threads:
            thread.join()
    return _finish(outputs, failures)


def _start(
    folder: str,
    schema: pa.Schema,
    options: ParquetOptions,
    count: int,
    work: Callable[[_RollingFile], None],
    drain: Callable[[], None],
) -> tuple[list[_RollingFile], list[BaseException], list[threading.Thread]]:
    Path(folder).mkdir(parents=True, exist_ok=True)
    outputs = [_RollingFile(f"{folder}/part-{i}", schema, options) for i in range(count)]
    failures: list[BaseException] = []

    def run(index: int) -> None:
        try:
            work(outputs[index])
            if not failures:
                outputs[index].flush()
        except BaseException as exc:
            failures.append(exc)
            drain()  # so the producer never blocks
        finally:
            outputs[index].close()

    threads = [
        threading.Thread(target=run, args=(i,), name=f"lakelet-parquet-{i}", daemon=True)
        for i in range(count)
    ]
    for thread in threads:
        thread.start()
    return outputs, failures, threads


def _finish(outputs: list[_RollingFile], failures: list[BaseException]) -> tuple[int, list[str]]:
    if failures:
        raise failures[0]
    return sum(o.rows for o in outputs), [f for o in outputs for f in o.files]
