"""Every invocation, stored with its cost, and the figures ``lakelet functions stats`` shows.

Storing an invocation adds nothing to its latency and little to the serving process's
work: recording appends a tuple to a queue, and a background thread, woken by the first
record after a quiet spell, gathers for a moment and writes what came in one
transaction, through the database driver itself (one ``executemany`` of plain tuples,
values converted as SQLAlchemy would). :meth:`InvocationRecorder.flush` (and ``close``)
waits for them. The same thread appends each invocation's log (START … REPORT) to a
per-function file when the runtime has a log folder, like a CloudWatch log group, one
write per file and batch, and logs the batch's ``REPORT`` lines at ``INFO`` in one
record (``lakelet up`` shows them).

Everything the writer does takes the same interpreter lock as the event loop serving
requests, so its work per invocation is kept to converting and formatting values.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import sqlalchemy as sa

from lakelet.functions.invocation import Invocation
from lakelet.functions.runtime.report import cost_values
from lakelet.metadata import ensure_tables

BATCH_SIZE = 500
GATHER_S = 0.05  # how long the writer collects records before a batch

ERROR_OUTCOMES = ("error", "timeout", "out_of_memory")
ALL_SOURCES = "*"

log = logging.getLogger("lakelet.functions")

_meta = sa.MetaData()
invocations_table = sa.Table(
    "function_invocations",
    _meta,
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
_OLD_REQUEST_ID_INDEX = "ix_function_invocations_request_id"
_APPEND = os.O_WRONLY | os.O_APPEND | os.O_CREAT
# The columns a row gives, in the order of the tuples the writer makes.
_COLUMNS = tuple(c for c in invocations_table.columns if c.name != "id")


@dataclass(frozen=True)
class Record:
    """An invocation and how it was called."""

    invocation: Invocation
    source: str
    invocation_type: str
    attempt: int
    started_at: datetime


# What the queue holds: an invocation, its source, invocation type, attempt and start
# (a datetime, or seconds since the epoch: the cheaper to take on a busy path).
_Pending = tuple[Invocation, str, str, int, "datetime | float"]


@dataclass(frozen=True)
class FunctionStats:
    """Figures for one function, over all sources (``source == "*"``) or one of them.

    ``invocations`` counts calls that ran (Lambda's ``Invocations`` metric, throttles
    excluded); ``errors`` those that failed, timed out or ran out of memory.
    """

    function: str
    source: str
    invocations: int
    errors: int
    throttles: int
    cold_starts: int
    p50_ms: float | None
    p99_ms: float | None
    gb_seconds: float
    cost_usd: float

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


class InvocationRecorder:
    """Stores invocations in the metadata database from a background thread."""

    def __init__(self, engine: sa.Engine, *, log_dir: Path | None = None) -> None:
        ensure_tables(engine, _meta)
        with engine.begin() as conn:  # what earlier versions made (nothing looks it up)
            conn.execute(sa.text(f"DROP INDEX IF EXISTS {_OLD_REQUEST_ID_INDEX}"))
        self._engine = engine
        self._log_dir = log_dir
        self._insert = _Insert(engine)
        self._pending: deque[_Pending] = deque()
        self._flushes: deque[threading.Event] = deque()
        self._wake = threading.Event()
        self._asleep = False  # the writer waits for a record (set before it checks)
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="lakelet-fn-stats", daemon=True)
        self._thread.start()

    def record(self, record: Record) -> None:
        """Queue ``record``."""
        self.add(
            record.invocation,
            record.source,
            record.invocation_type,
            record.attempt,
            record.started_at,
        )

    def add(
        self,
        invocation: Invocation,
        source: str,
        invocation_type: str = "RequestResponse",
        attempt: int = 1,
        started_at: datetime | float | None = None,
    ) -> None:
        """Queue an invocation (``started_at``: a datetime or seconds since the epoch;
        default now); wakes the writer only if it sleeps (or a batch is full)."""
        pending = self._pending
        pending.append(
            (
                invocation,
                source,
                invocation_type,
                attempt,
                time.time() if started_at is None else started_at,
            )
        )
        if self._asleep or len(pending) >= BATCH_SIZE:
            self._asleep = False
            self._wake.set()

    def flush(self, timeout: float | None = 30.0) -> None:
        """Wait until every invocation recorded so far is stored."""
        done = threading.Event()
        self._flushes.append(done)
        self._wake.set()
        done.wait(timeout)

    def close(self) -> None:
        """Store what is queued, then stop the writer."""
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            self._asleep = True  # before looking, so a record appended after is seen
            if not (self._pending or self._flushes or self._stopping):
                self._wake.wait()
            self._asleep = False
            if not (self._flushes or self._stopping) and len(self._pending) < BATCH_SIZE:
                self._wake.clear()
                self._wake.wait(GATHER_S)
            self._wake.clear()
            waiters: list[threading.Event] = []
            while self._flushes:
                waiters.append(self._flushes.popleft())
            stopping = self._stopping
            while self._pending:  # everything recorded before the flushes were asked
                batch: list[_Pending] = []
                while self._pending and len(batch) < BATCH_SIZE:
                    batch.append(self._pending.popleft())
                self._write(batch)
            for waiter in waiters:
                waiter.set()
            if stopping:
                return

    def _write(self, batch: list[_Pending]) -> None:
        if not batch:
            return
        try:
            self._insert(batch)
        except Exception as exc:  # statistics must never break invocations
            log.warning("could not store %d invocation(s): %s", len(batch), exc)
        texts = [pending[0].logs for pending in batch if pending[0].logs]
        if not texts:
            return
        if self._log_dir is not None:
            _append_logs(self._log_dir, batch)
        if log.isEnabledFor(logging.INFO):
            log.info("%s", "\n".join([report_of(text) for text in texts]))


class _Insert:
    """Inserts queued invocations as rows in one transaction, through the driver.

    SQLAlchemy's Core would build a parameter dictionary and run type processors per
    row, and a driver's ``executemany`` releases and retakes the interpreter lock per
    row, each time making the event loop's thread hand it over; so rows go in
    ``CHUNK_ROWS`` at a time, in one multi-row ``INSERT … VALUES`` statement (the
    driver keeps it prepared), the rest with ``executemany``. Values are what the driver
    takes (``str``, ``int``, ``float``, ``None``); the start time is converted as
    SQLAlchemy converts a ``DateTime`` for the dialect.
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

    def __call__(self, batch: list[_Pending]) -> None:
        convert = self._started_at
        rows = [_row(*pending, convert) for pending in batch]
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
    datetime or from seconds since the epoch (UTC); the part to the second is made
    once per second."""

    __slots__ = ("_second", "_text")

    def __init__(self) -> None:
        self._second = -1
        self._text = ""

    def __call__(self, value: datetime | float) -> str:
        if isinstance(value, datetime):
            return value.isoformat(" ", "microseconds")[:26]
        second = int(value)
        if second != self._second:
            self._second = second
            self._text = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(second))
        return f"{self._text}.{int((value - second) * 1_000_000):06d}"


def _datetime_for(convert: Callable[[datetime], Any], value: datetime | float) -> Any:
    if not isinstance(value, datetime):
        value = datetime.fromtimestamp(value, UTC)
    return convert(value)


def _same(value: datetime) -> datetime:
    return value


def _row(
    inv: Invocation,
    source: str,
    invocation_type: str,
    attempt: int,
    started_at: datetime | float,
    convert: Callable[[datetime | float], Any],
) -> tuple[Any, ...]:
    """A row's values in :data:`_COLUMNS` order, with the invocation's cost (a
    throttled call never ran and costs nothing, as Lambda does not bill it)."""
    if inv.outcome == "throttled":
        gb_seconds = usd = 0.0
    else:
        gb_seconds, usd = cost_values(inv.memory_mb, inv.billed_ms)
    failure = inv.failure
    init_ms = inv.init_ms
    return (
        inv.request_id,
        inv.function,
        source,
        invocation_type,
        attempt,
        inv.outcome,
        None if failure is None else failure.error_type[:128],
        convert(started_at),
        float(inv.duration_ms),
        inv.billed_ms,
        inv.memory_mb,
        inv.max_memory_used_mb,
        None if init_ms is None else float(init_ms),
        gb_seconds,
        usd,
    )


def report_of(logs: str) -> str:
    """The ``REPORT`` line of an invocation's log text (its last line)."""
    end = len(logs) - 1 if logs.endswith("\n") else len(logs)
    return logs[logs.rfind("\n", 0, end) + 1 : end]


def _append_logs(folder: Path, batch: Iterable[_Pending]) -> None:
    """One write per function's file (opened for appending, so ``tail -f`` and other
    writers see whole batches); the folder is made when missing."""
    by_function: dict[str, list[str]] = defaultdict(list)
    for pending in batch:
        invocation = pending[0]
        if invocation.logs:
            by_function[invocation.function].append(invocation.logs)
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


# --- reading ---------------------------------------------------------------------------


class _Sample(NamedTuple):
    function: str
    source: str
    outcome: str
    duration_ms: float
    init_ms: float | None
    gb_seconds: float
    cost_usd: float


def function_stats(
    engine: sa.Engine, *, function: str | None = None, since: datetime | None = None
) -> list[FunctionStats]:
    """Per function (source ``*``), then per function and source, sorted by name."""
    ensure_tables(engine, _meta)
    t = invocations_table.c
    query = sa.select(
        t.function, t.source, t.outcome, t.duration_ms, t.init_ms, t.gb_seconds, t.cost_usd
    )
    if function is not None:
        query = query.where(t.function == function)
    if since is not None:
        query = query.where(t.started_at >= since)
    groups: dict[tuple[str, str], list[_Sample]] = defaultdict(list)
    with engine.connect() as conn:
        for row in conn.execute(query):
            sample = _Sample(*row)
            groups[(sample.function, ALL_SOURCES)].append(sample)
            groups[(sample.function, sample.source)].append(sample)
    result = [_aggregate(fn, source, rows) for (fn, source), rows in groups.items()]
    result.sort(key=lambda s: (s.function, s.source != ALL_SOURCES, s.source))
    return result


def _aggregate(function: str, source: str, rows: list[_Sample]) -> FunctionStats:
    ran = [r for r in rows if r.outcome != "throttled"]
    durations = sorted(r.duration_ms for r in ran)
    return FunctionStats(
        function=function,
        source=source,
        invocations=len(ran),
        errors=sum(1 for r in ran if r.outcome in ERROR_OUTCOMES),
        throttles=len(rows) - len(ran),
        cold_starts=sum(1 for r in ran if r.init_ms is not None),
        p50_ms=percentile(durations, 50),
        p99_ms=percentile(durations, 99),
        gb_seconds=sum(r.gb_seconds for r in ran),
        cost_usd=sum(r.cost_usd for r in ran),
    )


def percentile(ordered: list[float], pct: float) -> float | None:
    """Nearest-rank percentile of an ascending list (CloudWatch's ``pNN`` is too)."""
    if not ordered:
        return None
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def now() -> datetime:
    return datetime.now(UTC)
