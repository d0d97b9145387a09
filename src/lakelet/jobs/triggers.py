"""When a job runs by itself: after other nodes, on a schedule, or when files arrive.

``[jobs.NAME] trigger`` holds any of::

    after = ["crawler:sales", "job:clean"]   # conditional (see lakelet.jobs.workflow)
    on = "succeeded" | "failed" | "completed"
    logic = "all" | "any"
    schedule = "cron(0 2 * * ? *)"           # AWS rate()/cron() syntax, UTC
    arrival = "raw/sales/"                   # ObjectCreated events under this path

A scheduled job is due when its schedule fired since its last run started; an arrival
job when an object was created under its path since then (or it never ran).
:func:`due_jobs` says which jobs are due and why; ``lakelet run --due`` runs them.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from lakelet.crawler.schedule import is_due, parse_schedule
from lakelet.errors import ConfigError
from lakelet.storage.base import split_location

if TYPE_CHECKING:
    from lakelet.project import Project

NodeState = Literal["waiting", "running", "succeeded", "failed", "skipped"]
TRIGGER_KEYS = ("after", "on", "logic", "schedule", "arrival")


@dataclass(frozen=True)
class Trigger:
    after: tuple[str, ...]
    on: Literal["succeeded", "failed", "completed"] = "succeeded"
    logic: Literal["all", "any"] = "all"

    def holds(self, states: Mapping[str, NodeState]) -> bool | None:
        """True/False once decidable from the predecessors' states, else ``None``."""
        wanted = {
            "succeeded": {"succeeded"},
            "failed": {"failed"},
            "completed": {"succeeded", "failed"},
        }[self.on]
        done = {n: states[n] for n in self.after if states[n] in ("succeeded", "failed", "skipped")}
        matches = [n for n, s in done.items() if s in wanted]
        if self.logic == "any":
            if matches:
                return True
            return False if len(done) == len(self.after) else None
        if len(matches) == len(self.after):
            return True
        return False if len(done) > len(matches) else None


@dataclass(frozen=True)
class JobTriggers:
    after: Trigger | None
    schedule: str | None = None
    arrival: str | None = None


def job_triggers(job: str, raw: Mapping[str, Any]) -> JobTriggers:
    """The ``trigger`` table of ``[jobs.job]``, checked key by key."""
    where = f"jobs.{job}.trigger"
    for key in raw:
        if key not in TRIGGER_KEYS:
            close = difflib.get_close_matches(str(key), TRIGGER_KEYS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{where}: unknown key {key!r}{hint}")
    schedule = raw.get("schedule")
    if schedule is not None:
        if not isinstance(schedule, str):
            raise ConfigError(f'{where}.schedule: expected "rate(...)" or "cron(...)"')
        parse_schedule(schedule)  # a bad expression fails here, naming itself
    arrival = raw.get("arrival")
    if arrival is not None and (not isinstance(arrival, str) or "/" not in arrival):
        raise ConfigError(f'{where}.arrival: expected a lake path like "raw/sales/"')
    after = raw.get("after", [])
    if isinstance(after, str):
        after = [after]
    if not after:
        return JobTriggers(None, schedule, arrival)
    if not isinstance(after, list) or not all(isinstance(a, str) for a in after):
        raise ConfigError(f'{where}.after: expected a list like ["crawler:sales", "job:clean"]')
    on = raw.get("on", "succeeded")
    logic = raw.get("logic", "all")
    if on not in ("succeeded", "failed", "completed"):
        raise ConfigError(f"{where}.on = {on!r}: use succeeded, failed or completed")
    if logic not in ("all", "any"):
        raise ConfigError(f"{where}.logic = {logic!r}: use all or any")
    return JobTriggers(Trigger(tuple(after), on, logic), schedule, arrival)


def due_jobs(project: Project, now: datetime | None = None) -> list[tuple[str, str]]:
    """``(job, why)`` for every job whose schedule fired or whose files arrived."""
    from lakelet.jobs.runs import RunStore

    now = now or datetime.now(UTC)
    runs = RunStore(project.metadata)
    due = []
    for job, section in sorted(project.settings.jobs.items()):
        triggers = job_triggers(job, section.trigger)
        if triggers.schedule is None and triggers.arrival is None:
            continue
        last = runs.recent(job, 1)
        last_start = last[0].started_at if last else None
        if triggers.schedule is not None and is_due(triggers.schedule, last_start, now):
            due.append((job, f"schedule {triggers.schedule} fired"))
        elif triggers.arrival is not None and _arrived(project, triggers.arrival, last_start):
            due.append((job, f"new objects under {triggers.arrival}"))
    return due


def _arrived(project: Project, path: str, since: datetime | None) -> bool:
    bucket, prefix = split_location(path)
    for event in project.events.iter_all(bucket=bucket, prefix=prefix):
        if since is None or event.event_time > since:
            return True
    return False
