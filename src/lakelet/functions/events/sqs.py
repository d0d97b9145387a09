"""SQS batches as Lambda's event source mapping delivers them, and the partial batch
response a handler may return.

Attributes are strings, as on AWS (``"ApproximateReceiveCount": "1"``; timestamps
in epoch milliseconds); message attributes carry ``dataType`` ``String`` with the
empty list fields AWS includes. :func:`failed_message_ids` applies Lambda's rules
for ``{"batchItemFailures": [...]}``: a malformed answer fails the whole batch, so a
bug in the handler never deletes a message it did not process.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from lakelet.errors import UserError
from lakelet.functions.queues import QueueMessage

LOCAL_SENDER_ID = "LAKELETLOCAL"  # stands where AWS puts the sender's IAM id
DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT_ID = "123456789012"


def queue_arn(
    name: str, *, region: str = DEFAULT_REGION, account_id: str = DEFAULT_ACCOUNT_ID
) -> str:
    return f"arn:aws:sqs:{region}:{account_id}:{name}"


def sqs_batch_event(
    messages: Sequence[QueueMessage], queue_arn: str, *, sender_id: str = LOCAL_SENDER_ID
) -> dict[str, Any]:
    """The event of one batch of received ``messages`` from the queue ``queue_arn``."""
    region, account_id = _arn_parts(queue_arn)
    return {"Records": [_record(m, queue_arn, region, account_id, sender_id) for m in messages]}


def failed_message_ids(response: Any, event: Mapping[str, Any]) -> set[str]:
    """Which messages of ``event`` (a batch from :func:`sqs_batch_event`) failed,
    given the handler's ``response``; the others are to be deleted.

    As Lambda reads a partial batch response: ``None``, ``{}``, no or an empty
    ``batchItemFailures`` mean all succeeded; anything malformed (not an object, a
    failure without ``itemIdentifier``, an empty or null identifier, an id not in the
    batch) means the whole batch failed.
    """
    batch = [str(r["messageId"]) for r in event.get("Records", [])]
    everything = set(batch)
    if response is None:
        return set()
    if not isinstance(response, Mapping):
        return everything
    failures = response.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return everything
    failed: set[str] = set()
    for item in failures:
        if not isinstance(item, Mapping):
            return everything
        identifier = item.get("itemIdentifier")
        if not isinstance(identifier, str) or not identifier or identifier not in everything:
            return everything
        failed.add(identifier)
    return failed


def md5_of_body(body: str) -> str:
    return hashlib.md5(body.encode("utf-8"), usedforsecurity=False).hexdigest()


def _record(
    message: QueueMessage, arn: str, region: str, account_id: str, sender_id: str
) -> dict[str, Any]:
    attributes = {
        "ApproximateReceiveCount": str(message.receive_count),
        "SentTimestamp": str(_epoch_ms(message.sent_at)),
        "SenderId": sender_id,
        "ApproximateFirstReceiveTimestamp": str(_epoch_ms(message.first_received_at)),
    }
    if message.dead_letter_source is not None:
        attributes["DeadLetterQueueSourceArn"] = queue_arn(
            message.dead_letter_source, region=region, account_id=account_id
        )
    return {
        "messageId": message.message_id,
        "receiptHandle": message.receipt_handle,
        "body": message.body,
        "attributes": attributes,
        "messageAttributes": {
            name: {
                "stringValue": value,
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": "String",
            }
            for name, value in message.attributes.items()
        },
        "md5OfBody": md5_of_body(message.body),
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": region,
    }


def _arn_parts(arn: str) -> tuple[str, str]:
    parts = arn.split(":")
    if len(parts) != 6 or parts[:3] != ["arn", "aws", "sqs"] or not all(parts[3:]):
        raise UserError(f"{arn!r} is not an SQS queue ARN (arn:aws:sqs:REGION:ACCOUNT:NAME)")
    return parts[3], parts[4]


def _epoch_ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)
