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


class ChannelClosed(ConnectionError):
    """The other end went away (exited, was killed, or closed its socket)."""


def encode(message: dict[str, Any]) -> bytes:
    """Raises ``TypeError`` for what JSON cannot hold, with :mod:`json`'s own message."""
    body = json.dumps(message, separators=(",", ":"), ensure_ascii=False, default=_jsonable).encode(
        "utf-8"
    )
    if len(body) > MAX_FRAME_BYTES:
        raise ValueError(f"a frame of {len(body)} bytes is over {MAX_FRAME_BYTES}")
    return HEADER.pack(len(body)) + body


def send(sock: socket.socket, message: dict[str, Any]) -> None:
    try:
        sock.sendall(encode(message))
    except (BrokenPipeError, ConnectionResetError) as exc:
        raise ChannelClosed(str(exc)) from exc


def recv(sock: socket.socket, deadline: float | None = None) -> dict[str, Any]:
    """The next frame; :class:`ChannelClosed` at end of stream, ``TimeoutError`` once
    ``deadline`` (``time.monotonic()``) passes."""
    (size,) = HEADER.unpack(_exactly(sock, HEADER.size, deadline))
    if size > MAX_FRAME_BYTES:
        raise ChannelClosed(f"a frame of {size} bytes is over {MAX_FRAME_BYTES}")
    message = json.loads(_exactly(sock, size, deadline))
    if not isinstance(message, dict):
        raise ChannelClosed("a frame is not a JSON object")
    return message


def _jsonable(value: Any) -> Any:
    """Decimals become numbers, as Lambda's Python runtime marshals them."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


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
