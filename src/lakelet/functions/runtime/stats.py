"""Every invocation, stored with its cost, and the figures ``lakelet functions stats`` shows.

Storing an invocation adds nothing to its latency and little to the serving process's
work: recording appends a tuple to a queue. By default a process of its own stores
them (see :mod:`lakelet.functions.runtime.recorderpipe`): converting values,
inserting rows, appending each invocation's log (START … REPORT) to a per-function file
when the runtime has a log folder, like a CloudWatch log group, and logging the
``REPORT`` lines at ``INFO`` (``lakelet up`` shows them) all take CPU time that, in a
thread, would hold the interpreter lock the event loop serving requests needs. Where
that process cannot be used (a database in memory, a process that will not start or
that died), a background thread of this process does the same (:class:`ThreadWriter`).
Either way :meth:`InvocationRecorder.flush` (and ``close``) waits until what was
recorded so far is stored.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import NamedTuple, Protocol

import sqlalchemy as sa

from lakelet.functions.invocation import Invocation
from lakelet.functions.runtime.invocationrows import (
    BatchStore,
    invocation_metadata,
    invocations_table,
)
from lakelet.functions.runtime.recordqueue import RecordQueue
from lakelet.metadata import ensure_tables

ERROR_OUTCOMES = ("error", "timeout", "out_of_memory")
ALL_SOURCES = "*"

log = logging.getLogger("lakelet.functions")

_OLD_REQUEST_ID_INDEX = "ix_function_invocations_request_id"

__all__ = [
    "FunctionStats",
    "InvocationRecorder",
    "Record",
    "ThreadWriter",
    "function_stats",
    "invocations_table",
    "percentile",
]


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


class AddInvocation(Protocol):
    """Queues an invocation (``started_at``: a datetime or seconds since the epoch;
    default now)."""

    def __call__(
        self,
        invocation: Invocation,
        source: str,
        invocation_type: str = ...,
        attempt: int = ...,
        started_at: datetime | float | None = ...,
    ) -> None: ...


class Sink(Protocol):
    """Where a recorder's invocations go: :class:`ThreadWriter` or the process (whose
    writer thread hands what is queued to a :class:`ThreadWriter` once it died)."""

    @property
    def add(self) -> AddInvocation: ...

    def flush(self, timeout: float | None = ...) -> None: ...

    def close(self) -> None: ...


class InvocationRecorder:
    """Stores invocations in the metadata database, from a process of its own or,
    with ``in_process`` (or when that process cannot be used), a background thread."""

    def __init__(
        self, engine: sa.Engine, *, log_dir: Path | None = None, in_process: bool = False
    ) -> None:
        ensure_tables(engine, invocation_metadata)
        with engine.begin() as conn:  # what earlier versions made (nothing looks it up)
            conn.execute(sa.text(f"DROP INDEX IF EXISTS {_OLD_REQUEST_ID_INDEX}"))
        in_thread = partial(ThreadWriter, engine, log_dir)
        sink: Sink | None = None
        if not in_process:
            from lakelet.functions.runtime.recorderpipe import start_recorder_process

            sink = start_recorder_process(engine, log_dir, in_thread)
        self._sink: Sink = sink or in_thread()
        self.add: AddInvocation = self._sink.add  # per request: no call in between

    @property
    def pid(self) -> int | None:
        """The recorder process's id; ``None`` when this process stores invocations."""
        return getattr(self._sink, "pid", None)

    def record(self, record: Record) -> None:
        """Queue ``record``."""
        self._sink.add(
            record.invocation,
            record.source,
            record.invocation_type,
            record.attempt,
            record.started_at,
        )

    def flush(self, timeout: float | None = 30.0) -> None:
        """Wait until every invocation recorded so far is stored."""
        self._sink.flush(timeout)

    def close(self) -> None:
        """Store what is queued, then stop the writer."""
        self._sink.close()


class ThreadWriter(RecordQueue):
    """Stores invocations from a background thread of this process, woken by the first
    record after a quiet spell; it gathers for a moment and writes what came in one
    transaction (see :class:`~lakelet.functions.runtime.invocationrows.BatchStore`)."""

    def __init__(self, engine: sa.Engine, log_dir: Path | None) -> None:
        super().__init__()
        self._store = BatchStore(engine, log_dir)
        self._thread = threading.Thread(target=self._run, name="lakelet-fn-stats", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Store what is queued, then stop the writer."""
        self.stop()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        for taken in self.rounds():
            for batch in taken.batches:
                self._store.write(batch)
            for flush in taken.flushes:
                flush.set()


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
    ensure_tables(engine, invocation_metadata)
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
