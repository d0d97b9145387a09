"""Asynchronous (Event) invocation: durable queue, retries with backoff, dead letters."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from lakelet.functions.invocation import TooManyRequests
from lakelet.functions.loader import import_app
from lakelet.functions.model import App
from lakelet.functions.queues import QueueStore
from lakelet.functions.runtime import Runtime, RuntimeOptions
from lakelet.functions.runtime.asyncinvoke import AsyncInvoker
from lakelet.functions.runtime.stats import invocations_table
from lakelet.project import Project

APPS = Path(__file__).parent / "apps"
FAST = RuntimeOptions(retry_backoff_s=(0.1, 0.2), async_poll_s=0.05, max_concurrency=4)


@pytest.fixture(scope="module")
def rt_app() -> App:
    return import_app("rt_app:app", APPS)


@pytest.fixture
def runtime(rt_app: App, tmp_project: Project) -> Iterator[Runtime]:
    with Runtime(rt_app, engine=tmp_project.metadata, options=FAST) as runtime:
        yield runtime


def wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def attempts(runtime: Runtime, project: Project, request_id: str) -> list[tuple[int, str, str]]:
    """The stored attempts of an event: (attempt, outcome, invocation type)."""
    runtime.flush()
    t = invocations_table.c
    query = (
        sa.select(t.attempt, t.outcome, t.invocation_type)
        .where(t.request_id == request_id)
        .order_by(t.attempt)
    )
    with project.metadata.connect() as conn:
        return [(row.attempt, row.outcome, row.invocation_type) for row in conn.execute(query)]


def test_event_is_accepted_at_once_and_retried_until_it_succeeds(
    runtime: Runtime, tmp_project: Project, tmp_path: Path
) -> None:
    counter = tmp_path / "calls"
    event = {"counter": str(counter), "succeed_on": 3}
    accepted = runtime.invoke("flaky", event, invocation_type="Event", source="test")
    assert accepted.outcome == "ok" and accepted.payload is None
    wait_until(lambda: runtime.events.pending("flaky") == 0)
    assert counter.read_text() == "3"
    assert attempts(runtime, tmp_project, accepted.request_id) == [
        (1, "error", "Event"),
        (2, "error", "Event"),
        (3, "ok", "Event"),
    ]
    assert runtime.events.queues.depth("rt-dlq").total == 0


def test_event_that_always_fails_goes_to_the_dead_letter_queue(
    runtime: Runtime, tmp_project: Project
) -> None:
    started = time.monotonic()
    accepted = runtime.invoke("doomed", {"order": 7}, invocation_type="Event")
    wait_until(lambda: runtime.events.pending("doomed") == 0)
    assert time.monotonic() - started >= 0.3  # the two backoffs were waited
    assert [a[:2] for a in attempts(runtime, tmp_project, accepted.request_id)] == [
        (1, "error"),
        (2, "error"),
        (3, "error"),
    ]
    (message,) = runtime.events.queues.receive("rt-dlq")
    record = json.loads(message.body)
    assert record["version"] == "1.0"
    assert record["requestContext"] == {
        "requestId": accepted.request_id,
        "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:doomed:$LATEST",
        "condition": "RetriesExhausted",
        "approximateInvokeCount": 3,
    }
    assert record["requestPayload"] == {"order": 7}
    assert record["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    }
    assert record["responsePayload"]["errorType"] == "KeyError"
    assert record["responsePayload"]["errorMessage"] == "'never works'"
    assert message.attributes["RequestID"] == accepted.request_id


def test_queued_event_survives_a_restart(rt_app: App, tmp_project: Project) -> None:
    queues = QueueStore(tmp_project.metadata)
    # Accepted by a runtime that stopped before running it (no dispatcher started).
    earlier = AsyncInvoker(Runtime(rt_app, options=FAST), queues)
    accepted = earlier.submit(rt_app.get("echo"), {"kept": True}, "test")
    assert earlier.pending("echo") == 1
    with Runtime(rt_app, engine=tmp_project.metadata, options=FAST) as runtime:
        ran = runtime.events.wait_for(accepted.request_id, timeout=20)
        assert ran is not None and ran.outcome == "ok"
        assert ran.payload["event"] == {"kept": True}
        wait_until(lambda: runtime.events.pending("echo") == 0)


def test_burst_of_ten_times_the_limit(rt_app: App, tmp_project: Project) -> None:
    """Sync calls over the limit get 429 and nothing else; async events all run."""
    options = RuntimeOptions(max_concurrency=2, async_poll_s=0.05)
    with Runtime(rt_app, engine=tmp_project.metadata, options=options) as runtime:
        runtime.invoke("single", {})  # warm up, outside the burst

        async def burst() -> list[object]:
            calls = [runtime.ainvoke("slow", {"seconds": 0.2}) for _ in range(20)]
            return await asyncio.gather(*calls, return_exceptions=True)

        results = asyncio.run(burst())
        ok = [r for r in results if getattr(r, "outcome", None) == "ok"]
        throttled = [r for r in results if isinstance(r, TooManyRequests)]
        assert len(ok) + len(throttled) == 20
        assert 1 <= len(ok) <= 19 and throttled  # one slot (the other is reserved)
        accepted = [runtime.invoke("echo", {"i": i}, invocation_type="Event") for i in range(20)]
        for invocation in accepted:
            ran = runtime.events.wait_for(invocation.request_id, timeout=30)
            assert ran is not None and ran.outcome == "ok"
        wait_until(lambda: runtime.events.pending("echo") == 0)
