"""Queue triggers under ``lakelet up``: SQS batches, partial failures, redrive."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from lakelet.functions.invocation import FunctionFailure, Invocation, TooManyRequests
from lakelet.functions.model import App, QueueTrigger
from lakelet.functions.queues import QueueStore
from lakelet.functions.sources.pollers import QueuePoller, consumers, prepare_queues
from lakelet.project import Project

Handler = Callable[[dict[str, Any]], Invocation]


@dataclass
class ScriptedInvoker:
    """Answers each synchronous invocation with ``handler(event)``."""

    handler: Handler
    events: list[dict[str, Any]] = field(default_factory=list)

    def invoke(
        self,
        function: str,
        event: Any,
        *,
        invocation_type: str = "RequestResponse",
        source: str = "direct",
    ) -> Invocation:
        assert invocation_type == "RequestResponse" and source == "sqs:orders"
        self.events.append(event)
        return self.handler(event)

    async def ainvoke(self, function: str, event: Any, **kwargs: Any) -> Invocation:
        return self.invoke(function, event, **kwargs)

    def bodies(self, batch: int) -> list[str]:
        return [r["body"] for r in self.events[batch]["Records"]]


@dataclass
class Clock:
    now: float = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def ok(payload: Any = None) -> Handler:
    return lambda event: Invocation("r", "orders", "ok", payload=payload)


def fail_bodies_starting_with_bad(event: dict[str, Any]) -> Invocation:
    failures = [
        {"itemIdentifier": r["messageId"]} for r in event["Records"] if r["body"].startswith("bad")
    ]
    return Invocation("r", "orders", "ok", payload={"batchItemFailures": failures})


def crash(event: dict[str, Any]) -> Invocation:
    return Invocation("r", "orders", "error", failure=FunctionFailure("ValueError", "boom"))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def queues(tmp_project: Project, clock: Clock) -> QueueStore:
    store = QueueStore(tmp_project.metadata, clock=clock)
    store.ensure("orders", visibility_timeout_s=30, max_receive_count=2, dead_letter="orders-dlq")
    return store


def poller(queues: QueueStore, handler: Handler, batch_size: int = 10) -> QueuePoller:
    invoker = ScriptedInvoker(handler)
    return QueuePoller(queues, invoker, QueueTrigger("orders", "orders", batch_size))


def invoker_of(p: QueuePoller) -> ScriptedInvoker:
    assert isinstance(p.invoker, ScriptedInvoker)
    return p.invoker


def test_messages_arrive_as_an_sqs_batch_and_are_deleted(queues: QueueStore) -> None:
    for body in ("a", "b", "c"):
        queues.send("orders", body, {"kind": "order"})
    p = poller(queues, ok(), batch_size=2)
    result = p.poll_once()
    assert result is not None and (result.received, result.deleted) == (2, 2)
    record = invoker_of(p).events[0]["Records"][0]
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == "arn:aws:sqs:us-east-1:123456789012:orders"
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["messageAttributes"]["kind"]["stringValue"] == "order"
    assert invoker_of(p).bodies(0) == ["a", "b"]
    p.poll_once()
    assert invoker_of(p).bodies(1) == ["c"]
    assert p.poll_once() is None
    assert queues.depth("orders").total == 0


def test_only_the_failed_messages_of_a_partial_batch_come_back(
    queues: QueueStore, clock: Clock
) -> None:
    for body in ("good-1", "bad-2", "good-3"):
        queues.send("orders", body)
    p = poller(queues, fail_bodies_starting_with_bad)
    result = p.poll_once()
    assert result is not None and (result.deleted, result.kept) == (2, 1)
    assert p.poll_once() is None  # hidden for the visibility timeout
    clock.now += 31
    p.poll_once()
    assert invoker_of(p).bodies(1) == ["bad-2"]
    assert invoker_of(p).events[1]["Records"][0]["attributes"]["ApproximateReceiveCount"] == "2"


def test_a_failed_invocation_keeps_the_whole_batch(queues: QueueStore, clock: Clock) -> None:
    queues.send("orders", "x")
    queues.send("orders", "y")
    p = poller(queues, crash)
    result = p.poll_once()
    assert result is not None and (result.outcome, result.deleted) == ("error", 0)
    assert queues.depth("orders").in_flight == 2
    clock.now += 31
    p.invoker = ScriptedInvoker(ok())
    p.poll_once()
    assert invoker_of(p).bodies(0) == ["x", "y"]
    assert queues.depth("orders").total == 0


def test_a_malformed_partial_response_fails_the_whole_batch(queues: QueueStore) -> None:
    queues.send("orders", "x")
    p = poller(queues, ok({"batchItemFailures": [{"itemIdentifier": "not-in-the-batch"}]}))
    result = p.poll_once()
    assert result is not None and result.deleted == 0


def test_messages_failing_max_receive_count_times_go_to_the_dead_letter_queue(
    queues: QueueStore, clock: Clock
) -> None:
    queues.send("orders", "bad-forever")
    queues.send("orders", "good")
    p = poller(queues, fail_bodies_starting_with_bad)
    p.poll_once()
    clock.now += 31
    p.poll_once()  # second receive: fails again
    clock.now += 31
    assert p.poll_once() is None  # received twice: redriven, not delivered a third time
    dead = queues.receive("orders-dlq", 10)
    assert [m.body for m in dead] == ["bad-forever"]
    assert dead[0].dead_letter_source == "orders"
    assert len(invoker_of(p).events) == 2


def test_a_throttled_batch_comes_back_soon(queues: QueueStore, clock: Clock) -> None:
    queues.send("orders", "x")

    def throttled(event: dict[str, Any]) -> Invocation:
        raise TooManyRequests("orders is at its reserved concurrency (1)")

    p = poller(queues, throttled)
    result = p.poll_once()
    assert result is not None and result.outcome == "throttled" and result.deleted == 0
    clock.now += 2  # well before the 30 s visibility timeout
    p.invoker = ScriptedInvoker(ok())
    assert p.poll_once() is not None
    assert invoker_of(p).bodies(0) == ["x"]


def test_queues_are_created_and_short_visibility_is_reported(tmp_project: Project) -> None:
    app = App("q")

    @app.on_queue("slow-jobs", timeout_s=60, reserved_concurrency=3)
    def slow(event: Any, context: Any) -> None: ...

    queues = QueueStore(tmp_project.metadata)
    warnings = prepare_queues(queues, app, {}, "us-east-1")
    assert "slow-jobs" in queues.names()
    assert len(warnings) == 1 and "visibility_timeout_s >= 60" in warnings[0]
    assert consumers(app, app.queue_triggers[0]) == 3
