"""Frames between the runtime and its workers, and the request ids it makes."""

from __future__ import annotations

import json
import struct
import uuid
from decimal import Decimal

import pytest

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
