"""The scheduler of ``lakelet up``: EventBridge schedules of functions, and the
schedules of crawlers and jobs, on one clock (UTC, AWS's ``rate()``/``cron()``).

A function's schedule delivers EventBridge's ``Scheduled Event`` as an asynchronous
(``Event``) invocation; a crawler's ``schedule`` or a job's ``trigger.schedule`` runs
it in a process of its own (:mod:`lakelet.functions.sources.launcher`), never twice
at once.

Each schedule's last fire time is kept in the metadata database. Catch-up: EventBridge
does not back-fill the ticks a stopped target missed, and neither does this: when
``lakelet up`` was down over one or more ticks, the latest missed tick fires once, at
start, with its scheduled ``time``, and the schedule goes on from there. A function's
schedule seen for the first time starts its clock then (a ``rate`` fires one interval
later, a ``cron`` at its next match); a crawler or job schedule starts from the last
run recorded for it, so one that never ran runs at once (as ``lakelet crawl --due``
and ``lakelet run --due`` do). A tick is recorded after its event was queued (or its
run ended), so a kill in between fires it again after the restart, with the same
event ``id`` (derived from the rule and the tick) by which a handler can drop it.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal

from lakelet.crawler.schedule import Rate, next_fire, parse_schedule
from lakelet.functions.events.scheduled import format_time, rule_arn, scheduled_event
from lakelet.functions.sources.launcher import Launcher, NodeRun
from lakelet.functions.sources.state import SourceState

if TYPE_CHECKING:
    from lakelet.config import Settings
    from lakelet.functions.invocation import Invoker
    from lakelet.functions.model import App
    from lakelet.project import Project

log = logging.getLogger("lakelet.up")

Kind = Literal["function", "crawler", "job"]
Clock = Callable[[], datetime]
LOOK_BACK_MINUTES = 24 * 60  # how far back a cron's latest missed tick is searched first
RULE_NAME_MAX = 64


@dataclass(frozen=True)
class ScheduleEntry:
    """One schedule: a function's rule, or a crawler's or job's ``schedule``.

    ``target`` is the function name, or the node (``crawler:NAME``/``job:NAME``).
    """

    kind: Kind
    target: str
    expression: str
    rule: str = ""

    @property
    def key(self) -> str:
        """Where its state is kept; a new expression is a new schedule."""
        return f"{self.kind}:{self.target}:{self.expression}"


def schedule_entries(app: App | None, settings: Settings) -> list[ScheduleEntry]:
    """Every schedule ``lakelet up`` runs: the app's rules, then crawlers', then jobs'."""
    from lakelet.jobs.triggers import job_triggers

    entries = []
    if app is not None:
        for number, trigger in enumerate(app.schedules, start=1):
            rule = f"{app.name}-{trigger.function}-schedule{number}"[-RULE_NAME_MAX:]
            entries.append(ScheduleEntry("function", trigger.function, trigger.expression, rule))
    for name, crawler in sorted(settings.crawlers.items()):
        if crawler.schedule is not None:
            entries.append(ScheduleEntry("crawler", f"crawler:{name}", crawler.schedule))
    for name, job in sorted(settings.jobs.items()):
        expression = job_triggers(name, job.trigger).schedule
        if expression is not None:
            entries.append(ScheduleEntry("job", f"job:{name}", expression))
    for entry in entries:
        parse_schedule(entry.expression)
    return entries


def latest_due(expression: str, last: datetime | None, now: datetime) -> datetime | None:
    """The latest tick of ``expression`` after ``last`` and at or before ``now``
    (``None`` when none is due; ``now`` when it never fired)."""
    if last is None:
        return now
    schedule = parse_schedule(expression)
    first = next_fire(schedule, last, last=last)
    if first > now:
        return None
    if isinstance(schedule, Rate):
        periods = int((now - last).total_seconds() // schedule.seconds)
        return last + timedelta(seconds=periods * schedule.seconds)
    minute = now.replace(second=0, microsecond=0)
    for _ in range(LOOK_BACK_MINUTES):  # walk back: a dense cron matches at once
        if minute <= first:
            return first
        if next_fire(schedule, minute - timedelta(minutes=1)) == minute:
            return minute
        minute -= timedelta(minutes=1)
    current = first  # a sparse cron missed long ago: walk forward from the first miss
    while (following := next_fire(schedule, current)) <= now:
        current = following
    return current


def schedule_event_id(rule: str, tick: datetime) -> str:
    """The same tick of the same rule always has the same event ``id``."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{rule_arn(rule)}#{format_time(tick)}"))


class Scheduler:
    """Fires due schedules on each :meth:`tick`; ``clock`` is for tests."""

    def __init__(
        self,
        entries: Sequence[ScheduleEntry],
        state: SourceState,
        *,
        invoker: Invoker | None,
        launcher: Launcher | None,
        project: Project,
        region: str = "us-east-1",
        account_id: str = "123456789012",
        clock: Clock | None = None,
    ) -> None:
        self.entries = list(entries)
        self.state = state
        self.invoker = invoker
        self.launcher = launcher
        self.project = project
        self.region = region
        self.account_id = account_id
        self.clock = clock or _utcnow
        self._lock = threading.Lock()
        self._last: dict[str, datetime | None] = {}
        self._loaded = False

    def start(self) -> None:
        """Load the schedules' state; a new schedule's clock starts now."""
        self._load(self.clock())

    def tick(self) -> list[ScheduleEntry]:
        """Fire every schedule due now; returns those fired (or started)."""
        now = self.clock()
        self._load(now)
        fired = []
        for entry in self.entries:
            with self._lock:
                last = self._last[entry.key]
            tick = latest_due(entry.expression, last, now)
            if tick is None:
                continue
            if entry.kind == "function":
                if self._fire_function(entry, tick):
                    fired.append(entry)
            elif self._start_run(entry, tick):
                fired.append(entry)
        return fired

    # --- firing ----------------------------------------------------------------------

    def _fire_function(self, entry: ScheduleEntry, tick: datetime) -> bool:
        if self.invoker is None:
            return False
        event = scheduled_event(
            entry.rule,
            tick,
            region=self.region,
            account_id=self.account_id,
            event_id=schedule_event_id(entry.rule, tick),
        )
        self.invoker.invoke(entry.target, event, invocation_type="Event", source="schedule")
        self._record(entry, tick)
        log.info("schedule  %s %s → %s (queued)", entry.expression, format_time(tick), entry.target)
        return True

    def _start_run(self, entry: ScheduleEntry, tick: datetime) -> bool:
        if self.launcher is None:
            return False
        why = f"schedule {entry.expression} {format_time(tick)}"

        def done(run: NodeRun) -> None:
            if run.busy:  # another process runs it: the tick stays due
                log.info("%-9s %s: %s; trying again", entry.kind, entry.target, run.summary)
                return
            self._record(entry, tick)
            log_run(entry.kind, run)

        started = self.launcher.launch(entry.target, why, arrival=False, on_done=done)
        if started:
            log.info("%-9s %s started (%s)", entry.kind, entry.target, why)
        return started

    def _record(self, entry: ScheduleEntry, tick: datetime) -> None:
        self.state.set_schedule(entry.key, tick)
        with self._lock:
            self._last[entry.key] = tick

    def _load(self, now: datetime) -> None:
        """Known schedules from the database; a new one starts its clock (see the
        module's notes) and is stored at once, so a restart keeps that clock."""
        if self._loaded:
            return
        stored = self.state.schedules()
        for entry in self.entries:
            if entry.key in stored:
                last = stored[entry.key]
            else:
                last = self._first_clock(entry, now)
                self.state.set_schedule(entry.key, last)
            with self._lock:
                self._last[entry.key] = last
        self._loaded = True

    def _first_clock(self, entry: ScheduleEntry, now: datetime) -> datetime | None:
        if entry.kind == "function":
            return now
        kind, _, name = entry.target.partition(":")
        if kind == "crawler":
            from lakelet.crawler.manifest import Manifest

            last = Manifest(self.project.metadata).state(name).last_run_at
        else:
            from lakelet.jobs.runs import RunStore

            runs = RunStore(self.project.metadata).recent(name, 1)
            last = runs[0].started_at if runs else None
        if last is not None and last.tzinfo is None:
            last = last.replace(tzinfo=UTC)  # stored as UTC
        return last


def log_run(kind: str, run: NodeRun) -> None:
    """One line for the end of a crawler or job run."""
    if not run.ran and run.ok:
        log.debug("%-9s %s: %s", kind, run.node, run.summary)
        return
    verdict = "succeeded" if run.ok else "failed"
    level = logging.INFO if run.ok else logging.WARNING
    log.log(level, "%-9s %s %s in %.1f s: %s", kind, run.node, verdict, run.seconds, run.summary)


def _utcnow() -> datetime:
    return datetime.now(UTC)
