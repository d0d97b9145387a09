"""Asynchronous (``Event``) invocations, as Lambda runs them.

An event is accepted at once and written to a durable queue of its function (one
internal queue each, in the project's metadata database), so it survives a restart of
the runtime. A dispatcher thread takes events while the function has free concurrency
(a slot is held before an event is taken, so a queued event is never throttled and its
receive count is its attempt count). A failed attempt (error, timeout, out of memory)
is retried after a backoff, ``retries`` times (Lambda: twice, after one and two
minutes); then the failure record Lambda sends to an on-failure destination goes to
the function's ``dead_letter_queue`` — or, when it has none, to
``lakelet-async-failures``, so no failed event is ever dropped silently.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from lakelet.errors import ConfigError, NotFoundError, UserError
from lakelet.functions.context import function_arn, new_request_id
from lakelet.functions.invocation import Invocation
from lakelet.functions.model import FunctionSpec
from lakelet.functions.queues import MAX_RECEIVE_BATCH, QueueMessage, QueueStore

if TYPE_CHECKING:
    from lakelet.functions.runtime.invoker import Runtime

log = logging.getLogger("lakelet.functions")

QUEUE_PREFIX = "lakelet-async-"
FAILURES_QUEUE = "lakelet-async-failures"
VISIBILITY_MARGIN_S = 30.0  # an event in flight stays hidden this long past the timeout
MAX_RETRIES = 2
RECENT_ATTEMPTS = 1000  # attempts kept for wait_for


def event_queue(function: str) -> str:
    """The internal queue holding ``function``'s pending asynchronous events."""
    return f"{QUEUE_PREFIX}{function}"


class AsyncInvoker:
    """Accepts, queues, runs, retries and dead-letters a runtime's ``Event`` calls."""

    def __init__(self, runtime: Runtime, queues: QueueStore) -> None:
        self.runtime = runtime
        self.queues = queues
        for spec in runtime.app.functions.values():
            if not 0 <= spec.retries <= MAX_RETRIES:
                raise ConfigError(
                    f"function {spec.name!r}: retries is 0 to {MAX_RETRIES}, as on Lambda; "
                    f"got {spec.retries}"
                )
            queues.ensure(
                event_queue(spec.name), visibility_timeout_s=spec.timeout_s + VISIBILITY_MARGIN_S
            )
        dead_letters = {s.dead_letter_queue for s in runtime.app.functions.values()}
        queues.ensure_queues({}, referenced=sorted(q for q in dead_letters if q))
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._attempts: OrderedDict[str, Invocation] = OrderedDict()
        self._attempted = threading.Condition()
        self._executor = ThreadPoolExecutor(
            max_workers=runtime.limits.max_concurrency, thread_name_prefix="lakelet-fn-event"
        )
        self._thread = threading.Thread(target=self._loop, name="lakelet-fn-events", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop taking events; those running finish (and are deleted or retried)."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._executor.shutdown(wait=True)

    def submit(self, spec: FunctionSpec, event: Any, source: str) -> Invocation:
        """Queue ``event`` for ``spec``; answered at once, like Lambda's 202."""
        request_id = new_request_id()
        try:
            body = json.dumps(
                {
                    "requestId": request_id,
                    "event": event,
                    "source": source,
                    "acceptedAt": datetime.now(UTC).isoformat(),
                }
            )
        except (TypeError, ValueError) as exc:
            raise UserError(
                f"function {spec.name!r}: the event is not JSON ({exc}); Lambda events are JSON"
            ) from None
        self.queues.send(event_queue(spec.name), body)
        self._wake.set()
        return Invocation(request_id, spec.name, "ok", memory_mb=spec.memory_mb)

    def wait_for(self, request_id: str, timeout: float) -> Invocation | None:
        """The latest attempt of event ``request_id`` run by this runtime, waiting up
        to ``timeout`` seconds for one (``None`` if it has not run yet)."""
        with self._attempted:
            self._attempted.wait_for(lambda: request_id in self._attempts, timeout)
            return self._attempts.get(request_id)

    def pending(self, function: str) -> int:
        """Events of ``function`` not yet finished (waiting, running or due again)."""
        return self.queues.depth(event_queue(function)).total

    # --- the dispatcher --------------------------------------------------------------

    def _loop(self) -> None:
        poll = self.runtime.options.async_poll_s
        while not self._stop.is_set():
            try:
                for spec in list(self.runtime.app.functions.values()):
                    self._take(spec)
            except Exception:  # a database hiccup must not end the dispatcher
                log.exception("taking asynchronous events failed; trying again")
            self._wake.wait(poll)
            self._wake.clear()

    def _take(self, spec: FunctionSpec) -> None:
        queue = event_queue(spec.name)
        if self.queues.depth(queue).visible == 0:
            return
        limits = self.runtime.limits
        slots = 0
        while slots < MAX_RECEIVE_BATCH and limits.try_acquire(spec.name):
            slots += 1
        if slots == 0:
            return
        try:
            messages = self.queues.receive(queue, slots)
        except BaseException:
            for _ in range(slots):
                limits.release(spec.name)
            raise
        for _ in range(slots - len(messages)):
            limits.release(spec.name)
        for message in messages:
            self._executor.submit(self._deliver, spec, message)

    def _deliver(self, spec: FunctionSpec, message: QueueMessage) -> None:
        """One attempt, in a slot taken for it; then delete, retry later or give up."""
        queue = event_queue(spec.name)
        attempt = message.receive_count
        try:
            body = json.loads(message.body)
            invocation = self.runtime.run_reserved(
                spec,
                body["event"],
                source=str(body.get("source", "direct")),
                request_id=str(body["requestId"]),
                invocation_type="Event",
                attempt=attempt,
            )
        except Exception:  # left in the queue: it comes back after its visibility timeout
            log.exception("event %s of %s could not run", message.message_id, spec.name)
            return
        finally:
            self.runtime.limits.release(spec.name)
            self._wake.set()  # a slot is free: more events may be taken
        if invocation.outcome == "ok":
            self.queues.delete(queue, message.receipt_handle)
        elif attempt <= spec.retries:
            backoff = self.runtime.options.retry_backoff_s
            delay = backoff[min(attempt, len(backoff)) - 1] if backoff else 0.0
            self.queues.change_visibility(queue, message.receipt_handle, delay)
        else:
            self._dead_letter(spec, body, invocation, attempt)
            self.queues.delete(queue, message.receipt_handle)
        with self._attempted:  # after the queue knows, so a waiter sees the final state
            self._attempts[invocation.request_id] = invocation
            self._attempts.move_to_end(invocation.request_id)
            while len(self._attempts) > RECENT_ATTEMPTS:
                self._attempts.popitem(last=False)
            self._attempted.notify_all()

    def _dead_letter(
        self, spec: FunctionSpec, body: dict[str, Any], invocation: Invocation, attempts: int
    ) -> None:
        target = spec.dead_letter_queue or FAILURES_QUEUE
        record = failure_record(
            spec,
            body,
            invocation,
            attempts,
            region=self.runtime.options.region,
            account_id=self.runtime.options.account_id,
        )
        failure = invocation.failure
        attributes = {
            "RequestID": invocation.request_id,
            "ErrorCode": "200",
            "ErrorMessage": (failure.message if failure else invocation.outcome)[:1024],
        }
        text = json.dumps(record)
        try:
            self.queues.send(target, text, attributes)
        except NotFoundError:
            self.queues.ensure(target)
            self.queues.send(target, text, attributes)
        log.warning(
            "asynchronous event %s of %s failed %d time(s); its record is in queue %s",
            invocation.request_id,
            spec.name,
            attempts,
            target,
        )


def failure_record(
    spec: FunctionSpec,
    body: dict[str, Any],
    invocation: Invocation,
    attempts: int,
    *,
    region: str,
    account_id: str,
) -> dict[str, Any]:
    """Lambda's invocation record for an on-failure destination."""
    now = datetime.now(UTC)
    failure = invocation.failure
    return {
        "version": "1.0",
        "timestamp": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
        "requestContext": {
            "requestId": invocation.request_id,
            "functionArn": function_arn(spec.name, region=region, account_id=account_id)
            + ":$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": attempts,
        },
        "requestPayload": body.get("event"),
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled",
        },
        "responsePayload": failure.payload() if failure else None,
    }
