"""Frames between the runtime, its zygote and the workers: a 4-byte length, then JSON.

JSON rather than pickle because Lambda's events and results are JSON anyway (a result
that is not fails as it would there), and because a process should never unpickle
what another one wrote. Every channel carries one request and its reply at a time, so
a frame needs no id.
"""

from __future__ import annotations

import json
import socket
import struct
import time
from decimal import Decimal
from typing import Any

HEADER = struct.Struct("!I")
MAX_FRAME_BYTES = 256 * 1024 * 1024
# One read takes a whole frame of any usual size; under malloc's mmap threshold
# (128 KiB), so the read buffer comes from the heap, not from three system calls.
READ_SIZE = 64 * 1024


class ChannelClosed(ConnectionError):
    """The other end went away (exited, was killed, or closed its socket)."""


def _jsonable(value: Any) -> Any:
    """Decimals become numbers, as Lambda's Python runtime marshals them."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


# Built once: json.dumps with options builds a new encoder on every call.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=_jsonable)
_DECODER = json.JSONDecoder()


def encode(message: dict[str, Any]) -> bytes:
    """Raises ``TypeError`` for what JSON cannot hold, with :mod:`json`'s own message."""
    body = _ENCODER.encode(message).encode("utf-8")
    if len(body) > MAX_FRAME_BYTES:
        raise ValueError(f"a frame of {len(body)} bytes is over {MAX_FRAME_BYTES}")
    return HEADER.pack(len(body)) + body


def encode_request(request_id: str, deadline_epoch_ms: int, event: Any) -> bytes:
    """An invocation for a worker: ``{"request_id", "deadline_epoch_ms", "event"}``,
    the fixed part formatted, only the event through the JSON encoder."""
    body = b'{"request_id":%s,"deadline_epoch_ms":%d,"event":%s}' % (
        _ENCODER.encode(request_id).encode("utf-8"),
        deadline_epoch_ms,
        _ENCODER.encode(event).encode("utf-8"),
    )
    if len(body) > MAX_FRAME_BYTES:
        raise ValueError(f"a frame of {len(body)} bytes is over {MAX_FRAME_BYTES}")
    return HEADER.pack(len(body)) + body


def decode(body: bytes) -> dict[str, Any]:
    """A frame's body as the JSON object it must be (:class:`ChannelClosed` if not)."""
    try:
        text = body.decode("utf-8")
        message, end = _DECODER.raw_decode(text)  # frames have no surrounding blanks
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError both are
        raise ChannelClosed(f"a frame is not JSON: {exc}") from None
    if end != len(text):
        raise ChannelClosed("a frame has bytes after its JSON value")
    if not isinstance(message, dict):
        raise ChannelClosed("a frame is not a JSON object")
    return message


def send(sock: socket.socket, message: dict[str, Any]) -> None:
    try:
        sock.sendall(encode(message))
    except (BrokenPipeError, ConnectionResetError) as exc:
        raise ChannelClosed(str(exc)) from exc


class FrameBuffer:
    """Bytes read from a channel, cut into frames: one read usually holds one frame, so
    a reader makes one system call per message rather than one per header and body."""

    __slots__ = ("_data",)

    def __init__(self) -> None:
        self._data = bytearray()

    def feed(self, chunk: bytes) -> None:
        self._data += chunk

    def next_frame(self) -> bytes | None:
        """The next whole frame's body, or ``None`` until more bytes are fed."""
        data = self._data
        if len(data) < HEADER.size:
            return None
        (size,) = HEADER.unpack_from(data)
        if size > MAX_FRAME_BYTES:
            raise ChannelClosed(f"a frame of {size} bytes is over {MAX_FRAME_BYTES}")
        end = HEADER.size + size
        if len(data) < end:
            return None
        body = bytes(data[HEADER.size : end])
        del data[:end]
        return body

    def __len__(self) -> int:
        return len(self._data)


def recv(
    sock: socket.socket, deadline: float | None = None, buffer: FrameBuffer | None = None
) -> dict[str, Any]:
    """The next frame; :class:`ChannelClosed` at end of stream, ``TimeoutError`` once
    ``deadline`` (``time.monotonic()``) passes. ``buffer`` keeps bytes read past the
    frame for the next call (without one, only the frame's bytes are read)."""
    if buffer is None:
        (size,) = HEADER.unpack(_exactly(sock, HEADER.size, deadline))
        if size > MAX_FRAME_BYTES:
            raise ChannelClosed(f"a frame of {size} bytes is over {MAX_FRAME_BYTES}")
        return decode(_exactly(sock, size, deadline))
    while True:
        body = buffer.next_frame()
        if body is not None:
            return decode(body)
        buffer.feed(_some(sock, deadline))


def _some(sock: socket.socket, deadline: float | None) -> bytes:
    if deadline is not None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("deadline passed")
        sock.settimeout(remaining)
    try:
        chunk = sock.recv(READ_SIZE)
    except ConnectionResetError as exc:
        raise ChannelClosed(str(exc)) from exc
    if not chunk:
        raise ChannelClosed("end of stream")
    return chunk


def _exactly(sock: socket.socket, size: int, deadline: float | None) -> bytes:
    buffer = bytearray(size)
    view = memoryview(buffer)
    got = 0
    while got < size:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("deadline passed")
            sock.settimeout(remaining)
        try:
            n = sock.recv_into(view[got:])
        except ConnectionResetError as exc:
            raise ChannelClosed(str(exc)) from exc
        if n == 0:
            raise ChannelClosed("end of stream")
        got += n
    return bytes(buffer)
