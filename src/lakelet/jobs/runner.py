"""Run a SQL job: read catalog tables by name, write one Iceberg commit, record the run.

The accounting is part of the run: for every input, rows read = rows that reached the
SQL + rows rejected at parse, each reject stored with file, line and reason; for the
output, rows produced by the query = rows written + rows quarantined by the job's
data-quality rules (see :mod:`lakelet.jobs.quality`). The output is written in a
single atomic commit after the query and the rules have succeeded, so a failed run
writes nothing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from lakelet.errors import JobError, LakeletError, UserError
from lakelet.jobs.bookmarks import Bookmark, BookmarkedRead, bookmark_at
from lakelet.jobs.children import replaced_files, write_children
from lakelet.jobs.commit import plan_commit
from lakelet.jobs.deadline import Deadline, JobTimeout
from lakelet.jobs.engines import engine_for
from lakelet.jobs.engines.spark_staging import can_stage, stage_job
from lakelet.jobs.quality import check_quality, check_rules
from lakelet.jobs.runs import InputRead, Reject, RunRecord, RunStore, new_run_id
from lakelet.jobs.spec import JobSpec, job_spec
from lakelet.jobs.streaming import can_stream, stream_job

if TYPE_CHECKING:
    from lakelet.project import Project

RETRY_BACKOFF_S = 1.0
MAX_BACKOFF_S = 60.0


class QualityFailed(JobError):
    """A rule with ``action = "fail"`` failed: the run wrote nothing."""

    exit_code = 2


class ConcurrentRunsExceeded(JobError):
    """The job already runs ``max_concurrent_runs`` times (Glue's exception name)."""

    exit_code = 2
    http_status = 409


class JobRunFailed(JobError):
    """A run failed; the run is recorded with its error. Exit code follows the cause."""

    def __init__(self, record: RunRecord, cause: Exception) -> None:
        super().__init__(f"run {record.run_id} of job {record.job!r} failed: {cause}")
        self.record = record
        self.exit_code = cause.exit_code if isinstance(cause, LakeletError) else 1


def run_job(
    project: Project,
    name: str,
    params: Mapping[str, str] | None = None,
    *,
    reset_bookmark: bool = False,
    rewind_to: str | None = None,
) -> RunRecord:
    """Run job ``name`` from ``lakelet.toml`` and return its recorded run.

    A bookmarked job reads only what its bookmark has not seen; ``reset_bookmark``
    reads everything again and rebuilds the output, ``rewind_to`` starts from the
    bookmark a run committed (see :mod:`lakelet.jobs.commit` for re-read files).

    A run that fails for a reason other than its input or SQL (exit code 1, or a
    timeout) is retried up to ``max_retries`` times, waiting 1, 2, 4, … seconds; every
    attempt is a run of its own. Raises :class:`JobRunFailed` (after recording the
    failed run) when the last attempt fails.
    """
    spec = job_spec(project, name)
    attempt = 0
    while True:
        try:
            return execute_job(
                project,
                spec,
                params or {},
                attempt=attempt,
                reset_bookmark=reset_bookmark,
                rewind_to=rewind_to,
            )
        except JobRunFailed as failure:
            if attempt >= spec.max_retries or not _retryable(failure):
                raise
            time.sleep(min(RETRY_BACKOFF_S * 2**attempt, MAX_BACKOFF_S))
            attempt += 1


def _bookmarked_read(
    project: Project, spec: JobSpec, runs: RunStore, reset: bool, rewind_to: str | None
) -> BookmarkedRead | None:
    """What this run may skip: the bookmark committed with the output's last snapshot,
    none (``reset``), or the one an earlier run committed (``rewind_to``)."""
    if not spec.bookmark:
        if reset or rewind_to:
            raise UserError(f"job {spec.name!r} has no bookmark (set bookmark = true)")
        return None
    if reset:
        return BookmarkedRead(Bookmark(), rebuild=True)
    latest = bookmark_at(project.catalog, spec.output)
    if rewind_to is None:
        return BookmarkedRead(latest)
    earlier = runs.get(rewind_to)
    if earlier.job != spec.name or earlier.snapshot_written is None:
        raise UserError(
            f"run {rewind_to} is not a run of {spec.name!r} that wrote its output; "
            f"see: lakelet runs {spec.name}"
        )
    rewound = bookmark_at(project.catalog, spec.output, earlier.snapshot_written)
    return BookmarkedRead(rewound, committed=latest)


def _retryable(failure: JobRunFailed) -> bool:
    """User errors fail the same way every time; faults and timeouts may not."""
    return failure.record.status == "timeout" or failure.exit_code != 2


def execute_job(
    project: Project,
    spec: JobSpec,
    params: Mapping[str, str],
    *,
    attempt: int = 0,
    reset_bookmark: bool = False,
    rewind_to: str | None = None,
) -> RunRecord:
    """One attempt: ``starting`` → ``running`` → ``succeeded``, ``failed``, ``timeout``
    (interrupted after ``timeout`` seconds) or ``stopped`` (interrupted by the user)."""
    check_rules(spec)
    runs = RunStore(project.metadata)
    record = RunRecord(
        run_id=new_run_id(),
        job=spec.name,
        status="starting",
        engine=spec.engine,
        started_at=datetime.now(UTC),
        output=str(spec.output),
        mode=spec.mode,
        params=dict(params),
        attempt=attempt,
        pid=os.getpid(),
    )
    runs.start(record)
    started = time.perf_counter()
    deadline = Deadline(spec.timeout)
    try:
        others = [r for r in runs.active(spec.name) if r.run_id != record.run_id]
        if len(others) >= spec.max_concurrent_runs:
            raise ConcurrentRunsExceeded(
                f"job {spec.name!r} already has {len(others)} run(s) in progress "
                f"({', '.join(r.run_id for r in others)}); max_concurrent_runs = "
                f"{spec.max_concurrent_runs}"
            )
        reading = _bookmarked_read(project, spec, runs, reset_bookmark, rewind_to)
        runs.set_status(record.run_id, "running")
        streamed = None
        if can_stream(project, spec):
            with deadline:
                streamed = stream_job(project, spec, params, reading=reading, deadline=deadline)
        elif can_stage(project, spec):  # Spark writes the files, one commit adds them
            with deadline:
                streamed = stage_job(project, spec, params, reading=reading, deadline=deadline)
        if streamed is None:
            _run_and_write(project, spec, params, record, reading, deadline)
        else:  # written while the query ran: no rules to check, nothing held in memory
            _account(record, streamed.inputs, streamed.rejects)
            record.rows_produced = record.rows_written = streamed.written.rows
            record.snapshot_written = streamed.written.snapshot_id
        record.status = "succeeded"
    except KeyboardInterrupt:
        record.status = "stopped"
        record.error = "stopped by the user"
        record.duration_s = time.perf_counter() - started
        runs.finish(record)
        raise
    except Exception as exc:
        timed_out = deadline.fired.is_set()
        record.status = "timeout" if timed_out else "failed"
        record.error = deadline.message if timed_out else str(exc)
        record.duration_s = time.perf_counter() - started
        runs.finish(record)
        cause = JobTimeout(record.error) if timed_out else exc
        raise JobRunFailed(record, cause) from exc
    record.duration_s = time.perf_counter() - started
    runs.finish(record)
    return record


def _run_and_write(
    project: Project,
    spec: JobSpec,
    params: Mapping[str, str],
    record: RunRecord,
    reading: BookmarkedRead | None,
    deadline: Deadline,
) -> None:
    """The query's rows as Arrow, checked by the job's rules, then written in one commit."""
    with deadline:
        ran = engine_for(spec.engine).run(
            project, spec, params, bookmark=reading, deadline=deadline
        )
    deadline.check()  # a run that ran past its timeout writes nothing
    result = ran.table
    _account(record, ran.inputs, ran.rejects)
    record.rows_produced = result.num_rows
    commit = plan_commit(project.catalog, spec, result.schema, reading)
    outcome = check_quality(project, spec, result, record.run_id)
    record.quality = outcome.results
    if outcome.blocking:
        failed = "; ".join(f"{r.rule} ({r.detail})" for r in outcome.blocking)
        raise QualityFailed(f"data-quality rules failed, nothing was written: {failed}")
    # Children first: if one fails, the output and its bookmark stay put and a rerun
    # redoes everything (the other order could lose the children for good).
    replace = replaced_files(result, reading, commit.mode)
    reread = reading.reread if reading is not None else []
    made = write_children(
        project, spec, ran.children, record.run_id, mode=commit.mode, replace=replace, reread=reread
    )
    record.quality = outcome.results + made.quality
    written = commit.write(project.catalog, spec, outcome.passed)
    record.rows_quarantined = outcome.quarantined
    record.rows_written = written.rows
    record.snapshot_written = written.snapshot_id


def _account(record: RunRecord, inputs: list[InputRead], rejects: list[Reject]) -> None:
    """Rows read per input = rows that reached the SQL + rows rejected at parse."""
    per_table: dict[str, int] = {}
    for reject in rejects:
        per_table[reject.table] = per_table.get(reject.table, 0) + 1
    record.inputs = [
        InputRead(
            table=i.table,
            kind=i.kind,
            rows_read=i.rows_read + per_table.get(i.table, 0),
            rows_rejected=per_table.get(i.table, 0),
            snapshot_id=i.snapshot_id,
        )
        for i in inputs
    ]
    record.rejects = rejects
    record.rows_read = sum(i.rows_read for i in record.inputs)
    record.rows_rejected = len(rejects)
