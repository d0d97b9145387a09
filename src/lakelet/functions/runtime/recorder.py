"""The invocation recorder process: ``python -m lakelet.functions.runtime.recorder``.

Started by :mod:`lakelet.functions.runtime.recorderpipe`, it reads its settings, then
batches of packed invocations, from standard input, stores each batch
(:class:`~lakelet.functions.runtime.invocationrows.BatchStore`) and acknowledges it on
standard output, until its input ends. It imports the database's modules only once a
first batch comes, so a recorder closed before any invocation stops at once.
"""

from __future__ import annotations

import contextlib
import logging
import marshal
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lakelet.functions.runtime import protocol

MODULE = "lakelet.functions.runtime.recorder"
NICENESS = 10

# A handler the recorder process can reproduce: file descriptor, level, format, date
# format, UTC times, line terminator, encoding and encoding errors.
HandlerSpec = tuple[int, int, "str | None", "str | None", bool, str, str, str]


def main() -> int:
    """Store the batches read from standard input, acknowledging each on standard
    output, until the input ends."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the serving process's
    with contextlib.suppress(OSError):  # bookkeeping yields the CPU to serving requests
        os.nice(NICENESS)
    acks = os.dup(1)
    os.dup2(2, 1)  # whatever prints goes to standard error, not into the acknowledgements
    frames = _frames(0)
    config: dict[str, Any] | None = None
    for body in frames:
        if config is None:
            config = marshal.loads(body)
            continue
        return _serve(config, body, frames, acks)
    return 0


def _serve(config: dict[str, Any], first: bytes, frames: Iterator[bytes], acks: int) -> int:
    messages: list[tuple[int, str]] = []
    _configure_logging(config, messages)
    from lakelet.functions.runtime.invocationrows import BatchStore
    from lakelet.metadata import open_engine

    try:
        engine = open_engine(config["url"], Path.cwd())
    except Exception as exc:
        print(f"lakelet: the invocation recorder cannot open its database: {exc}", file=sys.stderr)
        return 1
    log_dir = config["log_dir"]
    store = BatchStore(engine, None if log_dir is None else Path(log_dir))
    acking = True
    body: bytes | None = first
    while body is not None:
        number, batch = marshal.loads(body)
        store.write(batch)
        if acking:
            try:
                _write_all(acks, marshal.dumps((number, messages)))
            except OSError:  # the serving process is gone: store the rest all the same
                acking = False
        messages.clear()
        body = next(frames, None)
    engine.dispose()
    return 0


def _frames(fd: int) -> Iterator[bytes]:
    buffer = protocol.FrameBuffer()
    while True:
        chunk = os.read(fd, 1024 * 1024)
        if not chunk:
            return
        buffer.feed(chunk)
        while (body := buffer.next_frame()) is not None:
            yield body


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(protocol.HEADER.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view) :]


class _Relay(logging.Handler):
    """Keeps messages for the next acknowledgement, to be logged by the serving process."""

    def __init__(self, messages: list[tuple[int, str]]) -> None:
        super().__init__()
        self._messages = messages

    def emit(self, record: logging.LogRecord) -> None:
        self._messages.append((record.levelno, record.getMessage()))


def _configure_logging(config: dict[str, Any], messages: list[tuple[int, str]]) -> None:
    logger = logging.getLogger("lakelet.functions")
    logger.propagate = False
    specs: list[HandlerSpec] | None = config["handlers"]
    if specs is None:  # all of it: the serving process's logger decides what shows
        logger.setLevel(logging.DEBUG)
        logger.addHandler(_Relay(messages))
        return
    logger.setLevel(config["level"])
    for fd, level, fmt, datefmt, utc, terminator, encoding, errors in specs:
        stream = open(fd, "w", encoding=encoding, errors=errors, buffering=1)  # noqa: SIM115
        handler = logging.StreamHandler(stream)
        handler.setLevel(level)
        handler.terminator = terminator
        formatter = logging.Formatter(fmt, datefmt)
        formatter.converter = time.gmtime if utc else time.localtime
        handler.setFormatter(formatter)
        logger.addHandler(handler)


if __name__ == "__main__":
    sys.exit(main())
