"""An invocation waiting for its worker's reply on an asyncio event loop.

The gateway's requests wait without a thread each: the worker's socket is watched by
the loop's selector (see :meth:`WorkerPool.watch`), each readable event is one
``recv``, and the reply, once whole, resolves the call's future. Everything after the
send (the reply, the worker's death, the result) runs as loop callbacks rather than in
the awaiting coroutine, so a caller that gives up (a cancelled request) still leaves
the worker, the concurrency slot and the statistics in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
from collections.abc import Callable
from typing import Any

from lakelet.functions.invocation import Invocation
from lakelet.functions.model import FunctionSpec
from lakelet.functions.runtime import protocol
from lakelet.functions.runtime.pool import Worker

Done = Callable[["PendingCall", "dict[str, Any] | None"], None]


class PendingCall:
    """One synchronous invocation in flight on ``loop``; ``future`` gets its result."""

    __slots__ = (
        "_buffer",
        "_done",
        "finished",
        "future",
        "loop",
        "request",
        "request_id",
        "sent",
        "source",
        "spec",
        "started_at",
        "worker",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        spec: FunctionSpec,
        request_id: str,
        request: bytes,
        source: str,
        started_at: float,
        done: Done,
    ) -> None:
        self.loop = loop
        self.spec = spec
        self.request_id = request_id
        self.request = request
        self.source = source
        self.started_at = started_at
        self.future: asyncio.Future[Invocation] = loop.create_future()
        self.worker: Worker | None = None
        self.sent = 0.0
        self.finished = False
        self._buffer: protocol.FrameBuffer | None = None
        self._done = done

    def send(self) -> None:
        """Write the request to the worker (unless it went in before the fork). The
        socket's buffer is empty, so a usual request goes in one non-blocking ``send``;
        a failed write shows up as the socket's end of stream, like any death."""
        worker = self.worker
        assert worker is not None
        request, self.request = self.request, b""
        if worker.request_sent:
            return
        try:
            written = worker.sock.send(request)
        except BlockingIOError:
            written = 0
        except OSError:
            return
        if written < len(request):
            self.loop.create_task(self._send_rest(request[written:]))

    async def _send_rest(self, rest: bytes) -> None:
        assert self.worker is not None
        with contextlib.suppress(OSError):  # a worker gone shows as its socket's end
            await self.loop.sock_sendall(self.worker.sock, rest)

    def readable(self) -> None:
        """The worker's socket has bytes (or ended): read once, finish when whole."""
        worker = self.worker
        assert worker is not None
        try:
            chunk = worker.sock.recv(protocol.READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._done(self, None)
            return
        try:
            body = self._frame(chunk)
            if body is None:
                return
            reply = protocol.decode(body)
        except protocol.ChannelClosed:
            self._done(self, None)
            return
        self._done(self, reply)

    def orphaned(self) -> None:
        """Its loop has closed (the caller is gone); the pool's watcher calls this each
        tick instead, until the worker's reply or end: the invocation still finishes,
        is stored and gives its worker and slot back."""
        worker = self.worker
        if self.finished or worker is None:
            return
        if self.request and not worker.request_sent:  # it never went to the worker
            self._done(self, None)
            return
        poller = select.poll()
        poller.register(worker.sock.fileno(), select.POLLIN)
        if poller.poll(0):
            self.readable()

    def resolve(self, outcome: Invocation | BaseException) -> None:
        """Give the waiting caller its result, if it still waits."""
        if self.future.done():
            return
        try:
            if isinstance(outcome, BaseException):
                self.future.set_exception(outcome)
            else:
                self.future.set_result(outcome)
        except RuntimeError:  # the loop closed: nobody waits
            pass

    def _frame(self, chunk: bytes) -> bytes | None:
        if self._buffer is None:
            header = protocol.HEADER.size
            if (
                len(chunk) >= header
                and protocol.HEADER.unpack_from(chunk)[0] == len(chunk) - header
            ):
                return chunk[header:]  # the usual case: the whole reply in one read
            self._buffer = protocol.FrameBuffer()
        self._buffer.feed(chunk)
        return self._buffer.next_frame()
