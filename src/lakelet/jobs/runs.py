"""Job runs and the rows they rejected, kept in the project's metadata database.

A run is inserted as ``running`` before any work and finished exactly once, so a
crashed process leaves a visible ``running`` row rather than no trace. Rejects are
stored with the run (file, line, column, reason and the raw row) so no bad row is lost,
and so are its data-quality rule results.

The accounting of a succeeded run: per input, rows read = rows that reached the SQL +
rows rejected at parse; for the output, rows produced by the query = rows written +
rows quarantined.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa

from lakelet.errors import NotFoundError
from lakelet.jobs.quality import RuleResult
from lakelet.jobs.quality.results import ensure_quality_table, load_results, save_results
from lakelet.metadata import ensure_tables

RunStatus = Literal["starting", "running", "succeeded", "failed", "timeout", "stopped"]
ACTIVE_STATES = ("starting", "running")
COUNTERS_ADDED_LATER = ("rows_produced", "attempt", "pid")

_meta = sa.MetaData()
job_runs = sa.Table(
    "job_runs",
    _meta,
    sa.Column("run_id", sa.String(40), primary_key=True),
    sa.Column("job", sa.String(128), nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("engine", sa.String(16), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("duration_s", sa.Float, nullable=True),
    sa.Column("output", sa.String(256), nullable=False),
    sa.Column("mode", sa.String(16), nullable=False),
    sa.Column("rows_read", sa.BigInteger, nullable=False, default=0),
    sa.Column("rows_written", sa.BigInteger, nullable=False, default=0),
    sa.Column("rows_rejected", sa.BigInteger, nullable=False, default=0),
    sa.Column("rows_quarantined", sa.BigInteger, nullable=False, default=0),
    sa.Column("rows_produced", sa.BigInteger, nullable=False, default=0),
    sa.Column("attempt", sa.BigInteger, nullable=False, default=0),
    sa.Column("pid", sa.BigInteger, nullable=False, default=0),
    sa.Column("inputs", sa.Text, nullable=False, default="{}"),
    sa.Column("snapshot_written", sa.BigInteger, nullable=True),
    sa.Column("params", sa.Text, nullable=False, default="{}"),
    sa.Column("error", sa.Text, nullable=True),
)
job_rejects = sa.Table(
    "job_rejects",
    _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(40), nullable=False, index=True),
    sa.Column("table_name", sa.String(256), nullable=False),
    sa.Column("file", sa.Text, nullable=False),
    sa.Column("line", sa.BigInteger, nullable=True),
    sa.Column("column_name", sa.String(256), nullable=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("raw", sa.Text, nullable=True),
)


@dataclass(frozen=True)
class Reject:
    """A row that could not be read: where it is and why."""

    table: str
    file: str
    line: int | None
    column: str | None
    reason: str
    raw: str | None


@dataclass(frozen=True)
class InputRead:
    """What a run read from one input table."""

    table: str
    kind: str
    rows_read: int
    rows_rejected: int
    snapshot_id: int | None = None


@dataclass
class RunRecord:
    """One run of a job, as stored."""

    run_id: str
    job: str
    status: RunStatus
    engine: str
    started_at: datetime
    output: str
    mode: str
    duration_s: float | None = None
    rows_read: int = 0
    rows_written: int = 0
    rows_rejected: int = 0
    rows_quarantined: int = 0
    rows_produced: int = 0  # rows of the query's result, before the quality rules
    attempt: int = 0  # 0 for the first try, n for the n-th retry
    pid: int = 0  # the process running it, to tell a live run from a crashed one
    inputs: list[InputRead] = field(default_factory=list)
    snapshot_written: int | None = None
    params: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    rejects: list[Reject] = field(default_factory=list)
    quality: list[RuleResult] = field(default_factory=list)

    @property
    def snapshots_read(self) -> dict[str, int]:
        return {i.table: i.snapshot_id for i in self.inputs if i.snapshot_id is not None}

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "job": self.job,
            "status": self.status,
            "engine": self.engine,
            "started_at": self.started_at.isoformat(),
            "duration_s": self.duration_s,
            "output": self.output,
            "mode": self.mode,
            "rows_read": self.rows_read,
            "rows_written": self.rows_written,
            "rows_rejected": self.rows_rejected,
            "rows_quarantined": self.rows_quarantined,
            "rows_produced": self.rows_produced,
            "attempt": self.attempt,
            "inputs": [i.__dict__ for i in self.inputs],
            "snapshots_read": self.snapshots_read,
            "snapshot_written": self.snapshot_written,
            "params": self.params,
            "error": self.error,
            "rejects": [r.__dict__ for r in self.rejects],
            "quality": [r.__dict__ for r in self.quality],
        }


def new_run_id() -> str:
    """Glue-style run id: ``jr_`` + time-ordered hex, so ids sort by start."""
    return f"jr_{datetime.now(UTC).strftime('%Y%m%d%H%M%S%f')}_{secrets.token_hex(4)}"


class RunStore:
    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        ensure_tables(engine, _meta)
        _add_missing_columns(engine)
        ensure_quality_table(engine)

    def start(self, record: RunRecord) -> None:
        with self._engine.begin() as conn:
            conn.execute(job_runs.insert().values(**_to_row(record)))

    def finish(self, record: RunRecord) -> None:
        """Store the final state of a run, its rejects and rule results in one transaction."""
        row = _to_row(record)
        with self._engine.begin() as conn:
            conn.execute(job_runs.update().where(job_runs.c.run_id == record.run_id).values(**row))
            save_results(conn, record.run_id, record.quality)
            if record.rejects:
                conn.execute(
                    job_rejects.insert(),
                    [
                        {
                            "run_id": record.run_id,
                            "table_name": r.table,
                            "file": r.file,
                            "line": r.line,
                            "column_name": r.column,
                            "reason": r.reason,
                            "raw": r.raw,
                        }
                        for r in record.rejects
                    ],
                )

    def recent(self, job: str | None = None, limit: int = 50) -> list[RunRecord]:
        query = sa.select(job_runs).order_by(job_runs.c.started_at.desc()).limit(limit)
        if job is not None:
            query = query.where(job_runs.c.job == job)
        with self._engine.connect() as conn:
            records = [_from_row(r) for r in conn.execute(query).mappings()]
            quality = load_results(conn, [r.run_id for r in records])
        for record in records:
            record.quality = quality.get(record.run_id, [])
        return records

    def set_status(self, run_id: str, status: RunStatus) -> None:
        with self._engine.begin() as conn:
            conn.execute(job_runs.update().where(job_runs.c.run_id == run_id).values(status=status))

    def active(self, job: str) -> list[RunRecord]:
        """Runs of ``job`` still starting or running in a live process.

        A run whose process is gone (killed, crashed) is marked ``failed`` on the way, so
        it never blocks ``max_concurrent_runs`` forever.
        """
        query = sa.select(job_runs).where(
            job_runs.c.job == job, job_runs.c.status.in_(ACTIVE_STATES)
        )
        with self._engine.connect() as conn:
            records = [_from_row(r) for r in conn.execute(query).mappings()]
        alive = []
        for record in records:
            if _process_alive(record.pid):
                alive.append(record)
            else:
                with self._engine.begin() as conn:
                    conn.execute(
                        job_runs.update()
                        .where(job_runs.c.run_id == record.run_id)
                        .values(status="failed", error="its process ended without finishing")
                    )
        return alive

    def get(self, run_id: str) -> RunRecord:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(job_runs).where(job_runs.c.run_id == run_id)).mappings()
            found = row.first()
            if found is None:
                raise NotFoundError(f"no run {run_id!r}; list runs with: lakelet runs")
            record = _from_row(found)
            record.rejects = self.rejects(run_id, conn=conn)
            record.quality = load_results(conn, [run_id]).get(run_id, [])
        return record

    def rejects(self, run_id: str, *, conn: sa.Connection | None = None) -> list[Reject]:
        query = (
            sa.select(job_rejects).where(job_rejects.c.run_id == run_id).order_by(job_rejects.c.id)
        )
        if conn is None:
            with self._engine.connect() as own:
                rows = list(own.execute(query).mappings())
        else:
            rows = list(conn.execute(query).mappings())
        return [
            Reject(
                table=r["table_name"],
                file=r["file"],
                line=r["line"],
                column=r["column_name"],
                reason=r["reason"],
                raw=r["raw"],
            )
            for r in rows
        ]


def _to_row(record: RunRecord) -> dict[str, Any]:
    return {
        "run_id": record.run_id,
        "job": record.job,
        "status": record.status,
        "engine": record.engine,
        "started_at": record.started_at,
        "duration_s": record.duration_s,
        "output": record.output,
        "mode": record.mode,
        "rows_read": record.rows_read,
        "rows_written": record.rows_written,
        "rows_rejected": record.rows_rejected,
        "rows_quarantined": record.rows_quarantined,
        "rows_produced": record.rows_produced,
        "attempt": record.attempt,
        "pid": record.pid,
        "inputs": json.dumps([i.__dict__ for i in record.inputs]),
        "snapshot_written": record.snapshot_written,
        "params": json.dumps(record.params, sort_keys=True),
        "error": record.error,
    }


def _from_row(row: Any) -> RunRecord:
    started = row["started_at"]
    return RunRecord(
        run_id=row["run_id"],
        job=row["job"],
        status=row["status"],
        engine=row["engine"],
        started_at=started if started.tzinfo else started.replace(tzinfo=UTC),
        output=row["output"],
        mode=row["mode"],
        duration_s=row["duration_s"],
        rows_read=row["rows_read"],
        rows_written=row["rows_written"],
        rows_rejected=row["rows_rejected"],
        rows_quarantined=row["rows_quarantined"],
        rows_produced=row["rows_produced"],
        attempt=row["attempt"],
        pid=row["pid"],
        inputs=[InputRead(**i) for i in json.loads(row["inputs"])],
        snapshot_written=row["snapshot_written"],
        params=json.loads(row["params"]),
        error=row["error"],
    )


def _add_missing_columns(engine: sa.Engine) -> None:
    """Add the counters introduced after a project's ``job_runs`` table was created."""
    present = {c["name"] for c in sa.inspect(engine).get_columns("job_runs")}
    missing = [name for name in COUNTERS_ADDED_LATER if name not in present]
    if missing:
        with engine.begin() as conn:
            for name in missing:
                conn.execute(
                    sa.text(f"ALTER TABLE job_runs ADD COLUMN {name} BIGINT NOT NULL DEFAULT 0")
                )


def _process_alive(pid: int) -> bool:
    """Whether a process of this machine still runs (runs record their pid)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True
