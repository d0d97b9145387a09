"""EventBridge's ``Scheduled Event``, the event a ``rate()``/``cron()`` rule delivers.

``time`` is the scheduled time of the tick (not when the handler ran), to the second
in UTC, and ``resources`` holds the rule's ARN, so a handler can tell its schedules
apart exactly as on AWS.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

from lakelet.errors import ConfigError

RULE_NAME_RE = re.compile(r"^[.\-_A-Za-z0-9]{1,64}$")  # EventBridge's rule-name alphabet
DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT_ID = "123456789012"


def scheduled_event(
    rule_name: str,
    time: datetime,
    *,
    region: str = DEFAULT_REGION,
    account_id: str = DEFAULT_ACCOUNT_ID,
    event_id: str | None = None,
) -> dict[str, Any]:
    """The event of one tick of rule ``rule_name`` scheduled for ``time`` (naive = UTC)."""
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account_id,
        "time": format_time(time),
        "region": region,
        "resources": [rule_arn(rule_name, region=region, account_id=account_id)],
        "detail": {},
    }


def rule_arn(
    rule_name: str, *, region: str = DEFAULT_REGION, account_id: str = DEFAULT_ACCOUNT_ID
) -> str:
    if not RULE_NAME_RE.match(rule_name):
        raise ConfigError(
            f"schedule rule name {rule_name!r}: use 1 to 64 letters, digits, '.', '-' or '_'"
        )
    return f"arn:aws:events:{region}:{account_id}:rule/{rule_name}"


def format_time(when: datetime) -> str:
    """``2015-10-08T16:53:06Z``: EventBridge's second-precision UTC time."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
