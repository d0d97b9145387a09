"""What one invocation returns, and the narrow protocol event sources invoke through.

The gateway, the scheduler, the object-event dispatcher and the queue poller only need
:class:`Invoker`; the forked-worker runtime implements it, and tests can too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from lakelet.errors import LakeletError

InvocationType = Literal["RequestResponse", "Event"]
Outcome = Literal["ok", "error", "timeout", "out_of_memory", "throttled"]


class FunctionsError(LakeletError):
    """Root of the functions runtime's errors."""


class TooManyRequests(FunctionsError):
    """Reserved or global concurrency is exhausted (Lambda's ``TooManyRequestsException``)."""

    exit_code = 2
    http_status = 429


class JsonEvent(dict[str, Any]):
    """An event whose maker vouches that it holds only JSON values (``dict``, ``list``,
    ``str``, ``int``, ``float``, ``bool``, ``None``), such as the gateway's HTTP events.

    It is a plain dict to everyone; the forked runtime ships one to its worker with
    :mod:`marshal`, several times cheaper than JSON and, for such values, the same
    event on the other side. Any other event crosses as JSON, which checks it.
    """

    __slots__ = ()


@dataclass(frozen=True)
class FunctionFailure:
    """Lambda's error payload: ``errorType``, ``errorMessage``, ``stackTrace``."""

    error_type: str
    message: str
    stack_trace: list[str] = field(default_factory=list)

    def payload(self) -> dict[str, Any]:
        return {
            "errorType": self.error_type,
            "errorMessage": self.message,
            "stackTrace": list(self.stack_trace),
        }


@dataclass(frozen=True, init=False)
class Invocation:
    """The result of one invocation and its ``REPORT`` figures.

    ``payload`` is the handler's JSON-serialisable return value (``None`` for an
    asynchronous invocation, whose result nobody waits for); ``failure`` is set unless
    ``outcome == "ok"``. An HTTP request's invocation may come back with its response
    rendered by the worker instead (``http_response``: status, body, headers, by API
    Gateway's rules), and no payload.
    """

    request_id: str
    function: str
    outcome: Outcome
    payload: Any = None
    failure: FunctionFailure | None = None
    duration_ms: float = 0.0
    billed_ms: int = 0
    memory_mb: int = 0
    max_memory_used_mb: int = 0
    init_ms: float | None = None  # set on a cold start
    logs: str = ""
    http_response: tuple[int, bytes, list[tuple[bytes, bytes]]] | None = None

    def __init__(
        self,
        request_id: str,
        function: str,
        outcome: Outcome,
        payload: Any = None,
        failure: FunctionFailure | None = None,
        duration_ms: float = 0.0,
        billed_ms: int = 0,
        memory_mb: int = 0,
        max_memory_used_mb: int = 0,
        init_ms: float | None = None,
        logs: str = "",
        http_response: tuple[int, bytes, list[tuple[bytes, bytes]]] | None = None,
    ) -> None:
        # One made per request: the fields go in at once rather than through a frozen
        # dataclass's object.__setattr__ per field (a third of the cost).
        self.__dict__.update(
            request_id=request_id,
            function=function,
            outcome=outcome,
            payload=payload,
            failure=failure,
            duration_ms=duration_ms,
            billed_ms=billed_ms,
            memory_mb=memory_mb,
            max_memory_used_mb=max_memory_used_mb,
            init_ms=init_ms,
            logs=logs,
            http_response=http_response,
        )

    @property
    def cold(self) -> bool:
        return self.init_ms is not None


class Invoker(Protocol):
    """Invoke a function of the app by name."""

    def invoke(
        self,
        function: str,
        event: Any,
        *,
        invocation_type: InvocationType = "RequestResponse",
        source: str = "direct",
    ) -> Invocation:
        """Run ``function`` with ``event``. Synchronous calls return the result and
        raise :class:`TooManyRequests` when throttled; ``Event`` calls are accepted
        (queued, retried, dead-lettered) and return at once with ``outcome == "ok"``.
        ``source`` labels the caller for statistics (``api``, ``schedule``, …)."""
        ...

    async def ainvoke(
        self,
        function: str,
        event: Any,
        *,
        invocation_type: InvocationType = "RequestResponse",
        source: str = "direct",
    ) -> Invocation:
        """:meth:`invoke` for an asyncio caller (the gateway), without blocking its loop."""
        ...
