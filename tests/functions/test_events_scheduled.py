"""EventBridge scheduled events, compared with the example AWS documents."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel

from lakelet.errors import ConfigError
from lakelet.functions.events import scheduled_event

EXAMPLE = json.loads((Path(__file__).parent / "aws_examples" / "scheduled.json").read_text())


def test_the_documented_example_is_rebuilt_exactly() -> None:
    event = scheduled_event(
        "my-scheduled-rule",
        datetime(2015, 10, 8, 16, 53, 6, tzinfo=UTC),
        region="us-east-1",
        account_id="123456789012",
        event_id="53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
    )
    assert event == EXAMPLE
    assert list(event) == list(EXAMPLE)


def test_powertools_reads_it() -> None:
    tick = datetime(2026, 11, 27, 6, 0, 0, 999_999, tzinfo=UTC)
    event = EventBridgeEvent(
        scheduled_event("hourly", tick, region="eu-west-1", account_id="111122223333")
    )
    assert event.detail_type == "Scheduled Event"
    assert event.source == "aws.events"
    assert event.account == "111122223333"
    assert event.region == "eu-west-1"
    assert event.time == "2026-11-27T06:00:00Z"
    assert event.resources == ["arn:aws:events:eu-west-1:111122223333:rule/hourly"]
    assert event.detail == {}
    parsed = EventBridgeModel.model_validate(scheduled_event("hourly", tick))
    assert parsed.time == tick.replace(microsecond=0)


def test_each_event_has_its_own_id_and_times_are_utc() -> None:
    tick = datetime(2026, 11, 27, 8, 0, tzinfo=timezone(timedelta(hours=2)))
    first, second = scheduled_event("r", tick), scheduled_event("r", tick)
    assert first["id"] != second["id"]
    assert first["time"] == "2026-11-27T06:00:00Z"
    assert scheduled_event("r", datetime(2026, 1, 1))["time"] == "2026-01-01T00:00:00Z"


@pytest.mark.parametrize("name", ["", "has space", "x" * 65, "slash/rule"])
def test_bad_rule_names_are_refused(name: str) -> None:
    with pytest.raises(ConfigError, match="schedule rule name"):
        scheduled_event(name, datetime(2026, 1, 1, tzinfo=UTC))
