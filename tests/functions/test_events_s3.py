"""S3 object-created events: AWS's shape, field by field, read back by AWS's own
data classes (aws-lambda-powertools) and validated by its strict parser models."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import pytest
from aws_lambda_powertools.utilities.data_classes import S3Event
from aws_lambda_powertools.utilities.parser.models import S3Model

from lakelet.errors import UserError
from lakelet.functions.events import object_created_event
from lakelet.functions.events.s3 import encode_key

EXAMPLE = json.loads((Path(__file__).parent / "aws_examples" / "s3_put.json").read_text())


def shape(value: Any) -> Any:
    """Keys and value types, recursively: what must match AWS, whatever the values."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value[:1]]
    return type(value).__name__


def test_the_event_has_exactly_the_shape_aws_documents() -> None:
    event = object_created_event("amzn-s3-demo-bucket", "test/key", 1024, "0123456789abcdef")
    assert shape(event) == shape(EXAMPLE)


def test_fields_carry_the_object_and_the_bucket() -> None:
    when = datetime(2026, 11, 27, 8, 30, 1, 250_000, tzinfo=UTC)
    event = object_created_event(
        "raw",
        "sales/date=2026-11-27/a.csv",
        531,
        '"9b2cf535f27731c9"',
        event_time=when,
        region="eu-west-1",
        sequencer=42,
    )
    (record,) = event["Records"]
    expected = EXAMPLE["Records"][0]
    for constant in ("eventVersion", "eventSource"):
        assert record[constant] == expected[constant]
    assert record["s3"]["s3SchemaVersion"] == expected["s3"]["s3SchemaVersion"]
    assert record["awsRegion"] == "eu-west-1"
    assert record["eventTime"] == "2026-11-27T08:30:01.250Z"
    assert record["eventName"] == "ObjectCreated:Put"
    assert record["s3"]["bucket"]["name"] == "raw"
    assert record["s3"]["bucket"]["arn"] == "arn:aws:s3:::raw"
    assert record["s3"]["object"] == {
        "key": "sales/date%3D2026-11-27/a.csv",
        "size": 531,
        "eTag": "9b2cf535f27731c9",
        "sequencer": "000000000000002A",
    }
    assert re.fullmatch(r"[0-9A-F]{16}", record["responseElements"]["x-amz-request-id"])


def test_powertools_reads_it_as_an_s3_event() -> None:
    key = "purchases/machine 7/2026-11-27+sale.json"
    event = S3Event(object_created_event("raw", key, 77, "abc", event_name="s3:ObjectCreated:Copy"))
    assert event.bucket_name == "raw"
    assert event.object_key == key  # powertools decodes with unquote_plus, as handlers do
    record = event.record
    assert record.event_name == "ObjectCreated:Copy"
    assert record.event_source == "aws:s3"
    obj = record.s3.get_object
    assert obj is not None
    assert obj.size == 77
    assert obj.etag == "abc"
    assert record.s3.bucket.owner_identity.principal_id
    assert record.request_parameters.source_ip_address == "127.0.0.1"
    parsed = S3Model.model_validate(object_created_event("raw", key, 77, "abc"))
    parsed_object = parsed.Records[0].s3.object
    assert parsed_object is not None
    assert parsed_object.size == 77
    assert parsed.Records[0].eventTime.tzinfo is not None


@pytest.mark.parametrize(
    ("key", "encoded"),
    [
        ("HappyFace.jpg", "HappyFace.jpg"),
        ("red flower.jpg", "red+flower.jpg"),  # AWS's own example
        ("a+b.csv", "a%2Bb.csv"),
        ("date=2026-11-27/x.csv", "date%3D2026-11-27/x.csv"),
        ("über/ñ.txt", "%C3%BCber/%C3%B1.txt"),
    ],
)
def test_keys_are_url_encoded_as_s3_does(key: str, encoded: str) -> None:
    assert encode_key(key) == encoded
    assert unquote_plus(encoded) == key


def test_sequencers_grow_and_times_are_utc() -> None:
    first = object_created_event("raw", "k", 1, "e")["Records"][0]["s3"]["object"]["sequencer"]
    second = object_created_event("raw", "k", 1, "e")["Records"][0]["s3"]["object"]["sequencer"]
    assert len(first) == len(second) and second > first
    plus_two = timezone(timedelta(hours=2))
    local = datetime(2026, 1, 1, 2, 0, tzinfo=plus_two)
    event = object_created_event("raw", "k", 1, "e", event_time=local)
    assert event["Records"][0]["eventTime"] == "2026-01-01T00:00:00.000Z"


def test_version_id_appears_only_when_given() -> None:
    event = object_created_event("raw", "k", 1, "e", version_id="v1")
    assert event["Records"][0]["s3"]["object"]["versionId"] == "v1"


@pytest.mark.parametrize("name", ["ObjectRemoved:Delete", "ObjectCreated:Patch", "Put"])
def test_other_event_names_are_refused(name: str) -> None:
    with pytest.raises(UserError, match="expected one of ObjectCreated:Put"):
        object_created_event("raw", "k", 1, "e", event_name=name)
