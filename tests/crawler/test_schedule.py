"""AWS rate()/cron() schedules, --due, on_arrival and the crawl CLI's new flags."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from lakelet.catalog import TableName
from lakelet.cli.main import main
from lakelet.crawler.arrival import crawl_due, crawl_on_arrival, due_crawlers
from lakelet.crawler.schedule import ScheduleError, is_due, next_fire, parse_schedule
from lakelet.project import Project

T0 = datetime(2026, 11, 27, 10, 7, 30, tzinfo=UTC)  # a Friday


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("cron(0 12 * * ? *)", datetime(2026, 11, 27, 12, 0, tzinfo=UTC)),
        ("cron(0/15 * * * ? *)", datetime(2026, 11, 27, 10, 15, tzinfo=UTC)),
        ("cron(0 8 ? * MON-FRI *)", datetime(2026, 11, 30, 8, 0, tzinfo=UTC)),
        ("cron(0 0 L * ? *)", datetime(2026, 11, 30, 0, 0, tzinfo=UTC)),
        ("cron(0 9 ? * 2#1 *)", datetime(2026, 12, 7, 9, 0, tzinfo=UTC)),  # first Monday
        ("cron(0 9 ? * 6L *)", datetime(2026, 11, 27, 9, 0, tzinfo=UTC) + timedelta(days=28)),
        ("cron(30 6 1W * ? *)", datetime(2026, 12, 1, 6, 30, tzinfo=UTC)),  # Dec 1 is a Tuesday
        ("cron(0 6 15W * ? *)", datetime(2026, 12, 15, 6, 0, tzinfo=UTC)),
        ("cron(0 10 1 JAN ? 2027)", datetime(2027, 1, 1, 10, 0, tzinfo=UTC)),
        ("cron(0 0 ? * SAT *)", datetime(2026, 11, 28, 0, 0, tzinfo=UTC)),
    ],
)
def test_cron_next_fire(expression: str, expected: datetime) -> None:
    assert next_fire(expression, T0) == expected


def test_w_stays_in_the_month() -> None:
    # 2026-08-01 is a Saturday: 1W is Monday the 3rd, not Friday July 31st
    fired = next_fire("cron(0 0 1W * ? *)", datetime(2026, 7, 2, tzinfo=UTC))
    assert fired == datetime(2026, 8, 3, 0, 0, tzinfo=UTC)


def test_rate() -> None:
    assert next_fire("rate(5 minutes)", T0, last=T0) == T0 + timedelta(minutes=5)
    assert next_fire("rate(1 hour)", T0) == T0  # never ran: at once
    assert is_due("rate(1 day)", T0, T0 + timedelta(days=1))
    assert not is_due("rate(1 day)", T0, T0 + timedelta(hours=23))
    assert is_due("cron(0 12 * * ? *)", None, T0)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("rate(1 minutes)", r"rate\(1 minute\)"),
        ("rate(5 minute)", r"rate\(5 minutes\)"),
        ("rate(5 weeks)", "not minute"),
        ("cron(0 12 * * * *)", "exactly one of day-of-month and day-of-week"),
        ("cron(0 12 * *)", "6 fields"),
        ("cron(61 12 * * ? *)", "outside 0-59"),
        ("every hour", "expected rate"),
    ],
)
def test_invalid_schedules(expression: str, message: str) -> None:
    with pytest.raises(ScheduleError, match=message):
        parse_schedule(expression)


def _configure(project: Project, text: str) -> Project:
    config = project.root / "lakelet.toml"
    config.write_text(config.read_text() + text)
    return Project.open(project.root)


def test_due_runs_scheduled_crawlers_once_per_period(tmp_project: Project) -> None:
    project = _configure(
        tmp_project,
        '\n[crawlers.sales]\npath = "raw/sales/"\nschedule = "rate(1 hour)"\n'
        '\n[crawlers.other]\npath = "raw/other/"\n',
    )
    project.store.put("raw", "sales/a.csv", b"id\n1\n")
    reports = crawl_due(project)
    assert [r.crawler for r in reports] == ["sales"]
    assert due_crawlers(project) == []
    assert due_crawlers(project, datetime.now(UTC) + timedelta(hours=1, minutes=1)) == ["sales"]


def test_on_arrival_crawls_after_object_events(tmp_project: Project) -> None:
    project = _configure(
        tmp_project, '\n[crawlers.sales]\npath = "raw/sales/"\non_arrival = true\n'
    )
    assert crawl_on_arrival(project) == []
    project.store.put("raw", "sales/a.csv", b"id\n1\n")
    project.store.put("raw", "elsewhere/b.csv", b"id\n1\n")
    (report,) = crawl_on_arrival(project)
    assert report.tables[0].action == "created"
    assert crawl_on_arrival(project) == []  # the events were consumed
    project.store.put("raw", "sales/b.csv", b"id,qty\n2,3\n")
    (again,) = crawl_on_arrival(project)
    assert again.tables[0].action == "updated"


def test_cli_plan_undo_full_and_show(
    tmp_project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    _configure(tmp_project, '\n[crawlers.sales]\npath = "raw/sales/"\n')
    root = ["-C", str(tmp_project.root)]
    tmp_project.store.put("raw", "sales/a.csv", b"id,price\n1,2\n2,5\n")
    assert main([*root, "crawl", "sales"]) == 0
    tmp_project.store.put("raw", "sales/b.csv", b"id,price,qty\n3,2.5,1\n")
    capsys.readouterr()

    assert main([*root, "crawl", "sales", "--plan"]) == 0
    plan = capsys.readouterr().out
    assert "plan: nothing registered" in plan and "+ qty BIGINT" in plan
    assert "price BIGINT → DOUBLE" in plan

    assert main([*root, "crawl", "sales", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["tables"][0]["version"] == 2
    assert main([*root, "crawl", "sales", "--undo", "--format", "json"]) == 0
    undo = json.loads(capsys.readouterr().out)
    assert (undo["undo"], undo["tables"][0]["action"], undo["tables"][0]["version"]) == (
        True,
        "restored",
        3,
    )
    table = tmp_project.catalog.raw_table(TableName("raw", "sales"))
    assert [c.name for c in table.columns] == ["id", "price"]

    assert main([*root, "crawl", "sales", "--full", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["full"] is True

    assert main([*root, "show", "raw.sales", "--format", "json"]) == 0
    details = json.loads(capsys.readouterr().out)
    stats = details["statistics"]
    assert stats["rows"] == 3
    price = next(c for c in stats["columns"] if c["column"] == "price")
    assert (price["min"], price["max"]) == (2.0, 5.0)
    assert "restores v1 (undo)" in details["versions"][2]["changes"]
    assert main([*root, "show", "raw.sales"]) == 0
    assert "statistics (3 rows in 2 files)" in capsys.readouterr().out


def test_cli_due_and_events(tmp_project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    _configure(
        tmp_project,
        '\n[crawlers.sales]\npath = "raw/sales/"\non_arrival = true\nschedule = "rate(1 day)"\n',
    )
    root = ["-C", str(tmp_project.root)]
    tmp_project.store.put("raw", "sales/a.csv", b"id\n1\n")
    assert main([*root, "crawl", "--events", "--format", "json"]) == 0
    assert [r["crawler"] for r in json.loads(capsys.readouterr().out)] == ["sales"]
    assert main([*root, "crawl", "--due"]) == 0  # it just ran: not due for a day
    assert "no crawler due" in capsys.readouterr().out
    assert main([*root, "crawl", "sales", "--due"]) == 2
    assert main([*root, "crawl", "--undo"]) == 2
