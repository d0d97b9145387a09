"""Concurrency as Lambda counts it: reserved per function, the rest shared.

A function with reserved concurrency ``n`` runs at most ``n`` invocations at once, and
those ``n`` are set aside from the global limit; every other function shares what is
left. A call over its limit is throttled at once (never queued), so a burst shows up
as ``429 TooManyRequestsException``, as on Lambda.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from lakelet.errors import ConfigError
from lakelet.functions.invocation import TooManyRequests
from lakelet.functions.model import FunctionSpec


class ConcurrencyLimits:
    def __init__(self, functions: Mapping[str, FunctionSpec], max_concurrency: int) -> None:
        if max_concurrency < 1:
            raise ConfigError(f"functions.max_concurrency is at least 1, got {max_concurrency}")
        self.max_concurrency = max_concurrency
        self._reserved: dict[str, int] = {}
        for name, spec in functions.items():
            if spec.reserved_concurrency is None:
                continue
            if spec.reserved_concurrency < 0:
                raise ConfigError(
                    f"function {name!r}: reserved_concurrency is 0 or more, "
                    f"got {spec.reserved_concurrency}"
                )
            self._reserved[name] = spec.reserved_concurrency
        total = sum(self._reserved.values())
        if total > max_concurrency:
            raise ConfigError(
                f"reserved concurrency adds up to {total}, over functions.max_concurrency = "
                f"{max_concurrency}; raise max_concurrency or reserve less"
            )
        self.unreserved = max_concurrency - total
        self._lock = threading.Lock()
        self._running: dict[str, int] = dict.fromkeys(functions, 0)
        self._shared_running = 0

    def acquire(self, function: str) -> None:
        """Take a slot for ``function`` or raise :class:`TooManyRequests`."""
        with self._lock:
            reserved = self._reserved.get(function)
            running = self._running.get(function, 0)
            if reserved is not None:
                if running >= reserved:
                    raise TooManyRequests(
                        f"Rate Exceeded: function {function!r} is at its reserved concurrency "
                        f"of {reserved} (ReservedFunctionConcurrentInvocationLimitExceeded)"
                    )
            elif self._shared_running >= self.unreserved:
                raise TooManyRequests(
                    f"Rate Exceeded: {self.unreserved} unreserved concurrent executions are "
                    f"in use (ConcurrentInvocationLimitExceeded)"
                )
            else:
                self._shared_running += 1
            self._running[function] = running + 1

    def try_acquire(self, function: str) -> bool:
        try:
            self.acquire(function)
        except TooManyRequests:
            return False
        return True

    def release(self, function: str) -> None:
        with self._lock:
            self._running[function] -= 1
            if function not in self._reserved:
                self._shared_running -= 1

    def running(self, function: str) -> int:
        with self._lock:
            return self._running.get(function, 0)

    def available(self, function: str) -> int:
        """How many more invocations of ``function`` would be accepted right now."""
        with self._lock:
            reserved = self._reserved.get(function)
            if reserved is not None:
                return reserved - self._running.get(function, 0)
            return self.unreserved - self._shared_running
