"""A run's ``timeout``: when it passes, interrupt whatever the run is waiting on.

The clock starts with the run. Each engine registers how to stop the work it is doing
while it does it (DuckDB's ``interrupt()``, Spark's ``cancelJobGroup``); a run that
reaches its commit after the deadline passed fails too, so a late run never writes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType

from lakelet.errors import JobError

Interrupt = Callable[[], None]


class JobTimeout(JobError):
    """The run took longer than the job's ``timeout``."""


class Deadline:
    """Fires once, ``seconds`` after it is entered (never when ``seconds`` is None)."""

    def __init__(self, seconds: int | None) -> None:
        self.seconds = seconds
        self.fired = threading.Event()
        self._lock = threading.Lock()
        self._interrupts: list[Interrupt] = []
        self._timer: threading.Timer | None = None

    def __enter__(self) -> Deadline:
        if self.seconds is not None:
            self._timer = threading.Timer(self.seconds, self._fire)
            self._timer.daemon = True
            self._timer.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._timer is not None:
            self._timer.cancel()

    @property
    def message(self) -> str:
        return f"the run exceeded its timeout of {self.seconds} s and was interrupted"

    @contextmanager
    def interrupting(self, interrupt: Interrupt) -> Iterator[None]:
        """Call ``interrupt`` if the deadline passes while the block runs."""
        with self._lock:
            if self.fired.is_set():
                raise JobTimeout(self.message)
            self._interrupts.append(interrupt)
        try:
            yield
        finally:
            with self._lock:
                self._interrupts.remove(interrupt)

    def check(self) -> None:
        """Fail if the deadline has passed (between interruptible steps)."""
        if self.fired.is_set():
            raise JobTimeout(self.message)

    def _fire(self) -> None:
        with self._lock:
            self.fired.set()
            for interrupt in list(self._interrupts):
                interrupt()
