"""Frames between the runtime and its workers, and the request ids it makes."""

from __future__ import annotations

import json
import struct
import uuid
from decimal import Decimal

import pytest

from lakelet.functions.invocation import JsonEvent
from lakelet.functions.runtime import protocol
from lakelet.functions.runtime.results import new_request_id


def frame(body: bytes) -> bytes:
    return struct.pack("!I", len(body)) + body


def test_frames_are_cut_from_any_split_of_the_bytes() -> None:
    stream = frame(b'{"a":1}') + frame(b'{"b":"\xc3\xa9"}') + frame(b"{}")
    for size in (1, 3, 7, len(stream)):
        buffer = protocol.FrameBuffer()
        bodies = []
        for start in range(0, len(stream), size):
            buffer.feed(stream[start : start + size])
            while (body := buffer.next_frame()) is not None:
                bodies.append(protocol.decode(body))
        assert bodies == [{"a": 1}, {"b": "é"}, {}]
        assert len(buffer) == 0


def test_a_frame_over_the_limit_closes_the_channel() -> None:
    buffer = protocol.FrameBuffer()
    buffer.feed(struct.pack("!I", protocol.MAX_FRAME_BYTES + 1))
    with pytest.raises(protocol.ChannelClosed, match="over"):
        buffer.next_frame()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"[1, 2]", "not a JSON object"),
        (b'{"a":1} x', "bytes after"),
        (b'{"a":', "not JSON"),
        (b"\xff{}", "not JSON"),
    ],
)
def test_a_body_that_is_not_one_json_object_closes_the_channel(body: bytes, reason: str) -> None:
    with pytest.raises(protocol.ChannelClosed, match=reason):
        protocol.decode(body)


def test_a_request_is_the_json_a_worker_reads() -> None:
    event = {"n": Decimal("2"), "x": Decimal("1.5"), "s": 'quote " é', "l": [None, True]}
    encoded = protocol.encode_request("id-1", 1234, event)
    (size,) = struct.unpack("!I", encoded[:4])
    assert size == len(encoded) - 4
    assert json.loads(encoded[4:]) == {
        "request_id": "id-1",
        "deadline_epoch_ms": 1234,
        "event": {"n": 2, "x": 1.5, "s": 'quote " é', "l": [None, True]},
    }
    with pytest.raises(TypeError, match="not JSON serializable"):
        protocol.encode_request("id-2", 0, {"when": object()})


def test_request_ids_are_random_uuid4s() -> None:
    ids = [new_request_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for text in ids[:200]:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
    assert {text[19] for text in ids} == set("89ab")  # all four variant digits occur


def test_a_json_event_goes_marshalled_and_arrives_as_plain_json_values() -> None:
    event = {
        "version": "2.0",
        "headers": {"host": "h", "x": "é"},
        "cookies": ["a=1"],
        "n": 3,
        "f": 1.5,
        "flag": False,
        "none": None,
    }
    encoded = protocol.encode_request("id-3", 99, JsonEvent(event))
    assert encoded[4:5] == protocol.MARSHALLED
    request_id, deadline, received = protocol.decode_request(encoded[4:])
    assert (request_id, deadline, received) == ("id-3", 99, event)
    assert type(received) is dict  # the handler gets a plain dict, as from JSON
    assert json.dumps(received) == json.dumps(event)  # same keys in the same order


def test_other_events_and_json_events_marshal_cannot_hold_go_as_json() -> None:
    plain = protocol.encode_request("id-4", 1, {"n": Decimal("2")})
    odd = protocol.encode_request("id-5", 1, JsonEvent({"n": Decimal("2")}))
    for encoded, request_id in ((plain, "id-4"), (odd, "id-5")):
        assert encoded[4:5] == b"{"
        assert protocol.decode_request(encoded[4:]) == (request_id, 1, {"n": 2})


@pytest.mark.parametrize("body", [b"M\x00garbage", b"M", b'{"event": {}}', b"[]"])
def test_a_request_frame_that_is_not_one_closes_the_channel(body: bytes) -> None:
    with pytest.raises(protocol.ChannelClosed):
        protocol.decode_request(body)


def test_the_usual_reply_is_the_json_of_the_general_encoder() -> None:
    payload = {"message": "héllo", "n": [1, 2.5, None]}
    fast = protocol.encode_ok_reply(payload, 1234, 5678)
    general = protocol.encode(
        {"outcome": "ok", "duration_ns": 1234, "max_rss_kb": 5678, "payload": payload}
    )
    assert protocol.decode(fast[4:]) == protocol.decode(general[4:])
    with pytest.raises(TypeError):
        protocol.encode_ok_reply({"x": object()}, 1, 1)


def test_take_cuts_whole_frames_and_keeps_the_rest() -> None:
    one, two = frame(b'{"a":1}'), frame(b'{"b":2}')
    buffer = protocol.FrameBuffer()
    assert buffer.take(one) == b'{"a":1}' and len(buffer) == 0  # the usual read
    assert buffer.take(one[:3]) is None
    assert buffer.take(one[3:] + two) == b'{"a":1}'
    assert buffer.next_frame() == b'{"b":2}' and len(buffer) == 0


def test_an_http_request_sent_as_its_parts_is_the_event_the_gateway_would_make() -> None:
    from lakelet.functions.events.http import http_event, request_headers

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/items/7",
        "raw_path": b"/items/7",
        "query_string": b"a=1&a=2",
        "http_version": "1.1",
        "scheme": "http",
        "client": ("10.0.0.9", 5000),
        "server": ("127.0.0.1", 8000),
        "headers": [(b"host", b"api.example.com"), (b"cookie", b"x=1; y=2")],
    }
    headers, cookies = request_headers(scope)
    parts: protocol.HttpParts = (
        {k: scope[k] for k in protocol.EVENT_SCOPE_KEYS},
        b'{"n": 1}',
        "POST /items/{id}",
        "AbCdEfGhIjKlMnO=",
        {"id": "7"},
        {"jwt": {"claims": {"sub": "u"}, "scopes": None}},
        1764239231.5,
        "27/Nov/2026:10:27:11 +0000",
        headers,
        cookies,
    )
    request_id, deadline, event = protocol.decode_request(
        protocol.encode_http_request("r-1", 42, parts)[protocol.HEADER.size :]
    )
    expected = http_event(
        scope,
        b'{"n": 1}',
        route_key="POST /items/{id}",
        request_id="AbCdEfGhIjKlMnO=",
        path_parameters={"id": "7"},
        authorizer={"jwt": {"claims": {"sub": "u"}, "scopes": None}},
        now=1764239231.5,
        request_time="27/Nov/2026:10:27:11 +0000",
    )
    assert (request_id, deadline) == ("r-1", 42)
    assert event == expected and list(event) == list(expected)
    assert type(event) is dict  # the handler gets a plain dict, as from any other source
    assert event["cookies"] == ["x=1", "y=2"] and event["pathParameters"] == {"id": "7"}
