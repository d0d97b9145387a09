"""What the end of an invocation becomes: an :class:`Invocation` with Lambda's ``REPORT``.

Shared by the runtime's synchronous path and its event-loop path: a worker's reply, its
death (killed for time or memory by the pool, or exited by itself), or a failed spawn.
Each builds the invocation once, its log ending with Lambda's ``REPORT`` line; the
runtime logs that line when it stores the invocation.
"""

from __future__ import annotations

import math
import time
from typing import Any

from lakelet.functions.invocation import FunctionFailure, Invocation, Outcome
from lakelet.functions.model import FunctionSpec
from lakelet.functions.requestids import lambda_ids
from lakelet.functions.runtime import report
from lakelet.functions.runtime.pool import Worker

KB = 1024


def new_request_id() -> str:
    """A random (version 4) UUID, as Lambda's request ids are; ``str(uuid.uuid4())``
    at half the cost, for calls that make one alone."""
    return lambda_ids(1)[0]


def from_reply(
    spec: FunctionSpec, request_id: str, worker: Worker, reply: dict[str, Any]
) -> tuple[Invocation, bool]:
    """The invocation a worker answered, and whether the worker may serve again."""
    init_ms = _init_ms(worker, reply) if worker.invocations == 0 else None
    if worker.killed_for == "out_of_memory":  # over the limit just as it answered
        return finished(
            spec,
            request_id,
            "out_of_memory",
            failure=report.out_of_memory_failure(request_id),
            duration_ms=int(reply.get("duration_ns", 0)) / 1e6,
            init_ms=init_ms,
            max_used_mb=_mb(worker.peak_rss_bytes),
            body=str(reply.get("logs", "")),
        ), False
    outcome: Outcome = reply["outcome"]
    failure = None
    if outcome == "out_of_memory":
        failure = report.out_of_memory_failure(request_id)
    elif outcome != "ok":
        f = reply["failure"]
        failure = FunctionFailure(f["errorType"], f["errorMessage"], list(f["stackTrace"]))
    invocation = finished(
        spec,
        request_id,
        outcome,
        reply.get("payload"),
        failure,
        int(reply["duration_ns"]) / 1e6,
        init_ms,
        math.ceil(int(reply["max_rss_kb"]) / KB),
        reply.get("logs", ""),
        reply.get("http"),
    )
    return invocation, not reply.get("fatal")


def from_death(spec: FunctionSpec, request_id: str, worker: Worker, sent: float) -> Invocation:
    """The worker's socket closed mid-invocation: the pool killed it for time or
    memory, or it exited."""
    duration_ms = (time.monotonic() - sent) * 1000
    used_mb = _mb(worker.peak_rss_bytes)
    said = worker.last_words.rstrip("\n")
    if worker.killed_for == "timeout":
        body = (f"{said}\n" if said else "") + report.timeout_log(request_id, spec.timeout_s)
        return finished(
            spec,
            request_id,
            "timeout",
            failure=report.timeout_failure(request_id, spec.timeout_s),
            duration_ms=duration_ms,
            init_ms=_spawn_ms(worker),
            max_used_mb=used_mb,
            body=body,
        )
    if worker.killed_for == "out_of_memory":
        failure = report.out_of_memory_failure(request_id)
        outcome: Outcome = "out_of_memory"
        used_mb = max(used_mb, spec.memory_mb)
    else:
        failure = report.exit_failure(request_id)
        outcome = "error"
    return finished(
        spec,
        request_id,
        outcome,
        failure=failure,
        duration_ms=duration_ms,
        init_ms=_spawn_ms(worker),
        max_used_mb=used_mb,
        body=(f"{said}\n" if said else "") + f"{failure.message}\n{failure.error_type}",
    )


def finished(
    spec: FunctionSpec,
    request_id: str,
    outcome: Outcome,
    payload: Any = None,
    failure: FunctionFailure | None = None,
    duration_ms: float = 0.0,
    init_ms: float | None = None,
    max_used_mb: int = 0,
    body: str = "",
    http: tuple[int, bytes, list[tuple[bytes, bytes]]] | None = None,
) -> Invocation:
    memory_mb = spec.memory_mb
    billed = report.billed_ms(duration_ms, init_ms)
    line = report.report_text(
        request_id, outcome, failure, duration_ms, billed, memory_mb, max_used_mb, init_ms
    )
    return Invocation(
        request_id,
        spec.name,
        outcome,
        payload if outcome == "ok" else None,
        failure,
        duration_ms,
        billed,
        memory_mb,
        max_used_mb,
        init_ms,
        report.log_text(request_id, body, line),
        http,
    )


def _init_ms(worker: Worker, reply: dict[str, Any]) -> float | None:
    """Cold start: from asking the zygote for a worker to the worker being ready."""
    if "ready_ns" not in reply:
        return None
    return max(0.0, (int(reply["ready_ns"]) - worker.spawned_ns) / 1e6)


def _spawn_ms(worker: Worker) -> float | None:
    """Cold start of a worker that never answered: the spawn's round trip."""
    if not worker.cold:
        return None
    return max(0.0, (worker.forked_ns - worker.spawned_ns) / 1e6)


def _mb(size: int) -> int:
    return math.ceil(size / (KB * KB))
