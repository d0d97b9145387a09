"""Warm workers: reused while busy, stopped when idle too long, killed when over memory
or past their function's timeout.

Each function keeps a stack of idle workers; a call takes the most recently used one
(so the others age out, as Lambda's environments do) or forks a new one from the
zygote. One watcher thread enforces the limits of busy workers: it kills a worker at
its deadline (Lambda's ``Sandbox.Timedout``) or, sampling every few milliseconds one
busy for a few ticks, over its function's memory size (``Runtime.OutOfMemory``); the
caller then sees the worker's socket close and reports why. It also stops workers idle
for longer than ``idle_timeout_s``: with no traffic the pool scales to zero. Nothing on
a call's path wakes the watcher while it is polling, so a call costs it nothing; and
while every call is short, it wakes only every few ticks (each wake takes the GIL from
the event loop serving the calls).

A worker's socket may be watched by event loops (see
:mod:`lakelet.functions.runtime.replies`); closing it then goes through those loops,
so a selector never keeps a descriptor number that the process reuses.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import select
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lakelet.functions.runtime.worker import WorkerConfig
from lakelet.functions.runtime.zygote import MAX_PRELUDE_BYTES, Zygote

IDLE_CHECK_MAX_S = 1.0
POLL_LINGER_S = 1.0  # the watcher keeps polling this long after the last busy worker
SAMPLE_AFTER_TICKS = 5  # a worker busy this many ticks is sampled (short calls: never)
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

log = logging.getLogger("lakelet.functions")


@dataclass(eq=False)
class Worker:
    """The runtime's handle on one execution environment."""

    function: str
    pid: int
    sock: socket.socket
    spawned_ns: int
    memory_limit_bytes: int
    forked_ns: int = 0  # when the zygote answered with the pid
    pidfd: int | None = None
    last_used: float = field(default_factory=time.monotonic)
    invocations: int = 0
    request_sent: bool = False  # the first invocation went in before the fork
    killed_for: str | None = None  # "out_of_memory" or "timeout" when the pool killed it
    peak_rss_bytes: int = 0
    last_words: str = ""  # its log, read just before the pool killed it
    busy_since: float = 0.0  # time.monotonic() when its current invocation was sent
    deadline: float = math.inf  # past it, the watcher kills the worker ("timeout")
    loops: set[asyncio.AbstractEventLoop] = field(default_factory=set)  # watching sock
    closing: bool = False
    call: Any = None  # the asynchronous invocation waiting for its reply, if any

    @property
    def cold(self) -> bool:
        return self.invocations == 0


class WorkerPool:
    """Per-function idle workers over one zygote (thread-safe)."""

    def __init__(
        self, zygote: Zygote, *, idle_timeout_s: float, memory_poll_s: float = 0.01
    ) -> None:
        self.zygote = zygote
        self.idle_timeout_s = idle_timeout_s
        self.memory_poll_s = memory_poll_s
        self._lock = threading.Lock()
        self._fd_lock = threading.Lock()  # Worker.loops and Worker.closing
        self._idle: dict[str, list[Worker]] = {}
        self._busy: set[Worker] = set()
        self._wake = threading.Event()
        self._polling = False  # the watcher wakes every memory_poll_s (under _lock)
        self._stopping = False
        self._watcher = threading.Thread(target=self._watch, name="lakelet-fn-pool", daemon=True)
        self._watcher.start()

    # --- lending ---------------------------------------------------------------------

    def take(self, function: str, loop: asyncio.AbstractEventLoop | None = None) -> Worker | None:
        """An idle worker of ``function``, now busy, or ``None`` (the call is cold).

        One that exited while idle is skipped: its socket is readable. ``loop`` (the
        running one) already watches the socket of a worker in ``Worker.loops``, and
        would have stopped if it had ended, so such a worker needs no check."""
        gone: list[Worker] = []
        found = None
        wake = False
        with self._lock:
            idle = self._idle.get(function)
            while idle:
                worker = idle.pop()
                if loop not in worker.loops and _gone(worker):
                    gone.append(worker)
                    continue
                self._busy.add(worker)
                wake = not self._polling
                found = worker
                break
        for worker in gone:
            self._close(worker)
        if wake:
            self._wake.set()
        return found

    def spawn(
        self, function: str, config: Callable[[], WorkerConfig], request: bytes = b""
    ) -> Worker:
        """A new, busy worker forked with ``config()``.

        It gets ``request`` (an encoded invocation) before it even exists when it is
        small; ``Worker.request_sent`` says so. Raises
        :class:`~lakelet.functions.runtime.zygote.SpawnFailed` when the function's code
        cannot be loaded."""
        wanted = config()
        prelude = request if len(request) <= MAX_PRELUDE_BYTES else b""
        spawned = self.zygote.spawn(wanted, prelude)
        worker = Worker(
            function=function,
            pid=spawned.pid,
            sock=spawned.sock,
            spawned_ns=spawned.started_ns,
            forked_ns=time.monotonic_ns(),
            memory_limit_bytes=wanted.memory_mb * 1024 * 1024,
            pidfd=_pidfd(spawned.pid),
            request_sent=spawned.prelude_sent,
        )
        with self._lock:
            stopping = self._stopping
            if not stopping:
                self._busy.add(worker)
                wake = not self._polling
        if stopping:
            self._close(worker)
            raise RuntimeError("the worker pool is closed")
        if wake:
            self._wake.set()
        return worker

    def checkout(
        self, function: str, config: Callable[[], WorkerConfig], request: bytes = b""
    ) -> Worker:
        """A warm worker of ``function`` (:meth:`take`), or a new one (:meth:`spawn`)."""
        return self.take(function) or self.spawn(function, config, request)

    @staticmethod
    def sent(worker: Worker, timeout_s: float) -> float:
        """Note that an invocation went to ``worker``: its deadline starts now."""
        now = time.monotonic()
        worker.busy_since = now
        worker.deadline = now + timeout_s
        return now

    def checkin(self, worker: Worker) -> None:
        """Return a worker that answered; it waits for the next call of its function.
        The watcher is polling while any worker is busy, so it need not be woken."""
        worker.invocations += 1
        worker.request_sent = False
        worker.deadline = math.inf
        worker.last_used = time.monotonic()
        with self._lock:
            self._busy.discard(worker)
            if not (self._stopping or worker.killed_for is not None):
                idle = self._idle.get(worker.function)
                if idle is None:
                    self._idle[worker.function] = [worker]
                else:
                    idle.append(worker)
                return
        self._close(worker)

    def discard(self, worker: Worker) -> None:
        """Forget a worker that failed, killing it if it still runs."""
        with self._lock:
            self._busy.discard(worker)
        self._kill(worker)
        self._close(worker)

    def kill(self, worker: Worker, reason: str) -> None:
        worker.killed_for = reason
        self._kill(worker)

    def stop_idle(self, function: str | None = None) -> int:
        """Stop idle workers now (of ``function``, or all); the next call is cold."""
        with self._lock:
            names = list(self._idle) if function is None else [function]
            stopped = [w for name in names for w in self._idle.pop(name, [])]
        for worker in stopped:
            self._close(worker)
        return len(stopped)

    def idle_count(self, function: str | None = None) -> int:
        with self._lock:
            if function is not None:
                return len(self._idle.get(function, []))
            return sum(len(v) for v in self._idle.values())

    def busy_count(self) -> int:
        with self._lock:
            return len(self._busy)

    def close(self) -> None:
        with self._lock:
            self._stopping = True
            workers = [w for idle in self._idle.values() for w in idle] + list(self._busy)
            self._idle.clear()
        for worker in workers:
            self._kill(worker)
            self._close(worker)
        self._wake.set()
        self._watcher.join(timeout=5)

    # --- event loops watching sockets ------------------------------------------------

    def watch(self, worker: Worker, loop: asyncio.AbstractEventLoop) -> None:
        """Have ``loop`` (the running one) call ``worker.call.readable()`` when the
        worker's socket has bytes. The registration stays while the worker lives,
        so a warm worker costs its loop no system call to watch again."""
        if worker.sock.gettimeout() != 0.0:
            worker.sock.setblocking(False)
        if loop in worker.loops:
            return
        fd = worker.sock.fileno()
        loop.add_reader(fd, self._readable, worker, loop, fd)
        with self._fd_lock:
            worker.loops = {w for w in worker.loops if not w.is_closed()}  # asyncio.run's
            worker.loops.add(loop)

    def _readable(self, worker: Worker, loop: asyncio.AbstractEventLoop, fd: int) -> None:
        call = worker.call
        if call is not None and call.loop is loop:
            call.readable()
            return
        # Not this loop's call (idle, dead, or a synchronous call's reply): stop watching,
        # or the level-triggered selector would call again at once.
        loop.remove_reader(fd)
        with self._fd_lock:
            worker.loops.discard(loop)
            close = worker.closing and not worker.loops
        if close:
            worker.sock.close()

    # --- the watcher -----------------------------------------------------------------

    def _watch(self) -> None:
        last_busy = time.monotonic()
        while True:
            self._wake.clear()
            try:
                now = time.monotonic()
                with self._lock:
                    if self._stopping:
                        return
                    busy = list(self._busy)
                    any_idle = any(self._idle.values())
                    if busy:
                        last_busy = now
                    self._polling = now - last_busy < POLL_LINGER_S
                    polling = self._polling
                for worker in busy:
                    self._enforce(worker, now)
                next_idle_check = self._reap_idle() if any_idle else None
            except Exception:  # the watcher must outlive any one bad worker
                log.exception("the functions worker pool's watcher failed; going on")
                polling, next_idle_check = True, None
            if polling:
                timeout: float | None = self._until_due(busy, time.monotonic())
            elif next_idle_check is not None:
                timeout = min(next_idle_check, IDLE_CHECK_MAX_S)
            else:
                timeout = None
            self._wake.wait(timeout)

    def _until_due(self, busy: list[Worker], now: float) -> float:
        """How long the polling watcher may sleep: until a busy worker's deadline or next
        memory sample, at least a tick, at most until a call that starts now (which
        does not wake it) would be sampled."""
        tick = self.memory_poll_s
        settle = tick * SAMPLE_AFTER_TICKS
        due = settle
        for worker in busy:
            if worker.killed_for is not None:
                continue
            call = worker.call
            if call is not None and call.loop.is_closed():
                return tick  # an orphaned call: its reply is looked for every tick
            busy_for = now - worker.busy_since
            sample = settle - busy_for if busy_for < settle else tick
            due = min(due, sample, worker.deadline - now)
        return max(tick, due)

    def _enforce(self, worker: Worker, now: float) -> None:
        call = worker.call
        if call is not None and call.loop.is_closed():
            call.orphaned()  # nobody else will read its reply
        if worker.killed_for is not None:
            return
        if now >= worker.deadline:
            worker.last_words = salvage_log(worker.pid)
            worker.peak_rss_bytes = max(worker.peak_rss_bytes, resident_bytes(worker.pid) or 0)
            self.kill(worker, "timeout")
            return
        if now - worker.busy_since < self.memory_poll_s * SAMPLE_AFTER_TICKS:
            return  # busy for only a few ticks: a short invocation costs no sampling
        rss = resident_bytes(worker.pid)
        if rss is None:
            return
        worker.peak_rss_bytes = max(worker.peak_rss_bytes, rss)
        if rss > worker.memory_limit_bytes:
            worker.last_words = salvage_log(worker.pid)
            self.kill(worker, "out_of_memory")

    def _reap_idle(self) -> float | None:
        """Stop workers idle past the timeout; seconds until the next one would be."""
        now = time.monotonic()
        expired: list[Worker] = []
        soonest: float | None = None
        with self._lock:
            for function, idle in self._idle.items():
                keep = []
                for worker in idle:
                    left = worker.last_used + self.idle_timeout_s - now
                    if left <= 0:
                        expired.append(worker)
                    else:
                        keep.append(worker)
                        soonest = left if soonest is None else min(soonest, left)
                self._idle[function] = keep
        for worker in expired:
            self._close(worker)  # end of stream: the worker exits by itself
        return soonest

    # --- processes -------------------------------------------------------------------

    def _kill(self, worker: Worker) -> None:
        with contextlib.suppress(OSError):
            if worker.pidfd is not None:
                signal.pidfd_send_signal(worker.pidfd, signal.SIGKILL)
            else:
                os.kill(worker.pid, signal.SIGKILL)

    def _close(self, worker: Worker) -> None:
        """End the worker's stream. A loop watching the socket must forget it before
        the descriptor is closed: this thread does that for its own running loop; other
        loops see end of stream (``shutdown``) and the last of them closes it."""
        here = asyncio._get_running_loop()
        with self._fd_lock:
            worker.closing = True
            for loop in list(worker.loops):
                if loop.is_closed():
                    worker.loops.discard(loop)
                elif loop is here:
                    loop.remove_reader(worker.sock.fileno())
                    worker.loops.discard(loop)
            close = not worker.loops
        with contextlib.suppress(OSError):
            if close:
                worker.sock.close()
            else:
                worker.sock.shutdown(socket.SHUT_RDWR)
        if worker.pidfd is not None:
            with contextlib.suppress(OSError):
                os.close(worker.pidfd)
            worker.pidfd = None


def resident_bytes(pid: int) -> int | None:
    """A process's resident set size, from ``/proc`` (``None`` where there is none)."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as statm:
            return int(statm.read().split()[1]) * PAGE_SIZE
    except (OSError, IndexError, ValueError):
        return None


def salvage_log(pid: int) -> str:
    """What a worker about to be killed wrote during its current invocation (Linux:
    its standard output is an in-memory file, reachable through ``/proc``)."""
    try:
        with open(f"/proc/{pid}/fd/1", "rb") as out:
            return out.read(1024 * 1024).decode("utf-8", errors="replace")
    except OSError:
        return ""


def _gone(worker: Worker) -> bool:
    """An idle worker has nothing to say: a readable socket means it exited."""
    poller = select.poll()
    poller.register(worker.sock.fileno(), select.POLLIN)
    return bool(poller.poll(0))


def _pidfd(pid: int) -> int | None:
    """A descriptor for the process, so a kill never hits a recycled pid."""
    if not hasattr(os, "pidfd_open"):
        return None
    try:
        return os.pidfd_open(pid)
    except OSError:
        return None
