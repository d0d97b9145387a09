"""The lake watcher and the object-event dispatcher of ``lakelet up``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

import pytest

from lakelet.functions.invocation import FunctionsError, Invocation
from lakelet.functions.model import App, ObjectTrigger
from lakelet.functions.sources.objects import (
    Location,
    ObjectDispatcher,
    ObjectWatcher,
    watched_locations,
)
from lakelet.functions.sources.state import SourceState
from lakelet.project import Project
from lakelet.storage.events import ObjectEvent


@dataclass
class RecordingInvoker:
    calls: list[tuple[str, Any]] = field(default_factory=list)
    fail_after: int | None = None

    def invoke(
        self,
        function: str,
        event: Any,
        *,
        invocation_type: str = "RequestResponse",
        source: str = "direct",
    ) -> Invocation:
        assert (invocation_type, source) == ("Event", "s3")
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise FunctionsError("the event queue is unavailable")
        self.calls.append((function, event))
        return Invocation("r", function, "ok")

    async def ainvoke(self, function: str, event: Any, **kwargs: Any) -> Invocation:
        return self.invoke(function, event, **kwargs)

    def keys(self, function: str | None = None) -> list[str]:
        return [
            unquote_plus(e["Records"][0]["s3"]["object"]["key"])
            for f, e in self.calls
            if function in (None, f)
        ]


def events_of(project: Project) -> list[tuple[str, str]]:
    return [(e.bucket, e.key) for e in project.events.iter_all()]


def watcher(project: Project, *locations: Location) -> ObjectWatcher:
    return ObjectWatcher(
        project.store,
        project.events,
        SourceState(project.metadata),
        list(locations) or [Location("raw", "drop/")],
    )


def drop(project: Project, key: str, data: bytes) -> None:
    """Another program writes a file straight into the local lake folder."""
    path = project.root / "lake" / "raw" / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


# --- the watcher -------------------------------------------------------------------------


def test_objects_present_before_the_first_watch_are_not_announced(tmp_project: Project) -> None:
    drop(tmp_project, "drop/old.csv", b"a\n")
    w = watcher(tmp_project)
    assert w.poll() == [] and w.poll() == []
    assert events_of(tmp_project) == []


def test_an_object_written_by_another_program_is_recorded_once_it_is_stable(
    tmp_project: Project,
) -> None:
    w = watcher(tmp_project)
    w.poll()
    drop(tmp_project, "drop/new.csv", b"a,b\n")
    assert w.poll() == []  # seen once: it may still be being written
    drop(tmp_project, "drop/new.csv", b"a,b\n1,2\n")  # it was: it grew
    assert w.poll() == []
    recorded = w.poll()
    assert [(i.bucket, i.key, i.size) for i in recorded] == [("raw", "drop/new.csv", 8)]
    assert events_of(tmp_project) == [("raw", "drop/new.csv")]
    assert w.poll() == [] and w.poll() == []
    assert len(events_of(tmp_project)) == 1


def test_a_lakelet_put_is_not_recorded_again_by_the_watcher(tmp_project: Project) -> None:
    w = watcher(tmp_project)
    w.poll()
    tmp_project.store.put("raw", "drop/put.csv", b"x\n")
    for _ in range(3):
        assert w.poll() == []
    assert events_of(tmp_project) == [("raw", "drop/put.csv")]


def test_a_put_seen_between_writing_and_recording_is_not_recorded_twice(
    tmp_project: Project,
) -> None:
    w = watcher(tmp_project)
    w.poll()
    info = tmp_project.store.inner.put("raw", "drop/racy.csv", b"x\n")  # file written…
    assert w.poll() == []  # …the watcher saw it…
    tmp_project.events.record(info)  # …then the put recorded its own event
    assert w.poll() == [] and w.poll() == []
    assert events_of(tmp_project) == [("raw", "drop/racy.csv")]


def test_temporary_and_hidden_files_are_ignored(tmp_project: Project) -> None:
    w = watcher(tmp_project)
    w.poll()
    drop(tmp_project, "drop/.partial.csv", b"half")
    drop(tmp_project, "drop/.lakelet-tmp-abc", b"half")
    drop(tmp_project, "elsewhere/x.csv", b"not watched")
    w.poll()
    w.poll()
    assert events_of(tmp_project) == []


def test_an_overwritten_or_recreated_object_is_announced_again(tmp_project: Project) -> None:
    w = watcher(tmp_project)
    w.poll()
    drop(tmp_project, "drop/a.csv", b"1\n")
    w.poll()
    w.poll()
    drop(tmp_project, "drop/a.csv", b"1\n2\n")
    w.poll()
    w.poll()
    (tmp_project.root / "lake/raw/drop/a.csv").unlink()
    w.poll()
    drop(tmp_project, "drop/a.csv", b"1\n")
    w.poll()
    w.poll()
    assert events_of(tmp_project) == [("raw", "drop/a.csv")] * 3


def test_objects_written_while_lakelet_up_was_down_are_found_on_restart(
    tmp_project: Project,
) -> None:
    first = watcher(tmp_project)
    first.poll()
    drop(tmp_project, "drop/seen.csv", b"1\n")
    first.poll()
    first.poll()
    # killed; meanwhile another program writes a file
    drop(tmp_project, "drop/while-down.csv", b"2\n")
    second = watcher(tmp_project)
    second.poll()
    second.poll()
    assert events_of(tmp_project) == [("raw", "drop/seen.csv"), ("raw", "drop/while-down.csv")]


def test_watched_locations_come_from_every_trigger(tmp_project: Project) -> None:
    config = tmp_project.root / "lakelet.toml"
    config.write_text(
        config.read_text()
        + """
[crawlers.sales]
path = "raw/sales/"
on_arrival = true

[crawlers.nightly]
path = "raw/nightly/"
schedule = "cron(0 2 * * ? *)"

[jobs.clean]
sql = "jobs/clean.sql"
output = "curated.clean"
trigger = { arrival = "raw/sales/2026/" }
"""
    )
    app = App("w")

    @app.on_object_created(bucket="curated", prefix="exports/", suffix=".json")
    def exported(event: Any, context: Any) -> None: ...

    locations = watched_locations(app, Project.open(tmp_project.root).settings)
    # the job's path lies inside the crawler's; the scheduled crawler waits for nothing
    assert locations == [Location("curated", "exports/"), Location("raw", "sales/")]


@pytest.mark.integration
def test_an_object_written_into_the_s3_prefix_by_another_program_is_recorded(
    s3_project: Project,
) -> None:
    w = watcher(s3_project)
    w.poll()
    store = s3_project.store
    fs = store.filesystem()
    fs.pipe_file(store.url("raw", "drop/from-s3.csv"), b"a\n1\n")  # not through Lakelet
    store.put("raw", "drop/through-lakelet.csv", b"a\n2\n")
    for _ in range(3):
        w.poll()
    assert sorted(events_of(s3_project)) == [
        ("raw", "drop/from-s3.csv"),
        ("raw", "drop/through-lakelet.csv"),
    ]


# --- the dispatcher ----------------------------------------------------------------------

TRIGGERS = [
    ObjectTrigger("on_csv", "raw", "drop/", ".csv"),
    ObjectTrigger("on_any", "raw", "drop/"),
]


def dispatcher(project: Project, invoker: RecordingInvoker, **kwargs: Any) -> ObjectDispatcher:
    return ObjectDispatcher(
        project.events, SourceState(project.metadata), TRIGGERS, invoker=invoker, **kwargs
    )


def test_each_matching_trigger_gets_the_s3_event(tmp_project: Project) -> None:
    invoker = RecordingInvoker()
    d = dispatcher(tmp_project, invoker)
    d.step()
    tmp_project.store.put("raw", "drop/a b=c.csv", b"12345")
    tmp_project.store.put("raw", "drop/notes.txt", b"x")
    tmp_project.store.put("raw", "other/z.csv", b"x")
    tmp_project.store.put("curated", "drop/y.csv", b"x")
    assert d.step() == 4
    assert invoker.keys("on_csv") == ["drop/a b=c.csv"]
    assert invoker.keys("on_any") == ["drop/a b=c.csv", "drop/notes.txt"]
    record = invoker.calls[0][1]["Records"][0]
    assert record["eventName"] == "ObjectCreated:Put"
    assert record["s3"]["bucket"]["name"] == "raw"
    assert record["s3"]["object"]["key"] == "drop/a+b%3Dc.csv"  # encoded as S3 does
    assert record["s3"]["object"]["size"] == 5
    first_event = next(iter(tmp_project.events.iter_all()))
    assert int(record["s3"]["object"]["sequencer"], 16) == first_event.id
    assert d.step() == 0  # nothing twice


def test_the_first_start_begins_at_the_end_of_the_log(tmp_project: Project) -> None:
    tmp_project.store.put("raw", "drop/history.csv", b"old")
    invoker = RecordingInvoker()
    d = dispatcher(tmp_project, invoker)
    assert d.step() == 0
    tmp_project.store.put("raw", "drop/new.csv", b"new")
    d.step()
    assert invoker.keys("on_csv") == ["drop/new.csv"]


def test_a_restart_resumes_where_it_stopped(tmp_project: Project) -> None:
    invoker = RecordingInvoker()
    dispatcher(tmp_project, invoker).step()
    tmp_project.store.put("raw", "drop/1.csv", b"1")
    dispatcher(tmp_project, invoker).step()
    tmp_project.store.put("raw", "drop/2.csv", b"2")  # recorded while down
    dispatcher(tmp_project, invoker).step()
    assert invoker.keys("on_csv") == ["drop/1.csv", "drop/2.csv"]


def test_an_event_not_accepted_is_delivered_again(tmp_project: Project) -> None:
    invoker = RecordingInvoker(fail_after=3)
    d = dispatcher(tmp_project, invoker)
    d.step()
    for n in range(3):
        tmp_project.store.put("raw", f"drop/{n}.csv", b"n")
    with pytest.raises(FunctionsError):
        d.step()  # 0.csv to both triggers, 1.csv to on_csv, then the queue fails
    invoker.fail_after = None
    dispatcher(tmp_project, invoker).step()  # as after a restart
    assert invoker.keys("on_csv") == ["drop/0.csv", "drop/1.csv", "drop/1.csv", "drop/2.csv"]
    assert invoker.keys("on_any") == ["drop/0.csv", "drop/1.csv", "drop/2.csv"]


def test_handed_on_events_reach_the_arrival_triggers(tmp_project: Project) -> None:
    seen: list[str] = []
    d = dispatcher(
        tmp_project, RecordingInvoker(), on_events=lambda evs: seen.extend(e.key for e in evs)
    )
    d.step()
    tmp_project.store.put("raw", "sales/a.csv", b"1")
    d.step()
    assert seen == ["sales/a.csv"]


@dataclass
class GappyLog:
    """An event log in which id 2 is still being committed."""

    events: list[ObjectEvent]

    def since(self, after_id: int = 0, **_: Any) -> list[ObjectEvent]:
        return [e for e in self.events if e.id > after_id]


def test_a_gap_in_the_log_is_waited_for_then_passed(tmp_project: Project) -> None:
    from datetime import UTC, datetime

    def event(n: int) -> ObjectEvent:
        return ObjectEvent(
            n, "ObjectCreated:Put", datetime.now(UTC), "raw", f"drop/{n}.csv", 1, "e"
        )

    log = GappyLog([event(1), event(3)])
    now = [100.0]
    invoker = RecordingInvoker()
    state = SourceState(tmp_project.metadata)
    state.set_cursor("dispatcher", 0)
    d = ObjectDispatcher(
        log,  # type: ignore[arg-type]
        state,
        TRIGGERS[:1],
        invoker=invoker,
        clock=lambda: now[0],
    )
    d.step()
    assert invoker.keys() == ["drop/1.csv"]  # 3 waits for 2
    log.events.insert(1, event(2))  # 2 commits
    d.step()
    assert invoker.keys() == ["drop/1.csv", "drop/2.csv", "drop/3.csv"]
    log.events.append(event(5))  # 4 was rolled back: never comes
    d.step()
    assert d.position == 3
    now[0] += 11
    d.step()
    assert invoker.keys()[-1] == "drop/5.csv"
