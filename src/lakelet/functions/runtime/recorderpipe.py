"""The serving process's end of the invocation recorder process, fed through a pipe.

Converting an invocation's values, inserting its row through the database driver,
appending its log to a file and logging its ``REPORT`` line cost the serving process's
CPU under the interpreter lock its event loop needs. So the serving process only
queues a tuple of plain values per invocation; a thread, woken by the first record after
a quiet spell, gathers for a moment and writes the batch to the pipe as one
:mod:`marshal` frame. The recorder process (:mod:`lakelet.functions.runtime.recorder`)
stores each batch and then acknowledges it; a flush waits for the acknowledgement of
the last batch sent.

It is started without waiting for it (batches wait in the pipe while it imports). If
it cannot start or dies, an error is logged and the invocations not acknowledged, with
every later one, are stored by a thread of the serving process instead: nothing
recorded is lost (a batch stored just before a death may be stored twice). It stops at
the end of its input, which ends when the recorder closes or the serving process dies
(it stores what was sent first); it runs in a process group of its own, so Ctrl-C in a
terminal reaches only the serving process, which then closes it in order.

``REPORT`` lines: when the serving process's logging sends ``lakelet.functions``'s
records only to plain stream handlers on file descriptors with ``%``-style formatters
(as ``lakelet up``'s does), the recorder process logs to the same descriptors in the
same formats; otherwise (a test's capture, a file handler) it sends its log messages
back with each acknowledgement, and they are logged by the serving process.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import marshal
import os
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from lakelet.functions.runtime import protocol
from lakelet.functions.runtime.invocationrows import Packed
from lakelet.functions.runtime.recorder import MODULE, HandlerSpec
from lakelet.functions.runtime.recordqueue import RecordQueue

if TYPE_CHECKING:
    import sqlalchemy as sa

    from lakelet.functions.runtime.stats import ThreadWriter

STOP_TIMEOUT_S = 30.0
PIPE_BYTES = 1024 * 1024  # what Linux lets a user ask for without privileges

log = logging.getLogger("lakelet.functions")


def start_recorder_process(
    engine: sa.Engine, log_dir: Path | None, fallback: Callable[[], ThreadWriter]
) -> RecorderProcess | None:
    """A recorder process for ``engine``'s database, or ``None`` when another process
    cannot open it (a database in memory) or the process cannot be started."""
    url = reopenable_url(engine)
    if url is None:
        return None
    try:
        return RecorderProcess(url, log_dir, fallback)
    except OSError as exc:
        log.warning("could not start the invocation recorder process (%s); storing here", exc)
        return None


def reopenable_url(engine: sa.Engine) -> str | None:
    """The URL another process opens ``engine``'s database with (password included),
    or ``None`` for a database only this process can see."""
    url = engine.url
    backend = url.get_backend_name()
    if backend == "sqlite":
        database = url.database
        if not database or database == ":memory:" or database.startswith("file:"):
            return None
        if url.query.get("mode") == "memory":
            return None
        url = url.set(database=os.path.abspath(database))
    elif not (backend == "postgresql" and url.get_driver_name() == "psycopg"):
        return None
    return url.render_as_string(hide_password=False)


class RecorderProcess(RecordQueue):
    """The serving process's end: queues invocations and feeds the recorder process."""

    def __init__(
        self, url: str, log_dir: Path | None, fallback: Callable[[], ThreadWriter]
    ) -> None:
        super().__init__()
        self._make_fallback = fallback
        self._fallback: ThreadWriter | None = None
        self._lock = threading.Lock()
        self._waiting: list[tuple[int, threading.Event]] = []  # (batch, flush) acks due
        self._unacked: deque[tuple[int, list[Packed]]] = deque()
        self._sent = 0  # number of the last batch sent
        self._dead = False
        self._input_closed = False
        handlers, level = log_setup(log)
        duplicates: dict[int, int] = {}
        if handlers is not None:  # the recorder's own copies of the descriptors
            for fd in {spec[0] for spec in handlers}:
                duplicates[fd] = os.dup(fd)
            handlers = [(duplicates[spec[0]], *spec[1:]) for spec in handlers]
        self._config = {
            "url": url,
            "log_dir": None if log_dir is None else str(log_dir),
            "level": level,
            "handlers": handlers,
        }
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", MODULE],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                pass_fds=tuple(duplicates.values()),
                process_group=0,
                env=_environment(),
                bufsize=0,
            )
        finally:
            for fd in duplicates.values():
                os.close(fd)
        assert self._process.stdin is not None and self._process.stdout is not None
        self._input = self._process.stdin
        self._output = self._process.stdout
        with contextlib.suppress(AttributeError, OSError):  # Linux: room for a slow spell
            fcntl.fcntl(self._input.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        self._writer = threading.Thread(target=self._write, name="lakelet-fn-stats", daemon=True)
        self._reader = threading.Thread(target=self._read, name="lakelet-fn-acks", daemon=True)
        self._writer.start()
        self._reader.start()

    @property
    def pid(self) -> int | None:
        """The recorder process's id while it stores the invocations."""
        return None if self._dead else self._process.pid

    def close(self) -> None:
        """Send what is queued, end the recorder process's input and wait for it to
        store everything and exit (killed if it does not within a while)."""
        self.stop()
        self._writer.join(timeout=STOP_TIMEOUT_S)
        self._reader.join(timeout=STOP_TIMEOUT_S)
        if self._reader.is_alive():
            with contextlib.suppress(OSError):
                self._process.kill()
            self._reader.join(timeout=STOP_TIMEOUT_S)
        fallback = self._fallback
        if fallback is not None:
            fallback.close()

    # --- the writer thread -----------------------------------------------------------

    def _write(self) -> None:
        try:
            self._send_frame(marshal.dumps(self._config))
        except OSError as exc:
            self._died(f"could not be given its settings ({exc})")
        for taken in self.rounds():
            for batch in taken.batches:
                self._send(batch)
            if taken.flushes:
                self._when_stored(taken.flushes)
            if taken.stopping:
                with self._lock:
                    self._input_closed = True
                with contextlib.suppress(OSError):
                    self._input.close()

    def _send(self, batch: list[Packed]) -> None:
        with self._lock:
            fallback = self._fallback if self._dead else None
            if fallback is None:
                self._sent += 1
                number = self._sent
                self._unacked.append((number, batch))
        if fallback is not None:
            fallback.add_queued(batch)
            return
        try:
            frame = marshal.dumps((number, batch))
        except ValueError as exc:  # a value marshal cannot carry: store it here
            self._died(f"was given a value it cannot read ({exc})")
            return
        try:
            self._send_frame(frame)
        except OSError as exc:
            self._died(f"stopped reading its input ({exc})")

    def _send_frame(self, body: bytes) -> None:
        data = memoryview(protocol.HEADER.pack(len(body)) + body)
        fd = self._input.fileno()
        while data:
            data = data[os.write(fd, data) :]

    def _when_stored(self, waiters: list[threading.Event]) -> None:
        """Set the flushes' events once the last batch sent is acknowledged."""
        with self._lock:
            fallback = self._fallback if self._dead else None
            if fallback is None and self._unacked:
                self._waiting.extend((self._sent, waiter) for waiter in waiters)
                return
        if fallback is not None:
            fallback.flush()
        for waiter in waiters:
            waiter.set()

    # --- the reader thread -----------------------------------------------------------

    def _read(self) -> None:
        fd = self._output.fileno()
        buffer = protocol.FrameBuffer()
        while True:
            try:
                chunk = os.read(fd, protocol.READ_SIZE)
            except OSError:
                chunk = b""
            if not chunk:
                break
            buffer.feed(chunk)
            try:
                while (body := buffer.next_frame()) is not None:
                    number, messages = marshal.loads(body)
                    for level, text in messages:
                        log.log(level, "%s", text)
                    self._acknowledged(number)
            except (protocol.ChannelClosed, EOFError, ValueError, TypeError) as exc:
                with contextlib.suppress(OSError):
                    self._process.kill()
                self._died(f"answered what is not an acknowledgement ({exc})")
        status = self._process.wait()
        self._output.close()
        with self._lock:
            clean = self._input_closed and not self._unacked
        if not clean:
            self._died(f"exited with status {status}")

    def _acknowledged(self, number: int) -> None:
        with self._lock:
            unacked = self._unacked
            while unacked and unacked[0][0] <= number:
                unacked.popleft()
            done = [waiter for upto, waiter in self._waiting if upto <= number]
            self._waiting = [(upto, w) for upto, w in self._waiting if upto > number]
        for waiter in done:
            waiter.set()

    # --- death -----------------------------------------------------------------------

    def _died(self, reason: str) -> None:
        """Store everything from now on in this process, starting with what the
        recorder process did not acknowledge."""
        with self._lock:
            if self._dead:
                return
            fallback = self._make_fallback()
            for _, batch in self._unacked:
                fallback.add_queued(batch)
            self._unacked.clear()
            waiting = [waiter for _, waiter in self._waiting]
            self._waiting.clear()
            self._fallback = fallback
            self._dead = True
        log.error(
            "the invocation recorder process (pid %d) %s; storing invocations in this "
            "process from now on",
            self._process.pid,
            reason,
        )
        if waiting:
            fallback.flush()
            for waiter in waiting:
                waiter.set()


def log_setup(logger: logging.Logger) -> tuple[list[HandlerSpec] | None, int]:
    """How the recorder process can log as ``logger`` does: the handlers it would use
    (``None``: not reproducible, send the messages back) and its effective level."""
    level = logger.getEffectiveLevel()
    handlers: list[logging.Handler] = []
    current: logging.Logger | None = logger
    while current is not None:
        if current.filters or current.disabled:
            return None, level
        handlers.extend(current.handlers)
        current = current.parent if current.propagate else None
    specs = []
    for handler in handlers:
        spec = _handler_spec(handler)
        if spec is None:
            return None, level
        specs.append(spec)
    return specs, level


def _handler_spec(handler: logging.Handler) -> HandlerSpec | None:
    """A plain stream handler on a file descriptor, with a plain ``%`` formatter."""
    kind = type(handler)
    if (
        not isinstance(handler, logging.StreamHandler)
        or handler.filters
        or kind.emit is not logging.StreamHandler.emit
        or kind.handle is not logging.Handler.handle
        or kind.format is not logging.Handler.format
    ):
        return None
    formatter = handler.formatter or logging.Formatter()
    if type(formatter) is not logging.Formatter or type(formatter._style) is not (
        logging.PercentStyle
    ):
        return None
    if formatter.converter is time.gmtime:
        utc = True
    elif formatter.converter is time.localtime:
        utc = False
    else:
        return None
    stream = handler.stream
    try:
        fd = stream.fileno()
        stream.flush()
    except (AttributeError, OSError, ValueError):
        return None
    encoding = getattr(stream, "encoding", None) or "utf-8"
    errors = getattr(stream, "errors", None) or "strict"
    return (
        fd,
        handler.level,
        formatter._fmt,
        formatter.datefmt,
        utc,
        handler.terminator,
        encoding,
        errors,
    )


def _environment() -> dict[str, str]:
    """This process's environment, with this package importable as it is here."""
    environment = dict(os.environ)
    root = str(Path(__file__).resolve().parents[3])
    known = environment.get("PYTHONPATH")
    environment["PYTHONPATH"] = root if not known else f"{root}{os.pathsep}{known}"
    return environment
