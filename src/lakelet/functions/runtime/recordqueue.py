"""Invocations queued by the serving thread(s) and taken in batches by one writer thread.

Queuing is the only work left on the serving path: the invocation's record, packed as
plain values (:func:`~lakelet.functions.runtime.invocationrows.pack`), appended to a
deque, and a wake-up only when the writer sleeps (or a batch is full). The writer, woken
by the first record after a quiet spell, gathers for :data:`GATHER_S` and takes what came, in
batches of at most :data:`BATCH_SIZE`, with the flushes asked before it took them. The
thread writer (:mod:`.stats`) stores the batches itself; the recorder pipe
(:mod:`.recorderpipe`) sends them to the recorder process.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from lakelet.functions.invocation import Invocation
from lakelet.functions.runtime.invocationrows import Packed, pack

BATCH_SIZE = 500
GATHER_S = 0.05  # how long the writer collects records before taking a batch


@dataclass(frozen=True)
class Round:
    """What the writer takes at once: the batches, the flushes asked before them (set
    them once the batches are stored), and whether the queue is stopping."""

    batches: list[list[Packed]]
    flushes: list[threading.Event]
    stopping: bool


class RecordQueue:
    """The queue between the serving thread(s) and one writer thread."""

    def __init__(self) -> None:
        self._pending: deque[Packed] = deque()
        self._flushes: deque[threading.Event] = deque()
        self._wake = threading.Event()
        self._asleep = False  # the writer waits for a record (set before it checks)
        self._stopping = False

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
        start = time.time() if started_at is None else started_at
        pending.append(pack(invocation, source, invocation_type, attempt, start))
        if self._asleep or len(pending) >= BATCH_SIZE:
            self._asleep = False
            self._wake.set()

    def add_queued(self, queued: list[Packed]) -> None:
        """Queue invocations another writer had queued (in their order)."""
        self._pending.extend(queued)
        self._wake.set()

    def flush(self, timeout: float | None = 30.0) -> None:
        """Wait until the writer has stored every invocation queued so far."""
        done = threading.Event()
        self._flushes.append(done)
        self._wake.set()
        done.wait(timeout)

    def stop(self) -> None:
        """Let the writer take what is queued, then end its rounds."""
        self._stopping = True
        self._wake.set()

    def rounds(self) -> Iterator[Round]:
        """The writer's rounds, until the one taken after :meth:`stop`."""
        while True:
            self._asleep = True  # before looking, so a record appended after is seen
            if not (self._pending or self._flushes or self._stopping):
                self._wake.wait()
            self._asleep = False
            if not (self._flushes or self._stopping) and len(self._pending) < BATCH_SIZE:
                self._wake.clear()
                self._wake.wait(GATHER_S)
            self._wake.clear()
            flushes: list[threading.Event] = []
            while self._flushes:
                flushes.append(self._flushes.popleft())
            stopping = self._stopping
            batches: list[list[Packed]] = []
            while self._pending:  # everything recorded before the flushes were asked
                batch: list[Packed] = []
                while self._pending and len(batch) < BATCH_SIZE:
                    batch.append(self._pending.popleft())
                batches.append(batch)
            yield Round(batches, flushes, stopping)
            if stopping:
                return
