"""The recorder process: invocations stored by another process than the one serving,
on SQLite and PostgreSQL, flushed on demand, nothing lost when it dies or never starts,
its REPORT lines where the serving process's logging shows them, no process left."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest
import sqlalchemy as sa

from lakelet.functions.model import App
from lakelet.functions.requestids import BatchedIds, lambda_ids
from lakelet.functions.runtime.recorderpipe import reopenable_url
from lakelet.functions.runtime.results import finished
from lakelet.functions.runtime.stats import InvocationRecorder, invocations_table
from lakelet.metadata import open_engine

app = App("recorded")


@app.route("/buy", methods=["POST"], memory_mb=256)
def buy(event: object, context: object) -> object:
    return {}


SPEC = app.get("buy")


def _ids(engine: sa.Engine) -> list[str]:
    t = invocations_table
    with engine.connect() as conn:
        return list(conn.execute(sa.select(t.c.request_id).order_by(t.c.id)).scalars())


def _record(recorder: InvocationRecorder, count: int) -> list[str]:
    ids = BatchedIds(lambda_ids)
    made = [ids() for _ in range(count)]
    for request_id in made:
        recorder.add(finished(SPEC, request_id, "ok", duration_ms=2.0), "api")
    return made


def _gone(pid: int, timeout: float = 10.0, *, orphan: bool = False) -> bool:
    """The process has exited and been reaped (no zombie left in /proc); an orphan's
    reaping is its new parent's business, so its exit is enough."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return True
        if orphan and stat[stat.rfind(")") + 2] == "Z":
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def isolated_log() -> Iterator[logging.Logger]:
    """``lakelet.functions``, not propagating; see :func:`_only`."""
    logger = logging.getLogger("lakelet.functions")
    saved = (logger.handlers[:], logger.propagate, logger.level)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    yield logger
    for handler in logger.handlers:
        if handler not in saved[0]:
            handler.close()
    logger.handlers[:], logger.propagate, logger.level = saved[0], saved[1], saved[2]


def _only(logger: logging.Logger, handler: logging.Handler) -> None:
    """Log only to ``handler`` (pytest attaches its capture to non-propagating loggers
    when a test starts)."""
    logger.handlers[:] = [handler]


def test_another_process_stores_the_rows_and_flush_waits_for_them(
    engine: sa.Engine, tmp_path: Path
) -> None:
    recorder = InvocationRecorder(engine, log_dir=tmp_path / "logs")
    pid = recorder.pid
    assert pid is not None and pid != os.getpid()
    try:
        made = _record(recorder, 612)  # more than one batch
        recorder.flush()
        assert _ids(engine) == made  # stored (and committed) before flush returned
        log = (tmp_path / "logs" / "buy.log").read_text(encoding="utf-8")
        assert log.count("\nREPORT RequestId: ") == len(made)
        more = _record(recorder, 3)
        recorder.flush()
        assert _ids(engine) == made + more
    finally:
        recorder.close()
    assert _gone(pid)


def test_flush_with_nothing_recorded_returns_at_once(tmp_path: Path) -> None:
    recorder = InvocationRecorder(open_engine("sqlite:///metadata.db", tmp_path))
    try:
        started = time.monotonic()
        recorder.flush(timeout=5)
        assert time.monotonic() - started < 1
    finally:
        recorder.close()


def test_a_database_in_memory_is_written_from_a_thread() -> None:
    engine = sa.create_engine(
        "sqlite://", poolclass=sa.StaticPool, connect_args={"check_same_thread": False}
    )
    recorder = InvocationRecorder(engine)
    assert recorder.pid is None
    made = _record(recorder, 5)
    recorder.flush()
    assert _ids(engine) == made
    recorder.close()


def test_a_killed_process_loses_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    engine = open_engine("sqlite:///metadata.db", tmp_path)
    recorder = InvocationRecorder(engine, log_dir=tmp_path / "logs")
    pid = recorder.pid
    assert pid is not None
    try:
        first = _record(recorder, 10)
        recorder.flush()
        os.kill(pid, signal.SIGSTOP)  # it reads nothing more: the next batch waits unstored
        second = _record(recorder, 20)
        time.sleep(0.3)  # the writer sends it meanwhile
        with caplog.at_level(logging.ERROR, "lakelet.functions"):
            os.kill(pid, signal.SIGKILL)
            assert _gone(pid)
            third = _record(recorder, 5)
            recorder.flush()
        assert recorder.pid is None  # stored here from now on
        assert sorted(_ids(engine)) == sorted(first + second + third)
        assert any("recorder process" in r.getMessage() for r in caplog.records)
        log = (tmp_path / "logs" / "buy.log").read_text(encoding="utf-8")
        assert log.count("\nREPORT RequestId: ") == 35
    finally:
        recorder.close()


def test_a_process_that_cannot_start_leaves_the_work_to_a_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = open_engine("sqlite:///metadata.db", tmp_path)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-such-python"))
    recorder = InvocationRecorder(engine)
    assert recorder.pid is None
    made = _record(recorder, 4)
    recorder.close()
    assert _ids(engine) == made


def test_a_process_that_exits_at_once_leaves_the_work_to_a_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    engine = open_engine("sqlite:///metadata.db", tmp_path)
    monkeypatch.setattr(sys, "executable", "/bin/false")
    with caplog.at_level(logging.ERROR, "lakelet.functions"):
        recorder = InvocationRecorder(engine)
        made = _record(recorder, 4)
        recorder.flush()
        assert _ids(engine) == made
        recorder.close()
    assert recorder.pid is None
    assert any(
        "recorder process" in r.getMessage()
        and "storing invocations in this process" in r.getMessage()
        for r in caplog.records
    )


def test_report_lines_go_where_the_serving_process_logs(
    tmp_path: Path, isolated_log: logging.Logger
) -> None:
    """A plain stream handler is reproduced by the recorder process: it writes the
    lines itself, in the same format (its pid shows it was not this process)."""
    out = (tmp_path / "up.log").open("w", encoding="utf-8")
    handler = logging.StreamHandler(out)
    formatter = logging.Formatter("%(process)d %(asctime)s %(message)s", "%H:%M:%S")
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    _only(isolated_log, handler)
    recorder = InvocationRecorder(open_engine("sqlite:///metadata.db", tmp_path))
    pid = recorder.pid
    assert pid is not None
    made = _record(recorder, 3)
    recorder.close()
    lines = (tmp_path / "up.log").read_text(encoding="utf-8").splitlines()
    reports = [line for line in lines if "REPORT RequestId: " in line]
    assert [line.split("\t")[0].rpartition(" ")[2] for line in reports] == made
    assert lines[0].split(" ")[0] == str(pid)  # the recorder process wrote them
    assert time.strptime(lines[0].split(" ")[1], "%H:%M:%S")


def test_report_lines_are_not_logged_below_info(
    tmp_path: Path, isolated_log: logging.Logger
) -> None:
    out = (tmp_path / "up.log").open("w", encoding="utf-8")
    _only(isolated_log, logging.StreamHandler(out))
    isolated_log.setLevel(logging.WARNING)
    recorder = InvocationRecorder(open_engine("sqlite:///metadata.db", tmp_path))
    _record(recorder, 3)
    recorder.close()
    assert "REPORT" not in (tmp_path / "up.log").read_text(encoding="utf-8")


def test_what_was_sent_is_stored_when_the_serving_process_dies(tmp_path: Path) -> None:
    """The serving process killed without closing: the recorder process stores the
    batches it was sent, then exits at the end of its input."""
    script = textwrap.dedent(
        f"""
        import os, signal, sys, time
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_runtime_recorder_process import _record
        from lakelet.functions.runtime.stats import InvocationRecorder
        from lakelet.metadata import open_engine

        from pathlib import Path
        engine = open_engine("sqlite:///metadata.db", Path({str(tmp_path)!r}))
        recorder = InvocationRecorder(engine)
        print(recorder.pid, " ".join(_record(recorder, 50)), flush=True)
        time.sleep(0.5)  # sent, not acknowledged for sure
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    pid_text, _, ids = done.stdout.strip().partition(" ")
    assert _gone(int(pid_text), orphan=True)
    engine = open_engine("sqlite:///metadata.db", tmp_path)
    assert _ids(engine) == ids.split()


def test_only_databases_another_process_can_open_are_reopened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def url_of(url: str) -> str | None:
        return reopenable_url(cast(sa.Engine, SimpleNamespace(url=sa.make_url(url))))

    monkeypatch.chdir(tmp_path)
    for memory in ("sqlite://", "sqlite:///:memory:", "sqlite:///file:x?mode=memory&uri=true"):
        assert url_of(memory) is None
    assert url_of("sqlite:///meta.db") == f"sqlite:///{tmp_path / 'meta.db'}"  # same folder
    secret = "postgresql+psycopg://u:s3cret@localhost:5432/db"
    assert url_of(secret) == secret  # the password too
    assert url_of("mysql+pymysql://u:p@h/db") is None
