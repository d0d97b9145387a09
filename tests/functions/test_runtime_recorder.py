"""The invocation recorder's writes: what SQLAlchemy would store, on SQLite and
PostgreSQL, with the log files and the batched REPORT log lines."""

from __future__ import annotations

import logging
import marshal
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from lakelet.functions.invocation import FunctionFailure, Invocation
from lakelet.functions.model import App
from lakelet.functions.requestids import BATCH, BatchedIds, lambda_ids
from lakelet.functions.runtime import report
from lakelet.functions.runtime.invocationrows import SqliteTime, report_of
from lakelet.functions.runtime.results import finished
from lakelet.functions.runtime.stats import (
    InvocationRecorder,
    Record,
    function_stats,
    invocations_table,
)
from lakelet.metadata import open_engine

app = App("recorded")


@app.route("/buy", methods=["POST"], memory_mb=512)
def buy(event: object, context: object) -> object:
    return {}


SPEC = app.get("buy")


def _stored(engine: sa.Engine) -> list[dict[str, Any]]:
    t = invocations_table
    with engine.connect() as conn:
        rows = conn.execute(sa.select(t).order_by(t.c.id)).mappings().all()
    return [dict(r) for r in rows]


def test_rows_hold_what_the_invocations_say(engine: sa.Engine, tmp_path: Path) -> None:
    ok = finished(SPEC, "a" * 36, "ok", {"x": 1}, duration_ms=12.5, init_ms=3.25, max_used_mb=40)
    failed = finished(
        SPEC,
        "b" * 36,
        "error",
        failure=FunctionFailure("E" * 200, "boom"),
        duration_ms=2.0,
        max_used_mb=41,
    )
    throttled = Invocation("c" * 36, "buy", "throttled", memory_mb=512)
    started = datetime(2026, 11, 27, 10, 27, 11, 123456, tzinfo=UTC)
    recorder = InvocationRecorder(engine, log_dir=tmp_path / "logs")
    recorder.record(Record(ok, "api", "RequestResponse", 1, started))
    recorder.add(failed, "schedule", "Event", 3, started.timestamp())
    recorder.add(throttled, "api")
    recorder.close()

    first, second, third = _stored(engine)
    assert first["request_id"] == "a" * 36 and first["function"] == "buy"
    assert (first["source"], first["invocation_type"], first["attempt"]) == (
        "api",
        "RequestResponse",
        1,
    )
    assert first["started_at"].replace(tzinfo=None) == started.replace(tzinfo=None)
    assert (first["duration_ms"], first["init_ms"], first["max_memory_used_mb"]) == (12.5, 3.25, 40)
    assert first["billed_ms"] == 16 and first["memory_mb"] == 512  # 12.5 + 3.25 ms, up
    spent = report.cost(512, 16)
    assert first["gb_seconds"] == pytest.approx(spent.gb_seconds)
    assert first["cost_usd"] == pytest.approx(spent.usd)
    assert first["error_type"] is None and first["outcome"] == "ok"
    # a start given in seconds since the epoch is the same instant, to the microsecond
    assert abs(second["started_at"].replace(tzinfo=None) - started.replace(tzinfo=None)) < (
        timedelta(microseconds=2)
    )
    assert (second["outcome"], second["attempt"], second["invocation_type"]) == (
        "error",
        3,
        "Event",
    )
    assert second["error_type"] == "E" * 128  # cut to the column
    assert second["init_ms"] is None
    assert (third["outcome"], third["gb_seconds"], third["cost_usd"]) == ("throttled", 0.0, 0.0)
    stats = {s.source: s for s in function_stats(engine)}
    assert stats["*"].invocations == 2 and stats["*"].throttles == 1
    assert stats["*"].cost_usd == pytest.approx(spent.usd + report.cost(512, 2).usd)

    log = (tmp_path / "logs" / "buy.log").read_text(encoding="utf-8")
    assert log.count("START RequestId: ") == 2 and log.count("\nREPORT RequestId: ") == 2
    assert f"REPORT RequestId: {'a' * 36}\tDuration: 12.50 ms\tBilled Duration: 16 ms" in log


def test_many_rows_in_one_batch_all_arrive(engine: sa.Engine) -> None:
    recorder = InvocationRecorder(engine)
    ids = BatchedIds(lambda_ids)
    made = [ids() for _ in range(237)]  # several multi-row statements and a rest
    for request_id in made:
        recorder.add(finished(SPEC, request_id, "ok", duration_ms=1.0), "api")
    recorder.close()
    assert [r["request_id"] for r in _stored(engine)] == made


def test_sqlite_times_are_sqlalchemys_text() -> None:
    dialect = sa.create_engine("sqlite://").dialect
    processor = invocations_table.c.started_at.type.dialect_impl(dialect).bind_processor(dialect)
    assert processor is not None
    convert = SqliteTime()
    for moment in (
        datetime(2026, 11, 27, 10, 27, 11, 5, tzinfo=UTC),
        datetime(2026, 1, 1, 0, 0, 0, 0, tzinfo=UTC),
        datetime(1999, 12, 31, 23, 59, 59, 999999),
    ):
        assert convert(moment) == processor(moment)
    stamp = datetime(2026, 11, 27, 10, 27, 11, 250000, tzinfo=UTC).timestamp()
    assert convert(stamp) == "2026-11-27 10:27:11.250000"
    assert convert(stamp + 1.5) == "2026-11-27 10:27:12.750000"  # the next second


def test_the_old_request_id_index_is_dropped(tmp_path: Path) -> None:
    engine = open_engine("sqlite:///metadata.db", tmp_path)
    InvocationRecorder(engine).close()
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE INDEX ix_function_invocations_request_id ON function_invocations (request_id)"
        )
    InvocationRecorder(engine).close()
    indexes = {i["name"] for i in sa.inspect(engine).get_indexes("function_invocations")}
    assert "ix_function_invocations_request_id" not in indexes
    assert "ix_function_invocations_started_at" in indexes


def test_report_lines_are_logged_once_per_batch(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = open_engine("sqlite:///metadata.db", tmp_path)
    recorder = InvocationRecorder(engine)
    with caplog.at_level(logging.INFO, "lakelet.functions"):
        for n in range(3):
            recorder.add(finished(SPEC, f"{n:036d}", "ok", duration_ms=1.0), "api")
        recorder.close()
    reports = [r.getMessage() for r in caplog.records if "REPORT" in r.getMessage()]
    assert len(reports) == 1  # one record for the batch
    lines = reports[0].splitlines()
    assert [line.split("\t")[0] for line in lines] == [
        f"REPORT RequestId: {n:036d}" for n in range(3)
    ]


def test_report_of_is_the_last_line() -> None:
    text = report.log_text("r", "printed\n", "REPORT RequestId: r\tDuration: 1.00 ms")
    assert report_of(text) == "REPORT RequestId: r\tDuration: 1.00 ms"
    assert report_of("REPORT RequestId: r") == "REPORT RequestId: r"


def test_request_ids_are_distinct_version_4_uuids() -> None:
    ids = BatchedIds(lambda_ids)
    made = [ids() for _ in range(3 * BATCH + 1)]
    assert len(set(made)) == len(made)
    for made_id in made:
        parsed = uuid.UUID(made_id)
        assert parsed.version == 4 and str(parsed) == made_id


def test_the_queue_keeps_plain_values_not_the_response() -> None:
    """A queued invocation is packed at once: a writer's round holds a few scalars per
    invocation (what marshal carries to the recorder process), not its response."""
    from lakelet.functions.runtime.recordqueue import RecordQueue

    queue = RecordQueue()
    body = b"x" * 100_000
    invocation = Invocation(
        "req-1",
        "buy",
        "ok",
        payload={"big": "y" * 100_000},
        duration_ms=2.5,
        billed_ms=3,
        memory_mb=512,
        max_memory_used_mb=40,
        http_response=(200, body, [(b"content-type", b"application/json")]),
    )
    queue.add(invocation, "api", started_at=1_790_000_000.25)
    queue.stop()
    (taken,) = list(queue.rounds())
    (batch,) = taken.batches
    (packed,) = batch
    assert packed[:6] == ("req-1", "buy", "api", "RequestResponse", 1, "ok")
    assert packed[7:12] == (1_790_000_000.25, 2.5, 3, 512, 40)
    frame = marshal.dumps(batch)  # plain values only: a response would not marshal
    assert len(frame) < 1_000 and marshal.loads(frame) == batch
