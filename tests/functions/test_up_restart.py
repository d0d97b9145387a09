"""``lakelet up`` as a real process: killed with events in flight and started again,
nothing is lost and an idempotent handler does its work once per object."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from lakelet.project import Project, init_project

APPS = Path(__file__).parent / "apps"
KEYS = 40
POLL_S = "0.05"
# Runs the CLI with `up` registered, whether or not lakelet.cli.main registers it yet.
CLI = (
    "import sys\n"
    "from lakelet.cli import up\n"
    "from lakelet.cli.main import app, main\n"
    "if 'up' not in {c.name for c in app.registered_commands}:\n"
    "    up.register(app)\n"
    "sys.exit(main(sys.argv[1:]))\n"
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class UpProcess:
    """``lakelet up`` in its own process group, its output read line by line."""

    def __init__(self, project: Path, port: int) -> None:
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-c", CLI, "-C", str(project), "up"),
                *("--port", str(port), "--poll-interval", POLL_S, "--grace", "5"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"},
        )
        self.stdout: queue.Queue[str] = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._read, args=(self.process.stdout, self.stdout.put)).start()
        threading.Thread(target=self._read, args=(self.process.stderr, self.stderr.append)).start()

    @staticmethod
    def _read(stream: object, sink: Callable[[str], None]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            sink(line)

    def wait_ready(self, timeout: float = 90.0) -> list[str]:
        lines = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.stdout.get(timeout=0.5)
            except queue.Empty:
                assert self.process.poll() is None, "".join(self.stderr)
                continue
            lines.append(line)
            if line.startswith("ready"):
                return lines
        raise AssertionError(f"lakelet up did not get ready:\n{''.join(self.stderr)}")

    def kill(self) -> None:
        """Kill it and every process it started, as a power cut would."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(30)

    def terminate(self, timeout: float = 60.0) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)


@pytest.fixture
def started() -> Iterator[list[UpProcess]]:
    """Every ``lakelet up`` a test starts; killed at the end whatever happened."""
    processes: list[UpProcess] = []
    yield processes
    for process in processes:
        process.kill()


@pytest.fixture
def project(tmp_path: Path) -> Project:
    root = init_project(tmp_path / "project").root
    shutil.copy(APPS / "up_kill_app.py", root / "up_kill_app.py")
    out = tmp_path / "out"
    (out / "done").mkdir(parents=True)
    config = root / "lakelet.toml"
    config.write_text(
        config.read_text()
        + f"""
[functions]
app = "up_kill_app:app"

[functions.settings.record]
environment = {{ UP_OUT = "{out}" }}
"""
    )
    return Project.open(root)


def done_keys(out: Path) -> list[str]:
    return sorted(p.read_text() for p in (out / "done").iterdir() if "." not in p.name)


def wait_until(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def test_kill_and_restart_with_events_in_flight(
    project: Project, tmp_path: Path, started: list[UpProcess]
) -> None:
    out = tmp_path / "out"
    keys = [f"in/{n:03d}.csv" for n in range(KEYS)]
    port = free_port()
    first = UpProcess(project.root, port)
    started.append(first)
    table = "".join(first.wait_ready())
    assert "object" in table and "raw/in/*" in table and "record" in table

    def put_all() -> None:
        for key in keys:
            project.store.put("raw", key, key.encode())  # as `lakelet put` does
            time.sleep(0.05)

    putter = threading.Thread(target=put_all)
    putter.start()
    try:
        wait_until(lambda: len(done_keys(out)) >= KEYS // 4, timeout=60)
        first.kill()  # mid-way: puts go on, some events are queued or running
        assert len(done_keys(out)) < KEYS
    finally:
        putter.join()

    second = UpProcess(project.root, port)
    started.append(second)
    second.wait_ready()
    try:
        # events in flight at the kill come back after their visibility timeout
        wait_until(lambda: len(done_keys(out)) == KEYS, timeout=120)
        # the same port is served again (after the backlog: it took every worker slot)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as response:
            assert json.loads(response.read()) == {"ok": True}
    finally:
        code = second.terminate()
    assert code == 0, "".join(second.stderr)
    assert "stopped" in "".join(second.stderr)
    # every invocation is stored and its REPORT line shown on lakelet up's standard
    # error (by the recorder process), the health check's among them
    with project.metadata.connect() as db:
        health = db.execute(
            sa.text("SELECT request_id FROM function_invocations WHERE function = 'health'")
        ).scalars()
        stored = set(health)
    assert stored
    reports = "".join(second.stderr)
    assert all(f"REPORT RequestId: {request_id}" in reports for request_id in stored)

    assert done_keys(out) == keys  # nothing lost
    processed = (out / "processed.log").read_text().splitlines()
    assert len(processed) == len(set(processed))  # nothing done twice
    assert set(processed) <= set(keys)
    deliveries = (out / "deliveries.log").read_text().splitlines()
    assert set(deliveries) == set(keys)  # at least once (a few may have come twice)
