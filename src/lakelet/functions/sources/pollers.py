"""SQS event source mappings for ``lakelet up``: queue messages to functions, in batches.

As Lambda's poller does: receive up to ``batch_size`` messages, invoke the function
synchronously with the SQS event, and delete what it processed: every message when it
returned normally, all but those named in ``batchItemFailures`` when it reported a
partial failure, none when it failed or timed out. What is not deleted becomes visible
again after the queue's visibility timeout, counting towards ``max_receive_count``,
after which the queue's redrive moves it to its dead-letter queue. A throttled
invocation (the function is at its concurrency) returns the batch to the queue after
a short pause. Messages are deleted only after the function finished, so a kill loses
none (they are delivered again).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lakelet.functions.events.sqs import failed_message_ids, queue_arn, sqs_batch_event
from lakelet.functions.invocation import Invocation, TooManyRequests
from lakelet.functions.queues import QueueMessage, QueueStore

if TYPE_CHECKING:
    from lakelet.config import QueueSection
    from lakelet.functions.invocation import Invoker
    from lakelet.functions.model import App, QueueTrigger

log = logging.getLogger("lakelet.up")

THROTTLED_RETRY_S = 1.0
DEFAULT_CONSUMERS = 2  # batches in flight per queue when the function has no reserved limit


@dataclass(frozen=True)
class BatchResult:
    """What became of one received batch."""

    queue: str
    function: str
    received: int
    deleted: int
    outcome: str  # an invocation outcome, or "throttled"

    @property
    def kept(self) -> int:
        return self.received - self.deleted


def prepare_queues(
    queues: QueueStore, app: App, sections: dict[str, QueueSection], region: str
) -> list[str]:
    """Create the app's queues (``[functions.queues]`` settings, defaults for the
    rest); returns warnings for settings that would deliver messages twice."""
    referenced = [t.queue for t in app.queue_triggers]
    queues.ensure_queues(sections, referenced=referenced)
    warnings = []
    for trigger in app.queue_triggers:
        spec = app.get(trigger.function)
        visibility = queues.config(trigger.queue).visibility_timeout_s
        if visibility < spec.timeout_s:
            warnings.append(
                f"queue {trigger.queue!r}: its visibility timeout ({visibility:g} s) is shorter "
                f"than {spec.name!r}'s timeout ({spec.timeout_s:g} s), so a slow batch is "
                f"delivered again while it runs; set [functions.queues.{trigger.queue}] "
                f"visibility_timeout_s >= {spec.timeout_s:g} (AWS requires it)"
            )
    return warnings


def consumers(app: App, trigger: QueueTrigger) -> int:
    """How many batches of ``trigger`` may be in flight at once."""
    reserved = app.get(trigger.function).reserved_concurrency
    return DEFAULT_CONSUMERS if reserved is None else reserved


class QueuePoller:
    """Delivers the messages of one queue to one function."""

    def __init__(
        self,
        queues: QueueStore,
        invoker: Invoker,
        trigger: QueueTrigger,
        *,
        region: str = "us-east-1",
        account_id: str = "123456789012",
    ) -> None:
        self.queues = queues
        self.invoker = invoker
        self.trigger = trigger
        self.arn = queue_arn(trigger.queue, region=region, account_id=account_id)

    def poll_once(self) -> BatchResult | None:
        """Receive one batch and deliver it; ``None`` when the queue had nothing."""
        messages = self.queues.receive(self.trigger.queue, self.trigger.batch_size)
        if not messages:
            return None
        return self.deliver(messages)

    def deliver(self, messages: list[QueueMessage]) -> BatchResult:
        event = sqs_batch_event(messages, self.arn)
        trigger = self.trigger
        try:
            invocation = self.invoker.invoke(trigger.function, event, source=f"sqs:{trigger.queue}")
        except TooManyRequests:
            for message in messages:
                self.queues.change_visibility(
                    trigger.queue, message.receipt_handle, THROTTLED_RETRY_S
                )
            result = BatchResult(trigger.queue, trigger.function, len(messages), 0, "throttled")
            log.info("sqs       %s: %s throttled, batch returned", trigger.queue, trigger.function)
            return result
        keep = self._kept(invocation, event)
        deleted = 0
        for message in messages:
            if message.message_id not in keep and self.queues.delete(
                trigger.queue, message.receipt_handle
            ):
                deleted += 1
        result = BatchResult(
            trigger.queue, trigger.function, len(messages), deleted, invocation.outcome
        )
        _log_batch(result, invocation)
        return result

    @staticmethod
    def _kept(invocation: Invocation, event: dict[str, Any]) -> set[str]:
        if invocation.outcome != "ok":
            return {str(r["messageId"]) for r in event["Records"]}
        return failed_message_ids(invocation.payload, event)


def _log_batch(result: BatchResult, invocation: Invocation) -> None:
    line = f"sqs       {result.queue}: {result.received} message(s) → {result.function} "
    if invocation.outcome == "ok":
        tail = f"ok, {result.kept} failed" if result.kept else "ok"
        log.info("%s%s", line, tail)
        return
    failure = invocation.failure
    reason = f"{failure.error_type}: {failure.message}" if failure else invocation.outcome
    log.warning("%s%s (%s); batch kept for redelivery", line, invocation.outcome, reason)
