"""Every invocation, stored with its cost, and the figures ``lakelet functions stats`` shows.

Rows are written by a background thread in batches, so storing an invocation adds
nothing to its latency: recording appends to a queue, and the thread, woken by the
first record after a quiet spell, gathers for a moment and writes what came in one
transaction; :meth:`InvocationRecorder.flush` (and ``close``) waits for them.
The same thread appends each invocation's log (START … REPORT) to a per-function file
when the runtime has a log folder, like a CloudWatch log group.
"""

from __future__ import annotations

import math
import threading
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import sqlalchemy as sa

from lakelet.functions.invocation import Invocation
from lakelet.functions.runtime.report import invocation_cost
from lakelet.metadata import ensure_tables

BATCH_SIZE = 500
GATHER_S = 0.05  # how long the writer collects records before a batch

ERROR_OUTCOMES = ("error", "timeout", "out_of_memory")
ALL_SOURCES = "*"

_meta = sa.MetaData()
invocations_table = sa.Table(
    "function_invocations",
    _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("request_id", sa.String(64), nullable=False, index=True),
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


@dataclass(frozen=True)
class Record:
    """An invocation and how it was called."""

    invocation: Invocation
    source: str
    invocation_type: str
    attempt: int
    started_at: datetime


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
        self._engine = engine
        self._log_dir = log_dir
        self._pending: deque[Record] = deque()
        self._flushes: deque[threading.Event] = deque()
        self._wake = threading.Event()
        self._asleep = False  # the writer waits for a record (set before it checks)
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="lakelet-fn-stats", daemon=True)
        self._thread.start()

    def record(self, record: Record) -> None:
        """Queue ``record``; wakes the writer only if it sleeps (or a batch is full)."""
        self._pending.append(record)
        if self._asleep or len(self._pending) >= BATCH_SIZE:
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
                batch: list[Record] = []
                while self._pending and len(batch) < BATCH_SIZE:
                    batch.append(self._pending.popleft())
                self._write(batch)
            for waiter in waiters:
                waiter.set()
            if stopping:
                return

    def _write(self, batch: list[Record]) -> None:
        if not batch:
            return
        try:
            with self._engine.begin() as conn:
                conn.execute(invocations_table.insert(), [_row(r) for r in batch])
        except sa.exc.SQLAlchemyError as exc:  # statistics must never break invocations
            import logging

            logging.getLogger("lakelet.functions").warning(
                "could not store %d invocation(s): %s", len(batch), exc
            )
        if self._log_dir is not None:
            _append_logs(self._log_dir, batch)


def _row(record: Record) -> dict[str, object]:
    inv = record.invocation
    spent = invocation_cost(inv)
    return {
        "request_id": inv.request_id,
        "function": inv.function,
        "source": record.source,
        "invocation_type": record.invocation_type,
        "attempt": record.attempt,
        "outcome": inv.outcome,
        "error_type": None if inv.failure is None else inv.failure.error_type[:128],
        "started_at": record.started_at,
        "duration_ms": inv.duration_ms,
        "billed_ms": inv.billed_ms,
        "memory_mb": inv.memory_mb,
        "max_memory_used_mb": inv.max_memory_used_mb,
        "init_ms": inv.init_ms,
        "gb_seconds": spent.gb_seconds,
        "cost_usd": spent.usd,
    }


def _append_logs(folder: Path, batch: Iterable[Record]) -> None:
    by_function: dict[str, list[str]] = defaultdict(list)
    for record in batch:
        if record.invocation.logs:
            by_function[record.invocation.function].append(record.invocation.logs)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for function, texts in by_function.items():
            with (folder / f"{function}.log").open("a", encoding="utf-8") as out:
                out.writelines(texts)
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
