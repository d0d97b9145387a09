"""What storing an invocation writes: its row (with its cost), its log, its REPORT line.

An invocation is queued for the writer as a :data:`Packed` tuple of plain values (what
:mod:`marshal` carries to the recorder process, see
:mod:`lakelet.functions.runtime.recorderpipe`); :class:`BatchStore` turns a batch of
them into rows inserted in one transaction, appends their logs to per-function files
and logs their ``REPORT`` lines in one record. The recorder process and the in-thread
writer of :mod:`lakelet.functions.runtime.stats` share it.
"""

from __future__ import annotations

import logging
import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, Final

import sqlalchemy as sa

from lakelet.functions.invocation import Invocation
from lakelet.functions.runtime.report import cost_values

log = logging.getLogger("lakelet.functions")

invocation_metadata = sa.MetaData()
invocations_table = sa.Table(
    "function_invocations",
    invocation_metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    # Not indexed: request ids are random, and an index on them makes every insert
    # write a page at a random place of it (five times the cost of the rest of a row).
    sa.Column("request_id", sa.String(64), nullable=False),
    sa.Column("function", sa.String(64), nullable=False, index=True),
    sa.Column("source", sa.String(256), nullable=False),
    sa.Column("invocation_type", sa.String(16), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("error_type", sa.String(128), nullable=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("duration_ms", sa.Float, nullable=False),
    sa.Column("billed_ms", sa.Integer, nullable=False),
    sa.Column("memory_mb", sa.Integer, nullable=False),
    sa.Column("max_memory_used_mb", sa.Integer, nullable=False),
    sa.Column("init_ms", sa.Float, nullable=True),
    sa.Column("gb_seconds", sa.Float, nullable=False),
    sa.Column("cost_usd", sa.Float, nullable=False),
)
_APPEND = os.O_WRONLY | os.O_APPEND | os.O_CREAT
# The columns a row gives, in the order of the tuples the writer makes.
_COLUMNS = tuple(c for c in invocations_table.columns if c.name != "id")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

# An invocation as the recorder queues it, as plain values: request id, function, source,
# invocation type, attempt, outcome, error type, start (seconds since the epoch as a
# float, or microseconds as an int: exact for a datetime), duration, billed ms, memory,
# max memory used, init, logs.
Packed = tuple[
    str,
    str,
    str,
    str,
    int,
    str,
    "str | None",
    "float | int",
    float,
    int,
    int,
    int,
    "float | None",
    str,
]
LOGS: Final = 13
FUNCTION: Final = 1


def pack(
    invocation: Invocation,
    source: str,
    invocation_type: str,
    attempt: int,
    started_at: datetime | float,
) -> Packed:
    """An invocation as plain values (a naive start counts as UTC). Packed as it is
    queued, so the queue holds a few scalars per invocation rather than its response
    and payload: holding those for a writer's round (thousands of requests) kept the
    serving thread's allocations out of the CPU's caches, ~5 µs a request."""
    failure = invocation.failure
    start: float | int
    if isinstance(started_at, datetime):
        if started_at.tzinfo is None:
            started_at = started_at.replace(tzinfo=UTC)
        start = (started_at - _EPOCH) // _MICROSECOND
    else:
        start = float(started_at)
    return (
        invocation.request_id,
        invocation.function,
        source,
        invocation_type,
        attempt,
        invocation.outcome,
        None if failure is None else failure.error_type,
        start,
        invocation.duration_ms,
        invocation.billed_ms,
        invocation.memory_mb,
        invocation.max_memory_used_mb,
        invocation.init_ms,
        invocation.logs,
    )


class BatchStore:
    """Stores batches of packed invocations: rows, log files, ``REPORT`` lines."""

    def __init__(self, engine: sa.Engine, log_dir: Path | None) -> None:
        self._insert = RowInserter(engine)
        self._log_dir = log_dir

    def write(self, batch: list[Packed]) -> None:
        if not batch:
            return
        try:
            self._insert(batch)
        except Exception as exc:  # statistics must never break invocations
            log.warning("could not store %d invocation(s): %s", len(batch), exc)
        texts = [packed[LOGS] for packed in batch if packed[LOGS]]
        if not texts:
            return
        if self._log_dir is not None:
            append_logs(self._log_dir, batch)
        if log.isEnabledFor(logging.INFO):
            log.info("%s", "\n".join([report_of(text) for text in texts]))


class RowInserter:
    """Inserts packed invocations as rows in one transaction, through the driver.

    SQLAlchemy's Core would build a parameter dictionary and run type processors per
    row, and a driver's ``executemany`` releases and retakes the interpreter lock per
    row; so rows go in ``CHUNK_ROWS`` at a time, in one multi-row ``INSERT … VALUES``
    statement (the driver keeps it prepared), the rest with ``executemany``. Values are
    what the driver takes (``str``, ``int``, ``float``, ``None``); the start time is
    converted as SQLAlchemy converts a ``DateTime`` for the dialect.
    """

    CHUNK_ROWS = 50  # 750 parameters: under SQLite's oldest limit (999)

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        dialect = engine.dialect
        marker = {"qmark": "?", "format": "%s", "pyformat": "%s"}.get(dialect.paramstyle)
        self._marker = marker
        processor = invocations_table.c.started_at.type._cached_bind_processor(dialect)
        self._started_at: Callable[[datetime | float], Any]
        if dialect.name == "sqlite" and processor is not None:
            self._started_at = SqliteTime()
        else:
            self._started_at = partial(_datetime_for, processor or _same)
        quote = dialect.identifier_preparer.quote
        head = (
            f"INSERT INTO {quote(invocations_table.name)} "
            f"({', '.join(quote(c.name) for c in _COLUMNS)}) VALUES "
        )
        values = f"({', '.join([marker or ''] * len(_COLUMNS))})"
        self._one = head + values
        self._chunk = head + ", ".join([values] * self.CHUNK_ROWS)

    def __call__(self, batch: list[Packed]) -> None:
        convert = self._started_at
        rows = [row_of(packed, convert) for packed in batch]
        if self._marker is None:  # a driver of another parameter style: SQLAlchemy's way
            names = [c.name for c in _COLUMNS]
            with self._engine.begin() as conn:
                params = [dict(zip(names, r, strict=True)) for r in rows]
                conn.execute(invocations_table.insert(), params)
            return
        size = self.CHUNK_ROWS
        whole = len(rows) - len(rows) % size
        connection = self._engine.raw_connection()
        try:
            cursor = connection.cursor()
            try:
                for start in range(0, whole, size):
                    chunk = [value for row in rows[start : start + size] for value in row]
                    cursor.execute(self._chunk, chunk)
                if whole < len(rows):
                    cursor.executemany(self._one, rows[whole:])
            finally:
                cursor.close()
            connection.commit()
        except BaseException:
            connection.rollback()
            raise
        finally:
            connection.close()  # back to the engine's pool


class SqliteTime:
    """The text SQLAlchemy stores for a ``DateTime`` in SQLite (``2025-11-27
    10:27:11.123456``: the wall time, to the microsecond, without the zone), from a
    datetime, from seconds since the epoch (a float) or from microseconds since the
    epoch (an int), both UTC; the part to the second is made once per second."""

    __slots__ = ("_second", "_text")

    def __init__(self) -> None:
        self._second = -1
        self._text = ""

    def __call__(self, value: datetime | float) -> str:
        if isinstance(value, datetime):
            return value.isoformat(" ", "microseconds")[:26]
        if isinstance(value, int):
            second, micros = divmod(value, 1_000_000)
        else:
            second = int(value)
            micros = int((value - second) * 1_000_000)
        if second != self._second:
            self._second = second
            self._text = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(second))
        return f"{self._text}.{micros:06d}"


def _datetime_for(convert: Callable[[datetime], Any], value: datetime | float) -> Any:
    if isinstance(value, int):
        value = _EPOCH + timedelta(microseconds=value)
    elif not isinstance(value, datetime):
        value = datetime.fromtimestamp(value, UTC)
    return convert(value)


def _same(value: datetime) -> datetime:
    return value


def row_of(packed: Packed, convert: Callable[[datetime | float], Any]) -> tuple[Any, ...]:
    """A row's values in column order, with the invocation's cost (a throttled call
    never ran and costs nothing, as Lambda does not bill it)."""
    (
        request_id,
        function,
        source,
        invocation_type,
        attempt,
        outcome,
        error_type,
        started,
        duration_ms,
        billed,
        memory_mb,
        max_used_mb,
        init_ms,
        _,
    ) = packed
    if outcome == "throttled":
        gb_seconds = usd = 0.0
    else:
        gb_seconds, usd = cost_values(memory_mb, billed)
    return (
        request_id,
        function,
        source,
        invocation_type,
        attempt,
        outcome,
        None if error_type is None else error_type[:128],
        convert(started),
        float(duration_ms),
        billed,
        memory_mb,
        max_used_mb,
        None if init_ms is None else float(init_ms),
        gb_seconds,
        usd,
    )


def report_of(logs: str) -> str:
    """The ``REPORT`` line of an invocation's log text (its last line)."""
    end = len(logs) - 1 if logs.endswith("\n") else len(logs)
    return logs[logs.rfind("\n", 0, end) + 1 : end]


def append_logs(folder: Path, batch: Iterable[Packed]) -> None:
    """One write per function's file (opened for appending, so ``tail -f`` and other
    writers see whole batches); the folder is made when missing."""
    by_function: dict[str, list[str]] = defaultdict(list)
    for packed in batch:
        if packed[LOGS]:
            by_function[packed[FUNCTION]].append(packed[LOGS])
    for function, texts in by_function.items():
        path = folder / f"{function}.log"
        data = "".join(texts).encode("utf-8")
        try:
            try:
                fd = os.open(path, _APPEND, 0o644)
            except FileNotFoundError:
                folder.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, _APPEND, 0o644)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
        except OSError:
            pass  # a full disk must not fail the function
