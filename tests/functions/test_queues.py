"""Local queues behave as SQS does: visibility timeouts, receipt handles, delays,
redrive to a dead-letter queue, at-least-once delivery across processes and crashes.

The behaviour tests run on SQLite and (integration) on a real PostgreSQL server; a
fake clock makes the timeouts exact and the tests fast.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from lakelet.config import QueueSection
from lakelet.errors import ConfigError, NotFoundError, UserError
from lakelet.functions.queues import QueueDepth, QueueStore
from lakelet.metadata import open_engine
from lakelet.project import Project


class Clock:
    """Epoch seconds that move only when told to."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(engine: sa.Engine, clock: Clock) -> QueueStore:
    queues = QueueStore(engine, clock=clock)
    queues.ensure("orders", visibility_timeout_s=30)
    return queues


def test_a_message_goes_round_trip_with_its_attributes(store: QueueStore, clock: Clock) -> None:
    sent_at = clock.now
    message_id = store.send("orders", '{"sku": "cola"}', {"source": "machine-7"})
    clock.advance(2)
    (message,) = store.receive("orders")
    assert message.message_id == message_id
    assert message.body == '{"sku": "cola"}'
    assert message.attributes == {"source": "machine-7"}
    assert message.receive_count == 1
    assert message.sent_at.timestamp() == pytest.approx(sent_at)
    assert message.first_received_at.timestamp() == pytest.approx(sent_at + 2)
    assert message.queue == "orders"
    assert store.delete("orders", message.receipt_handle) is True
    assert store.depth("orders") == QueueDepth(0, 0, 0)
    assert store.receive("orders") == []


def test_a_received_message_is_hidden_until_its_visibility_timeout(
    store: QueueStore, clock: Clock
) -> None:
    store.send("orders", "a")
    first = store.receive("orders")
    assert len(first) == 1
    assert store.receive("orders") == []
    assert store.depth("orders") == QueueDepth(visible=0, in_flight=1, delayed=0)
    clock.advance(29.9)
    assert store.receive("orders") == []
    clock.advance(0.2)
    assert store.depth("orders") == QueueDepth(visible=1, in_flight=0, delayed=0)
    (again,) = store.receive("orders")
    assert again.message_id == first[0].message_id
    assert again.receive_count == 2
    assert again.receipt_handle != first[0].receipt_handle
    assert again.first_received_at == first[0].first_received_at


def test_a_stale_receipt_handle_deletes_nothing(store: QueueStore, clock: Clock) -> None:
    store.send("orders", "a")
    (old,) = store.receive("orders")
    clock.advance(31)
    (new,) = store.receive("orders")
    assert store.delete("orders", old.receipt_handle) is False
    assert store.depth("orders").in_flight == 1
    assert store.delete("orders", new.receipt_handle) is True
    assert store.depth("orders").total == 0


def test_receive_takes_the_oldest_first_and_at_most_max_messages(store: QueueStore) -> None:
    ids = [store.send("orders", str(i)) for i in range(12)]
    batch = store.receive("orders", max_messages=5)
    assert [m.message_id for m in batch] == ids[:5]
    rest = store.receive("orders")
    assert [m.message_id for m in rest] == ids[5:]
    assert store.receive("orders") == []
    with pytest.raises(UserError, match="max_messages is 1 to 10"):
        store.receive("orders", max_messages=11)


def test_visibility_can_be_set_per_receive_and_changed(store: QueueStore, clock: Clock) -> None:
    store.send("orders", "a")
    (message,) = store.receive("orders", visibility_timeout_s=5)
    clock.advance(4)
    assert store.change_visibility("orders", message.receipt_handle, 10) is True
    clock.advance(9)
    assert store.receive("orders") == []
    assert store.change_visibility("orders", message.receipt_handle, 0) is True
    (again,) = store.receive("orders")
    assert again.receive_count == 2
    assert store.change_visibility("orders", message.receipt_handle, 10) is False
    with pytest.raises(UserError, match="visibility timeout is 0 to 43200"):
        store.change_visibility("orders", again.receipt_handle, 50_000)


def test_a_delayed_message_waits(store: QueueStore, clock: Clock) -> None:
    store.send("orders", "later", delay_s=60)
    store.send("orders", "now")
    assert store.depth("orders") == QueueDepth(visible=1, in_flight=0, delayed=1)
    (now,) = store.receive("orders")
    assert now.body == "now"
    store.delete("orders", now.receipt_handle)
    clock.advance(60)
    assert [m.body for m in store.receive("orders")] == ["later"]
    with pytest.raises(UserError, match="delay_s is 0 to 900"):
        store.send("orders", "x", delay_s=901)


def test_redrive_moves_a_message_received_too_often_to_the_dead_letter_queue(
    store: QueueStore, clock: Clock
) -> None:
    store.ensure("jobs", visibility_timeout_s=10, max_receive_count=2, dead_letter="jobs-dlq")
    assert "jobs-dlq" in store.names()
    message_id = store.send("jobs", "poison")
    for attempt in (1, 2):
        (message,) = store.receive("jobs")
        assert message.receive_count == attempt
        clock.advance(11)  # the consumer failed: no delete
    assert store.receive("jobs") == []  # third delivery: redriven instead
    assert store.depth("jobs").total == 0
    (dead,) = store.receive("jobs-dlq")
    assert dead.message_id == message_id
    assert dead.body == "poison"
    assert dead.receive_count == 1
    assert dead.dead_letter_source == "jobs"


def test_purge_and_depth(store: QueueStore) -> None:
    for i in range(3):
        store.send("orders", str(i))
    store.receive("orders", max_messages=1)
    store.send("orders", "d", delay_s=10)
    assert store.depth("orders") == QueueDepth(visible=2, in_flight=1, delayed=1)
    assert store.purge("orders") == 4
    assert store.depth("orders").total == 0


def test_an_unknown_queue_is_named(store: QueueStore) -> None:
    calls: list[Callable[[], object]] = [
        lambda: store.send("nope", "x"),
        lambda: store.receive("nope"),
        lambda: store.delete("nope", "h"),
        lambda: store.change_visibility("nope", "h", 1),
        lambda: store.depth("nope"),
        lambda: store.purge("nope"),
    ]
    for call in calls:
        with pytest.raises(NotFoundError, match="no queue named 'nope' \\(known: orders\\)"):
            call()


def test_ensure_updates_settings_and_validates(store: QueueStore) -> None:
    store.ensure("orders", visibility_timeout_s=90)
    assert store.config("orders").visibility_timeout_s == 90
    assert store.names() == ["orders"]
    with pytest.raises(ConfigError, match="its own dead-letter queue"):
        store.ensure("a", max_receive_count=3, dead_letter="a")
    with pytest.raises(ConfigError, match="needs both max_receive_count and dead_letter"):
        store.ensure("a", max_receive_count=3)
    with pytest.raises(ConfigError, match="queue name 'bad name'"):
        store.ensure("bad name")
    with pytest.raises(UserError, match="visibility timeout"):
        store.ensure("a", visibility_timeout_s=-1)
    assert store.names() == ["orders"]


def test_ensure_queues_applies_sections_and_creates_referenced_ones(store: QueueStore) -> None:
    store.ensure_queues(
        {"orders": QueueSection(visibility_timeout_s=5, max_receive_count=3, dead_letter="dlq")},
        referenced=["orders", "emails"],
    )
    assert store.names() == ["dlq", "emails", "orders"]
    assert store.config("orders").max_receive_count == 3
    assert store.config("emails").visibility_timeout_s == 30


def test_messages_are_checked_like_sqs_checks_them(store: QueueStore) -> None:
    with pytest.raises(UserError, match=r"attribute name 'AWS\.trace'"):
        store.send("orders", "x", {"AWS.trace": "1"})
    with pytest.raises(UserError, match="at most 10 message attributes"):
        store.send("orders", "x", {f"a{i}": "v" for i in range(11)})
    with pytest.raises(UserError, match="over SQS's 1048576-byte limit"):
        store.send("orders", "x" * 1_048_577)
    assert store.depth("orders").total == 0


def test_queues_live_in_the_project_metadata(tmp_project: Project) -> None:
    QueueStore(tmp_project.metadata).ensure("orders")
    QueueStore(tmp_project.metadata).send("orders", "kept")
    reopened = Project.open(tmp_project.root, env={})
    (message,) = QueueStore(reopened.metadata).receive("orders")
    assert message.body == "kept"


# --- several processes ----------------------------------------------------------------

WORKER = textwrap.dedent(
    """
    import os, signal, sys, time
    from pathlib import Path
    from lakelet.functions.queues import QueueStore
    from lakelet.metadata import open_engine

    store = QueueStore(open_engine("sqlite:///metadata.db", Path(sys.argv[1])))
    mode = sys.argv[2]
    if mode == "crash":
        (message,) = store.receive("orders", visibility_timeout_s=float(sys.argv[3]))
        print(message.message_id, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    folder = Path(sys.argv[1])
    (folder / f"ready-{os.getpid()}").touch()
    while not (folder / "go").exists():  # start together, so the consumers overlap
        time.sleep(0.01)
    while batch := store.receive("orders", max_messages=2):
        for message in batch:
            time.sleep(0.005)
            print(message.message_id, flush=True)
            store.delete("orders", message.receipt_handle)
    """
)


def run_worker(folder: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, str(folder), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )


def test_a_message_held_by_a_killed_process_comes_back(tmp_path: Path) -> None:
    store = QueueStore(open_engine("sqlite:///metadata.db", tmp_path))
    store.ensure("orders")
    message_id = store.send("orders", "survives")
    worker = run_worker(tmp_path, "crash", "1")
    out, err = worker.communicate(timeout=60)
    assert worker.returncode == -9, err
    assert out.split() == [message_id]
    assert store.depth("orders") == QueueDepth(visible=0, in_flight=1, delayed=0)
    deadline = time.monotonic() + 10  # the 1 s visibility timeout runs in real time here
    while not store.depth("orders").visible and time.monotonic() < deadline:
        time.sleep(0.05)
    (again,) = store.receive("orders")
    assert again.message_id == message_id
    assert again.receive_count == 2


def test_concurrent_consumers_each_get_a_message_once(tmp_path: Path) -> None:
    store = QueueStore(open_engine("sqlite:///metadata.db", tmp_path))
    store.ensure("orders", visibility_timeout_s=600)
    sent = {store.send("orders", str(i)) for i in range(60)}
    workers = [run_worker(tmp_path, "drain") for _ in range(3)]
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("ready-*"))) < len(workers) and time.monotonic() < deadline:
        time.sleep(0.02)
    (tmp_path / "go").touch()
    received: list[list[str]] = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        received.append(out.split())
    everything = [m for ids in received for m in ids]
    assert sorted(everything) == sorted(sent)  # every message, none twice
    assert sum(1 for ids in received if ids) >= 2  # they really competed
    assert store.depth("orders").total == 0
