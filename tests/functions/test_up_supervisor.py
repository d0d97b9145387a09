"""``lakelet up`` in-process, with the real runtime: routes, schedules, object events,
queues, and crawlers and jobs on their triggers."""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import pytest

from lakelet.errors import UserError
from lakelet.functions.queues import QueueStore
from lakelet.functions.sources import Up, UpOptions
from lakelet.project import Project, init_project

APPS = Path(__file__).parent / "apps"
POLL_S = 0.05

pytestmark = pytest.mark.integration


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


def wait_until(condition: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)
    return result


def records(out: Path, function: str) -> list[Any]:
    path = out / f"{function}.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def s3_keys(out: Path) -> list[str]:
    return [unquote_plus(r["Records"][0]["s3"]["object"]["key"]) for r in records(out, "on_drop")]


@dataclass
class Running:
    up: Up
    project: Project
    out: Path
    clock: Clock
    started_at: datetime


def start(up: Up) -> threading.Thread:
    thread = threading.Thread(target=lambda: asyncio.run(up.serve()), daemon=True)
    thread.start()
    assert up.ready.wait(60), "lakelet up did not start"
    return thread


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    base = tmp_path_factory.mktemp("up")
    out = base / "out"
    project = init_project(base / "project")
    shutil.copy(APPS / "up_app.py", project.root / "up_app.py")
    config = project.root / "lakelet.toml"
    environment = f'environment = {{ UP_OUT = "{out}" }}'
    config.write_text(
        config.read_text()
        + f"""
[functions]
app = "up_app:app"

[functions.settings.tick]
{environment}

[functions.settings.on_drop]
{environment}

[functions.settings.orders]
{environment}

[functions.queues.orders]
visibility_timeout_s = 2
max_receive_count = 2
dead_letter = "orders-dlq"
"""
    )
    project = Project.open(project.root)
    started_at = datetime.now(UTC).replace(microsecond=0)
    clock = Clock(started_at)
    up = Up(project, UpOptions(port=0, poll_interval_s=POLL_S, grace_s=5), clock=clock)
    thread = start(up)
    try:
        yield Running(up, project, out, clock, started_at)
    finally:
        up.stop()
        thread.join(30)
        assert not thread.is_alive()


def test_routes_are_served(running: Running) -> None:
    assert running.up.url is not None
    with urllib.request.urlopen(f"{running.up.url}/hello", timeout=10) as response:
        assert json.loads(response.read()) == {"hello": "world"}


def test_functions_are_told_the_gateway_url_and_the_project(running: Running) -> None:
    with urllib.request.urlopen(f"{running.up.url}/env", timeout=10) as response:
        assert json.loads(response.read()) == {
            "LAKELET_GATEWAY_URL": running.up.url,
            "LAKELET_PROJECT_ROOT": str(running.project.root),
        }


def test_an_object_dropped_by_another_program_reaches_its_handler(running: Running) -> None:
    target = running.project.root / "lake" / "raw" / "drop" / "from outside.csv"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(b"a,b\n1,2\n")
    wait_until(lambda: "drop/from outside.csv" in s3_keys(running.out))
    record = next(
        r["Records"][0]
        for r in records(running.out, "on_drop")
        if "outside" in r["Records"][0]["s3"]["object"]["key"]
    )
    assert record["eventSource"] == "aws:s3"
    assert record["s3"]["bucket"]["name"] == "raw"
    assert record["s3"]["object"]["size"] == 8


def test_a_lakelet_put_gives_exactly_one_event(running: Running) -> None:
    running.project.store.put("raw", "drop/put.csv", b"x\n")
    running.project.store.put("raw", "drop/ignored.txt", b"x\n")  # the suffix is .csv
    wait_until(lambda: "drop/put.csv" in s3_keys(running.out))
    time.sleep(20 * POLL_S)  # the watcher looked many times since
    assert s3_keys(running.out).count("drop/put.csv") == 1
    assert "drop/ignored.txt" not in s3_keys(running.out)


def test_queue_messages_arrive_in_batches_and_failures_are_redriven(running: Running) -> None:
    queues = QueueStore(running.project.metadata)
    queues.send("orders", "order-1")
    queues.send("orders", "fail-2")

    def deliveries(body: str) -> list[Any]:
        return [r for r in records(running.out, "orders") if r["body"] == body]

    wait_until(lambda: deliveries("order-1") and deliveries("fail-2"))
    # the failed one comes back after the visibility timeout, then goes to the DLQ
    wait_until(lambda: queues.depth("orders-dlq").visible == 1, timeout=40)
    assert [r["receive_count"] for r in deliveries("fail-2")] == ["1", "2"]
    assert len(deliveries("order-1")) == 1
    assert queues.depth("orders").total == 0
    assert [m.body for m in queues.receive("orders-dlq")] == ["fail-2"]


def test_schedules_fire_on_the_clock(running: Running) -> None:
    assert records(running.out, "tick") == []
    running.clock.now = running.started_at + timedelta(seconds=60)
    ticks = wait_until(lambda: records(running.out, "tick"))
    expected = (running.started_at + timedelta(seconds=60)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert ticks[0]["detail-type"] == "Scheduled Event"
    assert ticks[0]["time"] == expected
    time.sleep(10 * POLL_S)
    assert len(records(running.out, "tick")) == 1


def test_a_second_lakelet_up_on_the_project_is_refused(running: Running) -> None:
    second = Up(running.project, UpOptions(gateway=False, poll_interval_s=POLL_S))
    with pytest.raises(UserError, match="already running"):
        asyncio.run(second.serve())


# --- crawlers and jobs on triggers ---------------------------------------------------


@pytest.mark.slow
def test_crawlers_and_jobs_run_on_arrival_and_schedule(tmp_project: Project) -> None:
    from lakelet.crawler.manifest import Manifest
    from lakelet.jobs.runs import RunStore

    (tmp_project.root / "jobs" / "ping.sql").write_text("SELECT 1 AS one")
    config = tmp_project.root / "lakelet.toml"
    config.write_text(
        config.read_text()
        + """
[crawlers.sales]
path = "raw/sales/"
on_arrival = true

[crawlers.nightly]
path = "raw/nightly/"
schedule = "rate(1 day)"

[jobs.ping]
sql = "jobs/ping.sql"
output = "curated.ping"
trigger = { arrival = "raw/sales/" }
"""
    )
    project = Project.open(tmp_project.root)
    project.store.put("raw", "nightly/n.csv", b"a,b\n1,2\n")
    up = Up(project, UpOptions(poll_interval_s=POLL_S, grace_s=30))
    assert up.app is None and not up.serves_http
    thread = start(up)
    try:
        manifest, runs = Manifest(project.metadata), RunStore(project.metadata)
        # the scheduled crawler never ran: it runs at start
        wait_until(lambda: manifest.state("nightly").last_run_at, timeout=60)
        project.store.put("raw", "sales/2026-11-27.csv", b"machine,amount\nm1,2\n")
        wait_until(lambda: manifest.state("sales").last_event_id, timeout=60)
        wait_until(lambda: [r for r in runs.recent("ping") if r.status == "succeeded"], timeout=60)
        assert "raw.sales" in {str(t.name) for t in project.catalog.tables("raw")}
        # a file dropped by another program triggers both again
        first_event = manifest.state("sales").last_event_id
        target = project.root / "lake" / "raw" / "sales" / "2026-11-28.csv"
        target.write_bytes(b"machine,amount\nm2,3\n")
        wait_until(lambda: manifest.state("sales").last_event_id > first_event, timeout=60)
        wait_until(lambda: len(runs.recent("ping")) == 2, timeout=60)
        wait_until(lambda: not up.launcher.running(), timeout=60)
    finally:
        up.stop()
        thread.join(60)
    assert all(r.status == "succeeded" for r in runs.recent("ping"))
