"""Crawlers that run when files arrive, and crawlers whose schedule is due.

``on_arrival = true``: a crawler runs (incrementally) when object-created events under
its path arrived after the last event it consumed; it then remembers the newest event
id, so every event is acted on at least once and a crawl that fails is retried by the
next call. ``schedule``: a crawler runs when its ``rate()``/``cron()`` schedule fired
since its last run. ``lakelet up`` will call these from its scheduler; until then
``lakelet crawl --events`` and ``lakelet crawl --due`` do.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from lakelet.crawler.crawler import crawl_prefix, run_crawler
from lakelet.crawler.manifest import Manifest
from lakelet.crawler.report import CrawlReport
from lakelet.crawler.schedule import ScheduleError, is_due, parse_schedule

if TYPE_CHECKING:
    from lakelet.project import Project

EVENT_BATCH = 10_000


def crawl_on_arrival(project: Project) -> list[CrawlReport]:
    """Run every ``on_arrival`` crawler that has new object events under its path."""
    manifest = Manifest(project.metadata)
    reports = []
    for name, spec in sorted(project.settings.crawlers.items()):
        if not spec.on_arrival:
            continue
        bucket, prefix = crawl_prefix(spec.path)
        state = manifest.state(name)
        newest = state.last_event_id
        while events := project.events.since(
            newest, bucket=bucket, prefix=prefix, limit=EVENT_BATCH
        ):
            newest = events[-1].id
        if newest == state.last_event_id:
            continue
        reports.append(run_crawler(project, name, spec))
        manifest.save_state(replace(manifest.state(name), last_event_id=newest))
    return reports


def due_crawlers(project: Project, now: datetime | None = None) -> list[str]:
    """Crawlers with a ``schedule`` that fired since their last run (or never ran)."""
    now = now or datetime.now(UTC)
    manifest = Manifest(project.metadata)
    due = []
    for name, spec in sorted(project.settings.crawlers.items()):
        if spec.schedule is None:
            continue
        try:
            parse_schedule(spec.schedule)
        except ScheduleError as exc:
            raise ScheduleError(f"crawlers.{name}.schedule: {exc}") from None
        if is_due(spec.schedule, manifest.state(name).last_run_at, now):
            due.append(name)
    return due


def crawl_due(project: Project, now: datetime | None = None) -> list[CrawlReport]:
    """Run the crawlers whose schedule is due."""
    crawlers = project.settings.crawlers
    return [run_crawler(project, name, crawlers[name]) for name in due_crawlers(project, now)]
