"""What an invocation costs and how Lambda reports it.

Lambda bills the handler's duration plus, since 1 August 2025, the init phase of a cold
start, rounded up to the next millisecond, times the configured memory; every request
also costs a flat fee. Prices are Lambda's published on-demand x86 prices in us-east-1
(first tier): $0.0000166667 per GB-second and $0.20 per million requests.

The ``REPORT`` line is the one Lambda writes to CloudWatch, fields separated by tabs;
failures that end the execution environment add ``Status`` (and ``Error Type``), as
Lambda's current runtimes do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from lakelet.functions.invocation import FunctionFailure, Invocation

PRICE_PER_GB_SECOND_USD = 0.0000166667
PRICE_PER_REQUEST_USD = 0.20 / 1_000_000
MB_PER_GB = 1024  # Lambda's GB-second is memory in MB / 1024 times seconds


@dataclass(frozen=True)
class Cost:
    gb_seconds: float
    usd: float


def billed_ms(duration_ms: float, init_ms: float | None = None) -> int:
    """Duration plus init, rounded up to a whole millisecond (at least 1); a total a
    float's noise above a whole millisecond rounds down to it."""
    total = duration_ms + (init_ms or 0.0)
    ceiling = math.ceil(total)
    if ceiling - total > 0.999998:  # just above a whole number: round(total, 6) decides
        ceiling = math.ceil(round(total, 6))  # (rarely: round() on a float is slow)
    return max(1, ceiling)


def cost(memory_mb: int, billed: int) -> Cost:
    return Cost(*cost_values(memory_mb, billed))


def cost_values(memory_mb: int, billed: int) -> tuple[float, float]:
    """:func:`cost`'s GB-seconds and dollars, without the record (the stats writer
    computes one per invocation)."""
    gb_seconds = memory_mb / MB_PER_GB * billed / 1000
    return gb_seconds, gb_seconds * PRICE_PER_GB_SECOND_USD + PRICE_PER_REQUEST_USD


def invocation_cost(invocation: Invocation) -> Cost:
    """A throttled call never ran, so it costs nothing (Lambda does not bill it)."""
    if invocation.outcome == "throttled":
        return Cost(0.0, 0.0)
    return cost(invocation.memory_mb, invocation.billed_ms)


def report_line(invocation: Invocation) -> str:
    return report_text(
        invocation.request_id,
        invocation.outcome,
        invocation.failure,
        invocation.duration_ms,
        invocation.billed_ms,
        invocation.memory_mb,
        invocation.max_memory_used_mb,
        invocation.init_ms,
    )


def report_text(
    request_id: str,
    outcome: str,
    failure: FunctionFailure | None,
    duration_ms: float,
    billed: int,
    memory_mb: int,
    max_used_mb: int,
    init_ms: float | None,
) -> str:
    """The ``REPORT`` line from an invocation's figures (before it is built)."""
    line = (
        f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
        f"Billed Duration: {billed} ms\tMemory Size: {memory_mb} MB\t"
        f"Max Memory Used: {max_used_mb} MB"
    )
    if init_ms is not None:
        line += f"\tInit Duration: {init_ms:.2f} ms"
    if outcome == "timeout":
        line += "\tStatus: timeout"
    elif failure is not None and (
        outcome == "out_of_memory" or failure.error_type.startswith("Runtime.")
    ):
        line += f"\tStatus: error\tError Type: {failure.error_type}"
    return line


def start_line(request_id: str) -> str:
    return f"START RequestId: {request_id} Version: $LATEST"


def end_line(request_id: str) -> str:
    return f"END RequestId: {request_id}"


def log_text(request_id: str, body: str, report: str) -> str:
    """START, what the function wrote, END and REPORT: what ``--log-type Tail`` shows."""
    if body and not body.endswith("\n"):
        body += "\n"
    # start_line and end_line, inline: this runs for every invocation
    return (
        f"START RequestId: {request_id} Version: $LATEST\n{body}"
        f"END RequestId: {request_id}\n{report}\n"
    )


# --- failures the runtime reports on the function's behalf ---------------------------


def timeout_failure(request_id: str, timeout_s: float) -> FunctionFailure:
    return FunctionFailure(
        "Sandbox.Timedout",
        f"RequestId: {request_id} Error: Task timed out after {timeout_s:.2f} seconds",
    )


def timeout_log(request_id: str, timeout_s: float) -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return f"{stamp} {request_id} Task timed out after {timeout_s:.2f} seconds"


def out_of_memory_failure(request_id: str) -> FunctionFailure:
    return FunctionFailure(
        "Runtime.OutOfMemory",
        f"RequestId: {request_id} Error: Runtime exited with error: signal: killed",
    )


def exit_failure(request_id: str) -> FunctionFailure:
    return FunctionFailure(
        "Runtime.ExitError",
        f"RequestId: {request_id} Error: Runtime exited without providing a reason",
    )
