"""An :class:`~lakelet.functions.invocation.Invoker` that calls handlers in this process.

For development and tests: no workers, no isolation, no memory limit. What it keeps
from Lambda is what a caller can observe: the event and the result cross a JSON
boundary (a handler cannot see the caller's objects, and a result that is not JSON is
Lambda's ``Runtime.MarshalError``), errors come back as Lambda's error payload,
reserved concurrency throttles, and :meth:`ainvoke` gives up at the function's timeout
(the handler's thread runs on, as nothing can stop it).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import threading
import time
import traceback
from typing import Any

from lakelet.functions.context import make_context, new_log_stream_name, new_request_id
from lakelet.functions.invocation import (
    FunctionFailure,
    Invocation,
    InvocationType,
    TooManyRequests,
)
from lakelet.functions.model import App, FunctionSpec

log = logging.getLogger("lakelet.functions.direct")


class DirectInvoker:
    """Run ``app``'s handlers in the calling process.

    Awaited calls run in a thread, so the event loop keeps serving while a handler
    works; with ``inline=True`` they run on the loop itself and get the caller's event
    object rather than a copy, which is faster for handlers that return at once
    (benchmarks, tests) but stalls every other request while one runs, and a timeout is
    only noticed when the handler returns.
    """

    def __init__(self, app: App, *, inline: bool = False) -> None:
        self.app = app
        self.inline = inline
        self.log_stream = new_log_stream_name()  # one "execution environment"
        self._running: dict[str, int] = {}
        self._lock = threading.Lock()

    def invoke(
        self,
        function: str,
        event: Any,
        *,
        invocation_type: InvocationType = "RequestResponse",
        source: str = "direct",
    ) -> Invocation:
        spec = self.app.get(function)
        if invocation_type == "Event":
            self._run_event(spec, event)
            return Invocation(new_request_id(), spec.name, "ok", memory_mb=spec.memory_mb)
        return self._run(spec, event)

    async def ainvoke(
        self,
        function: str,
        event: Any,
        *,
        invocation_type: InvocationType = "RequestResponse",
        source: str = "direct",
    ) -> Invocation:
        spec = self.app.get(function)
        if invocation_type == "Event":
            asyncio.get_running_loop().run_in_executor(None, self._run_event, spec, event)
            return Invocation(new_request_id(), spec.name, "ok", memory_mb=spec.memory_mb)
        request_id = new_request_id()
        if self.inline:
            result = self._run(spec, event, request_id)
            if result.duration_ms > spec.timeout_s * 1000:
                return _timed_out(spec, request_id, result.duration_ms)
            return result
        started = time.perf_counter()
        call = asyncio.get_running_loop().run_in_executor(None, self._run, spec, event, request_id)
        try:
            return await asyncio.wait_for(call, timeout=spec.timeout_s)
        except TimeoutError:
            return _timed_out(spec, request_id, (time.perf_counter() - started) * 1000)

    # --- one call ------------------------------------------------------------------

    def _run(self, spec: FunctionSpec, event: Any, request_id: str | None = None) -> Invocation:
        request_id = request_id or new_request_id()
        self._acquire(spec)
        try:
            return self._call(spec, event, request_id)
        finally:
            self._release(spec)

    def _call(self, spec: FunctionSpec, event: Any, request_id: str) -> Invocation:
        started = time.perf_counter()
        deadline_ms = int(time.time() * 1000 + spec.timeout_s * 1000)
        context = make_context(
            spec, request_id, deadline_epoch_ms=deadline_ms, log_stream=self.log_stream
        )
        outcome: Any = "ok"
        payload: Any = None
        failure: FunctionFailure | None = None
        # A copy across JSON, as Lambda's caller sends it; an event that is not JSON is the
        # caller's error and raises here. Inline calls skip it: the fast path.
        payload_in = event if self.inline else json.loads(json.dumps(event))
        try:
            result = spec.handler(payload_in, context)
            try:
                payload = json.loads(json.dumps(result))
            except (TypeError, ValueError) as exc:
                outcome = "error"
                failure = FunctionFailure(
                    "Runtime.MarshalError", f"Unable to marshal response: {exc}"
                )
        except Exception as exc:
            outcome = "error"
            stack = traceback.format_tb(exc.__traceback__)[1:]  # drop this frame
            failure = FunctionFailure(type(exc).__name__, str(exc), [s.rstrip() for s in stack])
        elapsed = (time.perf_counter() - started) * 1000
        return Invocation(
            request_id,
            spec.name,
            outcome,
            payload=payload,
            failure=failure,
            duration_ms=elapsed,
            billed_ms=max(1, math.ceil(elapsed)),
            memory_mb=spec.memory_mb,
        )

    def _run_event(self, spec: FunctionSpec, event: Any) -> None:
        """An asynchronous call: Lambda's retries, then the failure is logged (there
        is no dead-letter queue in this process)."""
        for attempt in range(spec.retries + 1):
            try:
                result = self._run(spec, event)
            except TooManyRequests:
                time.sleep(0.05 * (attempt + 1))
                continue
            if result.outcome == "ok":
                return
            if result.failure is not None and attempt == spec.retries:
                log.error(
                    "%s failed asynchronously after %d attempt(s): %s: %s",
                    spec.name,
                    attempt + 1,
                    result.failure.error_type,
                    result.failure.message,
                )

    def _acquire(self, spec: FunctionSpec) -> None:
        limit = spec.reserved_concurrency
        with self._lock:
            running = self._running.get(spec.name, 0)
            if limit is not None and running >= limit:
                raise TooManyRequests(
                    f"function {spec.name!r} is at its reserved concurrency ({limit})"
                )
            self._running[spec.name] = running + 1

    def _release(self, spec: FunctionSpec) -> None:
        with self._lock:
            self._running[spec.name] -= 1


def _timed_out(spec: FunctionSpec, request_id: str, elapsed_ms: float) -> Invocation:
    return Invocation(
        request_id,
        spec.name,
        "timeout",
        failure=FunctionFailure(
            "Sandbox.Timedout", f"Task timed out after {spec.timeout_s:.2f} seconds"
        ),
        duration_ms=elapsed_ms,
        billed_ms=math.ceil(elapsed_ms),
        memory_mb=spec.memory_mb,
    )
