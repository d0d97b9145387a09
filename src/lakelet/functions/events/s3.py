"""S3 event notifications (``Records`` version 2.1), as S3 sends them to Lambda.

The object key is URL-encoded the way S3 does it (form encoding: a space becomes
``+``, ``=`` becomes ``%3D``, ``/`` stays), so a handler's ``unquote_plus`` gives the
key back; the ``eTag`` has no quotes; ``sequencer`` is upper-case hex that grows with
each event for a key, so handlers can drop stale events as they must on AWS.
"""

from __future__ import annotations

import base64
import secrets
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

from lakelet.errors import UserError

EVENT_VERSION = "2.1"
S3_SCHEMA_VERSION = "1.0"
OBJECT_CREATED = ("Put", "Post", "Copy", "CompleteMultipartUpload")
DEFAULT_REGION = "us-east-1"
LOCAL_PRINCIPAL = "LAKELETLOCAL"  # stands where AWS puts the caller's principal id
LOCAL_SOURCE_IP = "127.0.0.1"
DEFAULT_CONFIGURATION_ID = "lakelet"


def object_created_event(
    bucket: str,
    key: str,
    size: int,
    etag: str,
    *,
    event_name: str = "ObjectCreated:Put",
    event_time: datetime | None = None,
    region: str = DEFAULT_REGION,
    sequencer: str | int | None = None,
    configuration_id: str = DEFAULT_CONFIGURATION_ID,
    principal_id: str = LOCAL_PRINCIPAL,
    source_ip: str = LOCAL_SOURCE_IP,
    version_id: str | None = None,
) -> dict[str, Any]:
    """The event S3 sends for one new object (one record, as S3 always does).

    ``event_name`` is ``ObjectCreated:Put`` (or ``Post``, ``Copy``,
    ``CompleteMultipartUpload``; an ``s3:`` prefix is dropped); ``sequencer`` may be a
    number (e.g. the object-event id) and is rendered as hex; ``version_id`` appears
    only when given, as for a bucket without versioning.
    """
    name = event_name.removeprefix("s3:")
    kind, _, method = name.partition(":")
    if kind != "ObjectCreated" or method not in OBJECT_CREATED:
        choices = ", ".join(f"ObjectCreated:{m}" for m in OBJECT_CREATED)
        raise UserError(f"S3 event name {event_name!r}: expected one of {choices}")
    if size < 0:
        raise UserError(f"S3 event for {bucket}/{key}: size {size} is negative")
    obj: dict[str, Any] = {
        "key": encode_key(key),
        "size": size,
        "eTag": etag.strip('"'),
    }
    if version_id is not None:
        obj["versionId"] = version_id
    obj["sequencer"] = _sequencer(sequencer)
    record = {
        "eventVersion": EVENT_VERSION,
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventTime": format_event_time(event_time or datetime.now(UTC)),
        "eventName": name,
        "userIdentity": {"principalId": principal_id},
        "requestParameters": {"sourceIPAddress": source_ip},
        "responseElements": {
            "x-amz-request-id": secrets.token_hex(8).upper(),
            "x-amz-id-2": base64.b64encode(secrets.token_bytes(48)).decode("ascii"),
        },
        "s3": {
            "s3SchemaVersion": S3_SCHEMA_VERSION,
            "configurationId": configuration_id,
            "bucket": {
                "name": bucket,
                "ownerIdentity": {"principalId": principal_id},
                "arn": f"arn:aws:s3:::{bucket}",
            },
            "object": obj,
        },
    }
    return {"Records": [record]}


def encode_key(key: str) -> str:
    """A key as S3 writes it in notifications (``unquote_plus`` reverses it)."""
    return quote_plus(key, safe="/")


def format_event_time(when: datetime) -> str:
    """ISO 8601 in UTC with milliseconds, ``1970-01-01T00:00:00.000Z``."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    utc = when.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _sequencer(value: str | int | None) -> str:
    if value is None:
        value = time.time_ns()
    if isinstance(value, int):
        if value < 0:
            raise UserError(f"S3 event sequencer {value} is negative")
        return f"{value:016X}"
    return value
