"""Request ids made a batch at a time: one read of the system's random source per
:data:`BATCH` ids instead of one system call per request, on paths that make an id
for every request (the gateway's HTTP API ids, the runtime's Lambda ids)."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Iterator

BATCH = 64
_VARIANT = "89ab"


def http_api_ids(count: int) -> list[str]:
    """Ids shaped like an HTTP API's (16 characters, base64)."""
    text = base64.b64encode(os.urandom(12 * count)).decode("ascii")
    return [text[i : i + 15] + "=" for i in range(0, len(text), 16)]


def lambda_ids(count: int) -> list[str]:
    """Version 4 UUIDs, as Lambda's ``aws_request_id``."""
    h = os.urandom(16 * count).hex()
    return [_uuid4(h[i : i + 32]) for i in range(0, len(h), 32)]


def _uuid4(h: str) -> str:
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


class BatchedIds:
    """Call for the next id of ``make(BATCH)``'s batches. Safe from several threads and
    event loops: taking the next item of a list iterator is atomic."""

    __slots__ = ("_ids", "_make")

    def __init__(self, make: Callable[[int], list[str]]) -> None:
        self._make = make
        self._ids: Iterator[str] = iter(())

    def __call__(self) -> str:
        found = next(self._ids, None)
        if found is None:
            ids = iter(self._make(BATCH))
            found = next(ids)
            self._ids = ids
        return found
