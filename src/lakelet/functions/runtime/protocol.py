"""Frames between the runtime, its zygote and the workers: a 4-byte length, then JSON.

JSON rather than pickle because Lambda's events and results are JSON anyway (a result
that is not fails as it would there), and because a process should never unpickle
what another one wrote. Every channel carries one request and its reply at a time, so
a frame needs no id.

Two exceptions, in the direction the runtime trusts: an invocation whose event is a
:class:`~lakelet.functions.invocation.JsonEvent` goes to its worker as :mod:`marshal`
data, tagged ``M``; for JSON values that is the same event, encoded several times
faster. And the gateway's HTTP requests go as what their event is made of
(:data:`HttpParts`, tagged ``H``): the worker makes the event with the same
:func:`~lakelet.functions.events.http.http_event`, so the serving process neither
builds nor encodes it. Workers' replies are always JSON.
"""

from __future__ import annotations

import json
import json.scanner
import marshal
import socket
import struct
import time
from decimal import Decimal
from typing import Any, cast

from lakelet.functions.events.http import MalformedResponse, http_event, http_response
from lakelet.functions.invocation import JsonEvent

HEADER = struct.Struct("!I")
MAX_FRAME_BYTES = 256 * 1024 * 1024
# One read takes a whole frame of any usual size; under malloc's mmap threshold
# (128 KiB), so the read buffer comes from the heap, not from three system calls.
READ_SIZE = 64 * 1024
MARSHALLED = b"M"  # the first byte of a marshalled request (a JSON one starts with "{")
HTTP_PARTS = b"H"  # the first byte of a request carrying an HTTP request's parts
HTTP_REPLY = b"R"  # the first byte of a reply carrying a rendered HTTP response

# What an HTTP request's event is made of, in http_event's terms: the ASGI scope's keys
# it reads, the body, route key, the gateway's request id, path parameters, authorizer
# (or None), the request's time, its formatted time, its headers and cookies (None when
# the gateway did not parse them: the scope's keys then include its raw headers).
HttpParts = tuple[
    dict[str, Any],
    bytes,
    str,
    str,
    "dict[str, str] | None",
    "dict[str, Any] | None",
    float,
    str,
    "dict[str, str] | None",
    "list[str] | None",
]
EVENT_SCOPE_KEYS = (
    "client",
    "server",
    "scheme",
    "path",
    "raw_path",
    "query_string",
    "method",
    "http_version",
)


class ChannelClosed(ConnectionError):
    """The other end went away (exited, was killed, or closed its socket)."""


def _jsonable(value: Any) -> Any:
    """Decimals become numbers, as Lambda's Python runtime marshals them."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


# Built once: json.dumps with options builds a new encoder on every call.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=_jsonable)
_MAKE_C_ENCODER = getattr(json.encoder, "c_make_encoder", None)


def _dumps(value: Any) -> str:
    """``_ENCODER.encode(value)`` without its Python layers: the C encoder, made for
    each call as :mod:`json` makes it (its check for cycles keeps state)."""
    if _MAKE_C_ENCODER is None:
        return _ENCODER.encode(value)
    chunks = _MAKE_C_ENCODER(
        {}, _jsonable, json.encoder.encode_basestring, None, ":", ",", False, False, True
    )(value, 0)
    return "".join(chunks)


# The decoder's scanner itself (JSONDecoder.raw_decode is a Python call around it).
_SCAN = json.scanner.make_scanner(cast(Any, json.JSONDecoder()))  # (typeshed: ducktyped)


def encode(message: dict[str, Any]) -> bytes:
    """Raises ``TypeError`` for what JSON cannot hold, with :mod:`json`'s own message."""
    body = _dumps(message).encode("utf-8")
    if len(body) > MAX_FRAME_BYTES:
        raise ValueError(f"a frame of {len(body)} bytes is over {MAX_FRAME_BYTES}")
    return HEADER.pack(len(body)) + body


def encode_request(request_id: str, deadline_epoch_ms: int, event: Any) -> bytes:
    """An invocation for a worker (:func:`decode_request` reads it): a
    :class:`JsonEvent` marshalled, any other event as the JSON object
    ``{"request_id", "deadline_epoch_ms", "event"}``, the fixed part formatted and only
    the event through the JSON encoder."""
    if type(event) is JsonEvent:
        try:
            body = MARSHALLED + marshal.dumps((request_id, deadline_epoch_ms, dict(event)))
        except ValueError:  # not JSON values after all: JSON says what is wrong
            body = b""
        if 0 < len(body) <= MAX_FRAME_BYTES:
            return HEADER.pack(len(body)) + body
    body = b'{"request_id":%s,"deadline_epoch_ms":%d,"event":%s}' % (
        _ENCODER.encode(request_id).encode("utf-8"),
        deadline_epoch_ms,
        _ENCODER.encode(event).encode("utf-8"),
    )
    if len(body) > MAX_FRAME_BYTES:
        raise ValueError(f"a frame of {len(body)} bytes is over {MAX_FRAME_BYTES}")
    return HEADER.pack(len(body)) + body


def encode_http_request(request_id: str, deadline_epoch_ms: int, parts: HttpParts) -> bytes:
    """An invocation with an HTTP request's event, sent as its parts (:func:`event_of`
    makes the event); raises ``ValueError`` for parts :mod:`marshal` cannot carry."""
    body = HTTP_PARTS + marshal.dumps((request_id, deadline_epoch_ms, parts))
    if len(body) > MAX_FRAME_BYTES:
        raise ValueError(f"a frame of {len(body)} bytes is over {MAX_FRAME_BYTES}")
    return HEADER.pack(len(body)) + body


def event_of(parts: HttpParts) -> dict[str, Any]:
    """The HTTP API event made of ``parts``, as the gateway would make it."""
    scope, body, route_key, request_id, path_parameters, authorizer, now, time_text = parts[:8]
    event = http_event(
        scope,
        body,
        route_key=route_key,
        request_id=request_id,
        path_parameters=path_parameters,
        authorizer=authorizer,
        now=now,
        request_time=time_text,
        parsed=None if parts[8] is None or parts[9] is None else (parts[8], parts[9]),
    )
    return dict(event)


def decode(body: bytes) -> dict[str, Any]:
    """A frame's body as the JSON object it must be (:class:`ChannelClosed` if not), or
    a rendered HTTP reply (:func:`encode_http_reply`) as the reply it stands for, its
    response under ``"http"`` as (status, body, headers)."""
    if body[:1] == HTTP_REPLY:
        return _http_reply(body)
    try:
        text = body.decode("utf-8")
        message, end = _SCAN(text, 0)  # frames have no surrounding blanks
    except StopIteration as exc:  # the scanner's "expecting a value" at that index
        raise ChannelClosed(f"a frame is not JSON: no value at character {exc.value}") from None
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError both are
        raise ChannelClosed(f"a frame is not JSON: {exc}") from None
    if end != len(text):
        raise ChannelClosed("a frame has bytes after its JSON value")
    if not isinstance(message, dict):
        raise ChannelClosed("a frame is not a JSON object")
    return message


def encode_ok_reply(payload: Any, duration_ns: int, max_rss_kb: int) -> bytes:
    """The usual reply, ``{"outcome": "ok", ...}`` with nothing else to say: the fixed
    part formatted, only the payload through the JSON encoder."""
    body = b'{"outcome":"ok","duration_ns":%d,"max_rss_kb":%d,"payload":%s}' % (
        duration_ns,
        max_rss_kb,
        _dumps(payload).encode("utf-8"),
    )
    if len(body) > MAX_FRAME_BYTES:
        raise ValueError(f"a frame of {len(body)} bytes is over {MAX_FRAME_BYTES}")
    return HEADER.pack(len(body)) + body


def encode_http_reply(payload: Any, duration_ns: int, max_rss_kb: int) -> bytes | None:
    """The usual reply to an HTTP request's invocation with the response rendered here,
    in the worker, by API Gateway's rules: the serving process then neither decodes the
    payload nor encodes the body. The payload goes through JSON first, as it would on
    its way to the gateway (Decimals become numbers, tuples lists). ``None`` for a
    response API Gateway rejects: the plain reply carries it and the gateway says why.
    Raises ``TypeError`` or ``ValueError`` as :func:`encode_ok_reply` does."""
    text = _dumps(payload)
    try:
        rendered = http_response(_SCAN(text, 0)[0])
    except MalformedResponse:
        return None
    body = HTTP_REPLY + marshal.dumps(
        (duration_ns, max_rss_kb, rendered.status, rendered.body, rendered.headers)
    )
    if len(body) > MAX_FRAME_BYTES:
        raise ValueError(f"a frame of {len(body)} bytes is over {MAX_FRAME_BYTES}")
    return HEADER.pack(len(body)) + body


def _http_reply(body: bytes) -> dict[str, Any]:
    """What :func:`encode_http_reply` sent; the shape is checked, the header pairs are
    trusted (marshal makes only its own types, and the worker rendered them)."""
    try:
        duration_ns, max_rss_kb, status, content, headers = marshal.loads(body[1:])
    except (EOFError, ValueError, TypeError) as exc:
        raise ChannelClosed(f"a rendered reply is not valid: {exc!r}") from None
    if not (
        type(duration_ns) is int
        and type(max_rss_kb) is int
        and type(status) is int
        and type(content) is bytes
        and type(headers) is list
    ):
        raise ChannelClosed("a rendered reply is not (duration, memory, status, body, headers)")
    return {
        "outcome": "ok",
        "duration_ns": duration_ns,
        "max_rss_kb": max_rss_kb,
        "http": (status, content, headers),
    }


def decode_request(body: bytes) -> tuple[str, int, Any]:
    """An invocation's request id, deadline (epoch milliseconds) and event, from a
    frame :func:`encode_request` made (:class:`ChannelClosed` if it is not one)."""
    tag = body[:1]
    if tag in (MARSHALLED, HTTP_PARTS):
        try:
            request_id, deadline_epoch_ms, event = marshal.loads(body[1:])
            if tag == HTTP_PARTS:
                event = event_of(event)
        except (EOFError, ValueError, TypeError, KeyError, IndexError) as exc:
            raise ChannelClosed(f"a request frame is not valid: {exc!r}") from None
        return str(request_id), int(deadline_epoch_ms), event
    message = decode(body)
    try:
        return str(message["request_id"]), int(message["deadline_epoch_ms"]), message["event"]
    except (KeyError, TypeError, ValueError) as exc:
        raise ChannelClosed(f"a request frame lacks {exc}") from None


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

    def take(self, chunk: bytes) -> bytes | None:
        """:meth:`feed` ``chunk``, then :meth:`next_frame`; a chunk that is exactly one
        frame (the usual read) is cut as it is, without passing through the buffer."""
        if not self._data and len(chunk) > HEADER.size:
            (size,) = HEADER.unpack_from(chunk)
            if size == len(chunk) - HEADER.size:
                return chunk[HEADER.size :]
        self._data += chunk
        return self.next_frame()

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
