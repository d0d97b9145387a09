"""Object events for ``lakelet up``: find what other programs write into the lake, and
hand every object-created event to the functions, crawlers and jobs that wait for it.

Two readers of the project's :class:`~lakelet.storage.events.EventLog`:

* :class:`ObjectWatcher` polls the listing of every watched location (the places some
  trigger looks at) and records an ``ObjectCreated:Put`` event for each object that is
  new or changed and was not written through Lakelet (whose puts record their own
  event). An object is recorded once it looks the same on two polls in a row, so a
  file still being written, or a Lakelet put between writing its file and recording
  its event, is not announced early or twice. Hidden files (a name starting with
  ``.``), which other programs use for partial writes, are ignored. A location
  watched for the first time is taken as it is (like S3, which announces only objects
  created after a notification was configured); after that, objects written while
  ``lakelet up`` was down are found on the next start.
* :class:`ObjectDispatcher` reads the log from its persisted position and makes an
  asynchronous (``Event``) invocation with S3's event for every trigger an event
  matches; the position moves only after the runtime accepted (durably queued) the
  invocations, so a kill re-delivers rather than loses (at least once). On its very
  first start it begins at the end of the log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lakelet.functions.events.s3 import object_created_event
from lakelet.functions.sources.state import ObjectKey, SourceState
from lakelet.storage.base import ObjectInfo, ObjectStore, iter_objects
from lakelet.storage.events import OBJECT_CREATED_PUT, EventLog, ObjectEvent
from lakelet.storage.local import TMP_PREFIX

if TYPE_CHECKING:
    from lakelet.config import Settings
    from lakelet.functions.invocation import Invoker
    from lakelet.functions.model import App, ObjectTrigger

log = logging.getLogger("lakelet.up")

WATCH_CURSOR = "watcher"
DISPATCH_CURSOR = "dispatcher"
BATCH = 1000
GAP_WAIT_S = 10.0  # how long an id missing from the log may still be committing


@dataclass(frozen=True, order=True)
class Location:
    """A bucket and a key prefix ("" for the whole bucket)."""

    bucket: str
    prefix: str = ""

    def covers(self, bucket: str, key: str) -> bool:
        return bucket == self.bucket and key.startswith(self.prefix)

    def __str__(self) -> str:
        return f"{self.bucket}/{self.prefix}"


def watched_locations(app: App | None, settings: Settings) -> list[Location]:
    """Where objects are awaited: object triggers, on-arrival crawlers, arrival jobs;
    a location inside another is dropped."""
    from lakelet.crawler.crawler import crawl_prefix
    from lakelet.jobs.triggers import job_triggers
    from lakelet.storage.base import split_location

    found = set()
    if app is not None:
        found |= {Location(t.bucket, t.prefix) for t in app.object_triggers}
    for crawler in settings.crawlers.values():
        if crawler.on_arrival:
            found.add(Location(*crawl_prefix(crawler.path)))
    for name, job in settings.jobs.items():
        arrival = job_triggers(name, job.trigger).arrival
        if arrival is not None:
            found.add(Location(*split_location(arrival)))
    return [
        loc
        for loc in sorted(found)
        if not any(o != loc and o.covers(loc.bucket, loc.prefix) for o in found)
    ]


def log_end(events: EventLog) -> int:
    """The id of the newest event in the log (0 when it is empty)."""
    end = 0
    while batch := events.since(end, limit=10_000):
        end = batch[-1].id
    return end


def ignored(key: str) -> bool:
    """Partial writes: Lakelet's temporary files and other programs' hidden files."""
    name = key.rsplit("/", 1)[-1]
    return name.startswith((TMP_PREFIX, "."))


class ObjectWatcher:
    """Records events for objects that other programs write into ``locations``."""

    def __init__(
        self,
        store: ObjectStore,
        events: EventLog,
        state: SourceState,
        locations: Sequence[Location],
    ) -> None:
        self.store = store
        self.events = events
        self.state = state
        self.locations = list(locations)
        self._seen: dict[ObjectKey, str] = {}
        self._pending: dict[ObjectKey, ObjectInfo] = {}
        self._cursor = 0
        self._started = False

    def poll(self) -> list[ObjectInfo]:
        """One look at the lake; returns the objects it recorded events for."""
        if not self.locations:
            return []
        self.start()
        self._absorb()
        listed = self._list()
        gone = [k for k in self._seen if k not in listed and self._watches(*k)]
        changed = {k: i for k, i in listed.items() if self._seen.get(k) != i.etag}
        ready = [i for k, i in changed.items() if _same(self._pending.get(k), i)]
        self._pending = {k: i for k, i in changed.items() if not _same(self._pending.get(k), i)}
        if gone:
            for key in gone:
                del self._seen[key]
            self.state.save_watched(gone=gone)
        if not ready:
            return []
        self._absorb()  # a Lakelet put may have recorded its event since the listing
        recorded = []
        for info in ready:
            if self._seen.get((info.bucket, info.key)) != info.etag:
                self.events.record(info, OBJECT_CREATED_PUT)
                recorded.append(info)
                log.info(
                    "watch     %s/%s appeared (%d bytes, written by another program)",
                    info.bucket,
                    info.key,
                    info.size,
                )
        self._absorb()  # the events just recorded: seen from now on
        return recorded

    def start(self) -> None:
        """Load what was seen before and take newly watched locations as they are
        (before ``lakelet up`` says it is ready, so nothing written after is missed)."""
        if self._started or not self.locations:
            return
        cursor = self.state.cursor(WATCH_CURSOR)
        if cursor is None:
            cursor = log_end(self.events)
            self.state.set_cursor(WATCH_CURSOR, cursor)
        self._cursor = cursor
        self._seen = self.state.watched({loc.bucket for loc in self.locations})
        known = self.state.locations()
        for loc in self.locations:
            if (loc.bucket, loc.prefix) not in known:
                listing = iter_objects(self.store, loc.bucket, loc.prefix)
                objects = [i for i in listing if not ignored(i.key)]
                self.state.save_watched(objects, location=(loc.bucket, loc.prefix))
                self._seen.update({(i.bucket, i.key): i.etag for i in objects})
        self._started = True

    def _absorb(self) -> None:
        """Take note of the events recorded since the last look (Lakelet's puts and
        this watcher's own), so their objects count as announced."""
        while batch := self.events.since(self._cursor, limit=BATCH):
            seen = [_info(e) for e in batch if self._watches(e.bucket, e.key)]
            self._cursor = batch[-1].id
            self.state.save_watched(seen, cursor=(WATCH_CURSOR, self._cursor))
            self._seen.update({(i.bucket, i.key): i.etag for i in seen})

    def _list(self) -> dict[ObjectKey, ObjectInfo]:
        listed: dict[ObjectKey, ObjectInfo] = {}
        for loc in self.locations:
            for info in iter_objects(self.store, loc.bucket, loc.prefix):
                if not ignored(info.key):
                    listed[(info.bucket, info.key)] = info
        return listed

    def _watches(self, bucket: str, key: str) -> bool:
        return any(loc.covers(bucket, key) for loc in self.locations)


OnEvents = Callable[[Sequence[ObjectEvent]], None]


class ObjectDispatcher:
    """Turns logged object events into ``Event`` invocations of matching triggers."""

    def __init__(
        self,
        events: EventLog,
        state: SourceState,
        triggers: Iterable[ObjectTrigger],
        *,
        invoker: Invoker | None,
        region: str = "us-east-1",
        on_events: OnEvents | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.events = events
        self.state = state
        self.triggers = list(triggers)
        self.invoker = invoker
        self.region = region
        self.on_events = on_events
        self.clock = clock
        self._cursor: int | None = None
        self._gap: tuple[int, float] | None = None  # (missing id, first noticed)

    @property
    def position(self) -> int | None:
        return self._cursor

    def start(self) -> None:
        """Take up the stored position; on the very first start, the end of the log
        (before ``lakelet up`` says it is ready, so no later event is passed over)."""
        if self._cursor is None:
            stored = self.state.cursor(DISPATCH_CURSOR)
            if stored is None:
                stored = log_end(self.events)
                self.state.set_cursor(DISPATCH_CURSOR, stored)
            self._cursor = stored

    def step(self) -> int:
        """Hand on the events logged since the last step; returns how many."""
        self.start()
        assert self._cursor is not None
        start = self._cursor
        handled: list[ObjectEvent] = []
        try:
            while batch := self.events.since(self._cursor, limit=BATCH):
                ready = self._contiguous(batch)
                for event in ready:
                    self._dispatch(event)
                    self._cursor = event.id
                    handled.append(event)
                if len(ready) < BATCH:
                    break
        finally:  # also when an invocation failed: what was handed on stays handed on
            if self._cursor != start:
                self.state.set_cursor(DISPATCH_CURSOR, self._cursor)
            if handled and self.on_events is not None:
                self.on_events(handled)
        return len(handled)

    def matching(self, event: ObjectEvent) -> list[ObjectTrigger]:
        return [
            t
            for t in self.triggers
            if t.bucket == event.bucket
            and event.key.startswith(t.prefix)
            and event.key.endswith(t.suffix)
        ]

    def _dispatch(self, event: ObjectEvent) -> None:
        """Invoke every matching trigger, then store the position past the event (an
        event that matches nothing moves it at the end of the step)."""
        assert self._cursor is not None
        triggers = self.matching(event) if self.invoker is not None else []
        for trigger in triggers:
            payload = object_created_event(
                event.bucket,
                event.key,
                event.size,
                event.etag,
                event_name=event.event_name,
                event_time=event.event_time,
                region=self.region,
                sequencer=event.id,
            )
            assert self.invoker is not None
            self.invoker.invoke(trigger.function, payload, invocation_type="Event", source="s3")
            log.info("s3        %s/%s → %s (queued)", event.bucket, event.key, trigger.function)
        if triggers:
            self.state.set_cursor(DISPATCH_CURSOR, event.id)

    def _contiguous(self, batch: list[ObjectEvent]) -> list[ObjectEvent]:
        """The events up to the first id missing from the log while it may still be
        committing (ids are handed out before commit on PostgreSQL); a gap older than
        ``GAP_WAIT_S`` is a rolled-back insert and is passed over."""
        assert self._cursor is not None
        expected = self._cursor + 1
        for index, event in enumerate(batch):
            if event.id != expected:
                now = self.clock()
                if self._gap is None or self._gap[0] != expected:
                    self._gap = (expected, now)
                if now - self._gap[1] < GAP_WAIT_S:
                    return batch[:index]
            expected = event.id + 1
        self._gap = None
        return batch


def _same(before: ObjectInfo | None, now: ObjectInfo) -> bool:
    return before is not None and (before.size, before.etag) == (now.size, now.etag)


def _info(event: ObjectEvent) -> ObjectInfo:
    return ObjectInfo(event.bucket, event.key, event.size, event.etag, event.event_time)
