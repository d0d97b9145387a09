"""Object-created events: one per put, durable, readable from any id by bucket and prefix."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lakelet.errors import InvalidKeyError, ObjectNotFoundError
from lakelet.metadata import open_engine
from lakelet.project import Project
from lakelet.storage.events import OBJECT_CREATED_PUT, EventLog, ObjectEvent, RecordingStore
from lakelet.storage.local import LocalStore


@pytest.fixture
def recording(tmp_path: Path) -> RecordingStore:
    lake = LocalStore(tmp_path / "lake")
    lake.create_bucket("raw")
    lake.create_bucket("curated")
    return RecordingStore(lake, EventLog(open_engine("sqlite:///meta.db", tmp_path)))


def described(events: list[ObjectEvent]) -> list[tuple[str, str]]:
    return [(e.bucket, e.key) for e in events]


def test_every_put_records_one_event_with_the_object(any_project: Project) -> None:
    store = any_project.store
    before = datetime.now(UTC)

    first = store.put("raw", "sales/a.csv", b"m,1\n")
    second = store.put("raw", "sales/b.csv", io.BytesIO(b"m,22\n"))
    again = store.put("raw", "sales/a.csv", b"m,333\n")

    events = any_project.events.since(0)
    assert [e.event_name for e in events] == [OBJECT_CREATED_PUT] * 3
    assert [(e.bucket, e.key, e.size, e.etag) for e in events] == [
        (i.bucket, i.key, i.size, i.etag) for i in (first, second, again)
    ]
    assert events[0].id < events[1].id < events[2].id
    assert all(before <= e.event_time <= datetime.now(UTC) for e in events)


def test_reads_deletes_and_bucket_creation_record_nothing(recording: RecordingStore) -> None:
    recording.put("raw", "a.csv", b"1")
    recording.get("raw", "a.csv")
    recording.head("raw", "a.csv")
    list(recording.list_page("raw").objects)
    recording.create_bucket("landing")
    recording.delete("raw", "a.csv")

    assert described(recording.events.since(0)) == [("raw", "a.csv")]


def test_a_failed_put_records_no_event(recording: RecordingStore) -> None:
    with pytest.raises(InvalidKeyError):
        recording.put("raw", "../escape.csv", b"1")
    with pytest.raises(ObjectNotFoundError):
        recording.put("nosuchbucket", "a.csv", b"1")

    assert recording.events.since(0) == []


def test_events_are_durable(tmp_path: Path) -> None:
    lake = LocalStore(tmp_path / "lake")
    lake.create_bucket("raw")
    store = RecordingStore(lake, EventLog(open_engine("sqlite:///meta.db", tmp_path)))
    info = store.put("raw", "a.csv", b"1")

    engine = open_engine("sqlite:///meta.db", tmp_path)  # as another process would
    events = EventLog(engine).since(0)
    engine.dispose()

    assert [(e.key, e.size, e.etag) for e in events] == [(info.key, info.size, info.etag)]


def test_reopened_project_sees_earlier_events(tmp_project: Project) -> None:
    tmp_project.store.put("raw", "x.json", b"{}")
    reopened = Project.open(tmp_project.root)
    assert described(reopened.events.since(0)) == [("raw", "x.json")]


def test_since_filters_by_id_bucket_and_prefix(recording: RecordingStore) -> None:
    for bucket, key in [
        ("raw", "sales/a.csv"),
        ("raw", "stock/a.csv"),
        ("curated", "sales/t.parquet"),
        ("raw", "sales/b.csv"),
        ("raw", "salesman.csv"),
    ]:
        recording.put(bucket, key, b"1")
    log = recording.events
    everything = log.since(0)

    assert described(log.since(everything[1].id)) == described(everything[2:])
    assert described(log.since(everything[-1].id)) == []
    assert described(log.since(0, bucket="curated")) == [("curated", "sales/t.parquet")]
    assert described(log.since(0, bucket="raw", prefix="sales/")) == [
        ("raw", "sales/a.csv"),
        ("raw", "sales/b.csv"),
    ]
    assert described(log.since(0, prefix="sales/")) == [
        ("raw", "sales/a.csv"),
        ("curated", "sales/t.parquet"),
        ("raw", "sales/b.csv"),
    ]
    assert described(log.since(everything[0].id, bucket="raw", prefix="sales")) == [
        ("raw", "sales/b.csv"),
        ("raw", "salesman.csv"),
    ]
    assert described(log.since(0, limit=2)) == described(everything[:2])
    assert described(list(log.iter_all(bucket="raw"))) == [
        e for e in described(everything) if e[0] == "raw"
    ]


def test_prefix_wildcards_are_literal(recording: RecordingStore) -> None:
    for key in ["a_b/1", "axb/2", "a%b/3", "a%zzb/4"]:
        recording.put("raw", key, b"1")
    log = recording.events

    assert [e.key for e in log.since(0, prefix="a_b/")] == ["a_b/1"]
    assert [e.key for e in log.since(0, prefix="a%b/")] == ["a%b/3"]
    assert [e.key for e in log.since(0, prefix="a%")] == ["a%b/3", "a%zzb/4"]
    assert [e.key for e in log.since(0, prefix="a_")] == ["a_b/1"]
