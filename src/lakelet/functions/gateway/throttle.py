"""Token buckets, the throttling model of API Gateway: a steady ``rate`` per second and
a ``burst`` of requests that may arrive at once."""

from __future__ import annotations

import math
import time
from collections.abc import Callable


class TokenBucket:
    """Holds up to ``burst`` tokens, refilled at ``rate`` per second; a request takes one.

    Used from one event loop, so it needs no lock.
    """

    __slots__ = ("_clock", "_stamp", "_tokens", "burst", "rate")

    def __init__(
        self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = float(rate)
        self.burst = float(burst)
        self._clock = clock
        self._tokens = self.burst
        self._stamp = clock()

    def take(self) -> bool:
        """Take a token if one is left."""
        now = self._clock()
        tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if tokens >= 1.0:
            self._tokens = tokens - 1.0
            return True
        self._tokens = tokens
        return False


def bucket(
    rate: float | None, burst: int | None, *, clock: Callable[[], float] = time.monotonic
) -> TokenBucket | None:
    """A bucket for a route or the whole API; ``None`` when no rate is set. Without a
    burst, a second's worth of requests may arrive at once."""
    if rate is None:
        return None
    return TokenBucket(rate, burst if burst is not None else max(1, math.ceil(rate)), clock=clock)
