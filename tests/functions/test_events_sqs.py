"""SQS batches as Lambda delivers them, and Lambda's rules for partial batch responses."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes import SQSEvent
from aws_lambda_powertools.utilities.parser.models import SqsModel

from lakelet.errors import UserError
from lakelet.functions.events import failed_message_ids, queue_arn, sqs_batch_event
from lakelet.functions.events.sqs import md5_of_body
from lakelet.functions.queues import QueueMessage, QueueStore
from lakelet.metadata import open_engine

EXAMPLE = json.loads((Path(__file__).parent / "aws_examples" / "sqs.json").read_text())
ARN = "arn:aws:sqs:us-east-2:123456789012:my-queue"


def shape(value: Any) -> Any:
    """Keys and value types, recursively: what must match AWS, whatever the values."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value[:1]]
    return type(value).__name__


def message(body: str = "Test message.", **changes: Any) -> QueueMessage:
    values: dict[str, Any] = {
        "message_id": "059f36b4-87a3-44ab-83d2-661975830a7d",
        "receipt_handle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a...",
        "body": body,
        "attributes": {"myAttribute": "myValue"},
        "receive_count": 1,
        "sent_at": datetime.fromtimestamp(1545082649.183, UTC),
        "first_received_at": datetime.fromtimestamp(1545082649.185, UTC),
    }
    return QueueMessage(**{**values, **changes})


def test_the_documented_example_is_rebuilt_exactly_but_for_the_sender() -> None:
    event = sqs_batch_event([message()], ARN, sender_id="AIDAIENQZJOLO23YVJ4VO")
    assert event == EXAMPLE
    assert shape(sqs_batch_event([message()], ARN)) == shape(EXAMPLE)
    assert md5_of_body("Test message.") == EXAMPLE["Records"][0]["md5OfBody"]


def test_a_received_batch_reads_back_through_powertools(tmp_path: Path) -> None:
    store = QueueStore(open_engine("sqlite:///m.db", tmp_path))
    store.ensure("orders")
    ids = [store.send("orders", json.dumps({"n": i}), {"machine": f"m{i}"}) for i in range(3)]
    batch = store.receive("orders")
    raw = sqs_batch_event(batch, queue_arn("orders", region="eu-west-1", account_id="111122223333"))
    event = SQSEvent(raw)
    records = list(event.records)
    assert [r.message_id for r in records] == ids
    assert [r.receipt_handle for r in records] == [m.receipt_handle for m in batch]
    assert [r.json_body for r in records] == [{"n": 0}, {"n": 1}, {"n": 2}]
    first = records[0]
    assert first.attributes.approximate_receive_count == "1"
    assert first.attributes.sent_timestamp.isdigit()
    assert int(first.attributes.approximate_first_receive_timestamp) >= int(
        first.attributes.sent_timestamp
    )
    machine = first.message_attributes["machine"]
    assert machine is not None
    assert machine.string_value == "m0"
    assert machine.data_type == "String"
    assert first.event_source == "aws:sqs"
    assert first.aws_region == "eu-west-1"
    assert first.queue_url == "https://sqs.eu-west-1.amazonaws.com/111122223333/orders"
    assert first.attributes.dead_letter_queue_source_arn is None
    SqsModel.model_validate(raw)


def test_a_redriven_message_names_its_source_queue() -> None:
    event = sqs_batch_event([message(dead_letter_source="orders")], queue_arn("orders-dlq"))
    attributes = event["Records"][0]["attributes"]
    assert attributes["DeadLetterQueueSourceArn"] == "arn:aws:sqs:us-east-1:123456789012:orders"


def test_a_bad_queue_arn_is_refused() -> None:
    with pytest.raises(UserError, match="not an SQS queue ARN"):
        sqs_batch_event([message()], "orders")


BATCH = {"Records": [{"messageId": "a"}, {"messageId": "b"}, {"messageId": "c"}]}
ALL = {"a", "b", "c"}


@pytest.mark.parametrize(
    ("response", "failed"),
    [
        # Lambda's "complete success" cases
        (None, set()),
        ({}, set()),
        ({"batchItemFailures": None}, set()),
        ({"batchItemFailures": []}, set()),
        ("ok", ALL),  # not an object: the whole batch failed
        # partial failures
        ({"batchItemFailures": [{"itemIdentifier": "b"}]}, {"b"}),
        ({"batchItemFailures": [{"itemIdentifier": "a"}, {"itemIdentifier": "c"}]}, {"a", "c"}),
        # Lambda's "complete failure" cases
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, ALL),
        ({"batchItemFailures": [{"itemIdentifier": None}]}, ALL),
        ({"batchItemFailures": [{"itemId": "b"}]}, ALL),
        ({"batchItemFailures": [{"itemIdentifier": "zzz"}]}, ALL),
        ({"batchItemFailures": [{"itemIdentifier": "b"}, {"itemIdentifier": "zzz"}]}, ALL),
        ({"batchItemFailures": ["b"]}, ALL),
        ({"batchItemFailures": "b"}, ALL),
    ],
)
def test_partial_batch_responses_follow_lambdas_rules(response: Any, failed: set[str]) -> None:
    assert failed_message_ids(response, BATCH) == failed
