"""REPORT lines, billing and cost, and the stored statistics."""

from __future__ import annotations

import math
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from lakelet.functions.invocation import FunctionFailure, Invocation, Outcome
from lakelet.functions.runtime.report import billed_ms, cost, invocation_cost, report_line
from lakelet.functions.runtime.stats import (
    InvocationRecorder,
    Record,
    function_stats,
    invocations_table,
    percentile,
)
from lakelet.project import Project

RID = "8f5c1b7e-2a40-4d8e-9a55-2c9a3f7d0e11"


def test_billing_rounds_duration_plus_init_up_to_the_millisecond() -> None:
    assert billed_ms(1.23) == 2
    assert billed_ms(2.0) == 2
    assert billed_ms(0.01) == 1
    assert billed_ms(1.23, 5.67) == 7  # 6.90 ms, init billed since August 2025
    assert billed_ms(395.99, 265.72) == 662  # a REPORT line seen on Lambda


@pytest.mark.parametrize(
    "total",
    [2.0, 2.0000001, 2.0000004, 2.0000006, 2.000001, 2.0000025, 1.9999999, 0.1 + 0.2, 99.9999995],
)
def test_billing_forgives_float_noise_above_a_whole_millisecond(total: float) -> None:
    # what the rule always was: round to the nanosecond, then up to the millisecond
    assert billed_ms(total) == max(1, math.ceil(round(total, 6)))
    assert billed_ms(total - 0.5, 0.5) == max(1, math.ceil(round(total - 0.5 + 0.5, 6)))


def test_cost_at_lambdas_x86_prices() -> None:
    one_second_at_128 = cost(128, 1000)
    assert one_second_at_128.gb_seconds == pytest.approx(0.125)
    # 0.125 GB-s x $0.0000166667 + one request at $0.20 per million
    assert one_second_at_128.usd == pytest.approx(0.0000020833375 + 0.0000002)
    assert cost(1024, 1).usd == pytest.approx(0.000000016667 + 0.0000002)


def test_report_line_is_lambdas() -> None:
    cold = Invocation(
        RID,
        "f",
        "ok",
        duration_ms=1.234,
        billed_ms=7,
        memory_mb=128,
        max_memory_used_mb=40,
        init_ms=5.672,
    )
    assert report_line(cold) == (
        f"REPORT RequestId: {RID}\tDuration: 1.23 ms\tBilled Duration: 7 ms\t"
        "Memory Size: 128 MB\tMax Memory Used: 40 MB\tInit Duration: 5.67 ms"
    )
    timeout = Invocation(
        RID,
        "f",
        "timeout",
        failure=FunctionFailure("Sandbox.Timedout", "x"),
        duration_ms=3000.4,
        billed_ms=3001,
        memory_mb=256,
        max_memory_used_mb=51,
    )
    assert report_line(timeout) == (
        f"REPORT RequestId: {RID}\tDuration: 3000.40 ms\tBilled Duration: 3001 ms\t"
        "Memory Size: 256 MB\tMax Memory Used: 51 MB\tStatus: timeout"
    )


def test_a_throttled_call_costs_nothing() -> None:
    throttled = Invocation(RID, "f", "throttled", memory_mb=128)
    assert invocation_cost(throttled).usd == 0


def test_nearest_rank_percentiles() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile([7.0], 99) == 7
    assert percentile([], 50) is None


def _record(
    function: str, source: str, outcome: Outcome, duration: float, init_ms: float | None = None
) -> Record:
    invocation = Invocation(
        RID,
        function,
        outcome,
        duration_ms=duration,
        billed_ms=billed_ms(duration, init_ms),
        memory_mb=1024,
        init_ms=init_ms,
    )
    return Record(invocation, source, "RequestResponse", 1, datetime.now(UTC))


def test_stats_per_function_and_source(tmp_project: Project) -> None:
    recorder = InvocationRecorder(tmp_project.metadata)
    for record in [
        _record("buy", "api", "ok", 10.0, init_ms=5.0),
        _record("buy", "api", "ok", 20.0),
        _record("buy", "api", "error", 30.0),
        _record("buy", "schedule", "timeout", 1000.0),
        _record("buy", "api", "throttled", 0.0),
        _record("sell", "api", "ok", 4.0),
    ]:
        recorder.record(record)
    recorder.close()
    stats = {(s.function, s.source): s for s in function_stats(tmp_project.metadata)}
    assert list(stats) == [
        ("buy", "*"),
        ("buy", "api"),
        ("buy", "schedule"),
        ("sell", "*"),
        ("sell", "api"),
    ]
    buy = stats[("buy", "*")]
    assert (buy.invocations, buy.errors, buy.throttles, buy.cold_starts) == (4, 2, 1, 1)
    assert (buy.p50_ms, buy.p99_ms) == (20.0, 1000.0)
    # 1 GB for 15 + 20 + 30 + 1000 billed ms
    assert buy.gb_seconds == pytest.approx(1.065)
    assert buy.cost_usd == pytest.approx(1.065 * 0.0000166667 + 4 * 0.0000002)
    api = stats[("buy", "api")]
    assert (api.invocations, api.errors, api.throttles, api.p50_ms) == (3, 1, 1, 20.0)
    assert function_stats(tmp_project.metadata, function="sell")[0].invocations == 1
    later = datetime.now(UTC) + timedelta(hours=1)
    assert function_stats(tmp_project.metadata, since=later) == []


def _stored(project: Project) -> int:
    with project.metadata.connect() as conn:
        return int(
            conn.execute(sa.select(sa.func.count()).select_from(invocations_table)).scalar_one()
        )


def test_flush_waits_for_everything_recorded_before_it(tmp_project: Project) -> None:
    recorder = InvocationRecorder(tmp_project.metadata)
    try:

        def record_many() -> None:
            for _ in range(300):
                recorder.record(_record("f", "api", "ok", 1.0))

        threads = [threading.Thread(target=record_many) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        recorder.flush()
        assert _stored(tmp_project) == 1200  # several batches, every one stored
        time.sleep(0.2)  # the writer goes to sleep; a lone record must still wake it
        recorder.record(_record("f", "api", "ok", 1.0))
        recorder.flush()
        assert _stored(tmp_project) == 1201
        recorder.record(_record("f", "api", "ok", 1.0))
    finally:
        recorder.close()
    assert _stored(tmp_project) == 1202  # close stores what is queued
