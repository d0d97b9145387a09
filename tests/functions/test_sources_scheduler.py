"""The scheduler of ``lakelet up``: catch-up, persistence across restarts, events."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lakelet.functions.invocation import Invocation
from lakelet.functions.model import App
from lakelet.functions.sources.launcher import NodeRun
from lakelet.functions.sources.scheduler import (
    Scheduler,
    latest_due,
    schedule_entries,
    schedule_event_id,
)
from lakelet.functions.sources.state import SourceState
from lakelet.project import Project

T0 = datetime(2026, 11, 27, 10, 0, 30, tzinfo=UTC)


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class RecordingInvoker:
    calls: list[tuple[str, Any, str, str]] = field(default_factory=list)

    def invoke(
        self,
        function: str,
        event: Any,
        *,
        invocation_type: str = "RequestResponse",
        source: str = "direct",
    ) -> Invocation:
        self.calls.append((function, event, invocation_type, source))
        return Invocation("r", function, "ok")

    async def ainvoke(self, function: str, event: Any, **kwargs: Any) -> Invocation:
        return self.invoke(function, event, **kwargs)


@dataclass
class FakeLauncher:
    """Runs nothing; the test ends runs by calling ``finish``."""

    started: list[tuple[str, str]] = field(default_factory=list)
    callbacks: dict[str, Callable[[NodeRun], None]] = field(default_factory=dict)

    def busy(self, node: str) -> bool:
        return node in self.callbacks

    def launch(
        self, node: str, why: str, *, arrival: bool, on_done: Callable[[NodeRun], None]
    ) -> bool:
        if node in self.callbacks:
            return False
        self.started.append((node, why))
        self.callbacks[node] = on_done
        return True

    def finish(self, node: str, *, ok: bool = True, busy: bool = False) -> None:
        self.callbacks.pop(node)(NodeRun(node, "", ok, True, busy, "done", 0.1))


def tick_app() -> App:
    app = App("sched")

    @app.schedule("rate(5 minutes)")
    def tick(event: Any, context: Any) -> None: ...

    @app.schedule("cron(0 12 * * ? *)", name="noon")
    def noon(event: Any, context: Any) -> None: ...

    return app


def scheduler(
    project: Project,
    clock: Clock,
    invoker: RecordingInvoker | None = None,
    launcher: FakeLauncher | None = None,
    app: App | None = None,
) -> Scheduler:
    entries = schedule_entries(app or tick_app(), project.settings)
    return Scheduler(
        entries,
        SourceState(project.metadata),
        invoker=invoker,
        launcher=launcher,  # type: ignore[arg-type]
        project=project,
        clock=clock,
    )


# --- latest_due ------------------------------------------------------------------------


def test_a_rate_is_due_one_interval_after_its_last_tick() -> None:
    assert latest_due("rate(5 minutes)", T0, T0 + timedelta(minutes=4, seconds=59)) is None
    assert latest_due("rate(5 minutes)", T0, T0 + timedelta(minutes=5)) == T0 + timedelta(minutes=5)


def test_missed_ticks_fire_once_as_the_latest_missed() -> None:
    later = T0 + timedelta(hours=3, minutes=7)
    assert latest_due("rate(5 minutes)", T0, later) == T0 + timedelta(hours=3, minutes=5)
    assert latest_due("cron(0 * * * ? *)", T0, later) == datetime(2026, 11, 27, 13, 0, tzinfo=UTC)
    assert latest_due("cron(* * * * ? *)", T0, later) == datetime(2026, 11, 27, 13, 7, tzinfo=UTC)


def test_a_sparse_cron_missed_days_ago_fires_its_latest_tick() -> None:
    # the 1st of each month at 06:00: down from Nov 27 to Feb 10 missed Dec 1, Jan 1, Feb 1
    later = datetime(2027, 2, 10, 9, 0, tzinfo=UTC)
    assert latest_due("cron(0 6 1 * ? *)", T0, later) == datetime(2027, 2, 1, 6, 0, tzinfo=UTC)


def test_never_fired_is_due_now() -> None:
    assert latest_due("cron(0 12 * * ? *)", None, T0) == T0


# --- function schedules ---------------------------------------------------------------


def test_a_new_schedule_starts_its_clock_and_fires_eventbridge_events(
    tmp_project: Project,
) -> None:
    clock, invoker = Clock(), RecordingInvoker()
    sched = scheduler(tmp_project, clock, invoker)
    assert sched.tick() == []  # first sight: the clock starts now
    clock.advance(minutes=5)
    fired = sched.tick()
    assert [e.target for e in fired] == ["tick"]
    (function, event, kind, source) = invoker.calls[0]
    assert (function, kind, source) == ("tick", "Event", "schedule")
    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == "aws.events"
    assert event["time"] == "2026-11-27T10:05:30Z"
    assert event["resources"] == ["arn:aws:events:us-east-1:123456789012:rule/sched-tick-schedule1"]
    assert event["id"] == schedule_event_id("sched-tick-schedule1", clock.now)
    assert sched.tick() == []  # not twice for one tick


def test_a_restart_neither_fires_twice_nor_skips(tmp_project: Project) -> None:
    clock, invoker = Clock(), RecordingInvoker()
    scheduler(tmp_project, clock, invoker).tick()
    clock.advance(minutes=5)
    scheduler(tmp_project, clock, invoker).tick()
    assert len(invoker.calls) == 1
    # a restart within the same tick: nothing again
    assert scheduler(tmp_project, clock, invoker).tick() == []
    # down for 17 minutes: the latest missed tick fires once, then the rate goes on
    clock.advance(minutes=17)
    again = scheduler(tmp_project, clock, invoker)
    again.tick()
    assert len(invoker.calls) == 2
    assert invoker.calls[1][1]["time"] == "2026-11-27T10:20:30Z"
    clock.advance(minutes=2, seconds=59)  # 10:25:29
    assert again.tick() == []
    clock.advance(seconds=1)
    assert [e.target for e in again.tick()] == ["tick"]
    assert invoker.calls[2][1]["time"] == "2026-11-27T10:25:30Z"


def test_a_cron_fires_at_its_match(tmp_project: Project) -> None:
    clock, invoker = Clock(), RecordingInvoker()
    sched = scheduler(tmp_project, clock, invoker)
    sched.tick()
    clock.now = datetime(2026, 11, 27, 12, 0, 10, tzinfo=UTC)
    fired = {e.target for e in sched.tick()}
    assert "noon" in fired
    noon = [c for c in invoker.calls if c[0] == "noon"]
    assert noon[0][1]["time"] == "2026-11-27T12:00:00Z"


def test_the_same_tick_has_the_same_event_id() -> None:
    a = schedule_event_id("r", T0)
    assert a == schedule_event_id("r", T0)
    assert a != schedule_event_id("r", T0 + timedelta(minutes=1))
    assert uuid.UUID(a).version == 5


# --- crawler and job schedules --------------------------------------------------------


@pytest.fixture
def scheduled_project(tmp_project: Project) -> Project:
    config = tmp_project.root / "lakelet.toml"
    config.write_text(
        config.read_text()
        + """
[crawlers.sales]
path = "raw/sales/"
schedule = "rate(1 hour)"

[jobs.daily]
sql = "jobs/daily.sql"
output = "curated.daily"
trigger = { schedule = "cron(0 2 * * ? *)" }
"""
    )
    return Project.open(tmp_project.root)


def test_crawler_and_job_schedules_run_once_at_a_time(scheduled_project: Project) -> None:
    clock, launcher = Clock(), FakeLauncher()
    sched = scheduler(scheduled_project, clock, launcher=launcher, app=App("none"))
    assert [e.key for e in sched.entries] == [
        "crawler:crawler:sales:rate(1 hour)",
        "job:job:daily:cron(0 2 * * ? *)",
    ]
    # never ran: both are due at once, as `lakelet crawl --due` / `lakelet run --due` say
    sched.tick()
    assert [node for node, _ in launcher.started] == ["crawler:sales", "job:daily"]
    clock.advance(hours=2)
    sched.tick()  # still running: not started twice
    assert len(launcher.started) == 2
    launcher.finish("crawler:sales")
    launcher.finish("job:daily", ok=False)
    sched.tick()  # the crawler's hour has passed since its tick; the job waits for 02:00
    assert [node for node, _ in launcher.started] == ["crawler:sales", "job:daily", "crawler:sales"]


def test_a_run_cut_short_by_a_restart_runs_again(scheduled_project: Project) -> None:
    clock, launcher = Clock(), FakeLauncher()
    scheduler(scheduled_project, clock, launcher=launcher, app=App("none")).tick()
    # killed before the runs finished: their ticks were not recorded
    relaunched = FakeLauncher()
    scheduler(scheduled_project, clock, launcher=relaunched, app=App("none")).tick()
    assert [node for node, _ in relaunched.started] == ["crawler:sales", "job:daily"]


def test_a_busy_node_keeps_its_tick_due(scheduled_project: Project) -> None:
    clock, launcher = Clock(), FakeLauncher()
    sched = scheduler(scheduled_project, clock, launcher=launcher, app=App("none"))
    sched.tick()
    launcher.finish("crawler:sales", busy=True)  # another process held its lock
    sched.tick()
    assert [node for node, _ in launcher.started].count("crawler:sales") == 2


def test_a_crawler_schedule_starts_from_its_last_run(scheduled_project: Project) -> None:
    from lakelet.crawler.manifest import CrawlerState, Manifest

    Manifest(scheduled_project.metadata).save_state(
        CrawlerState("sales", last_run_at=T0 - timedelta(minutes=10))
    )
    clock, launcher = Clock(), FakeLauncher()
    sched = scheduler(scheduled_project, clock, launcher=launcher, app=App("none"))
    sched.tick()
    assert [node for node, _ in launcher.started] == ["job:daily"]  # the job never ran
    clock.advance(minutes=50)
    sched.tick()
    assert [node for node, _ in launcher.started] == ["job:daily", "crawler:sales"]
