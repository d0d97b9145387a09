"""Jobs: SQL over catalog tables by name, written as atomic Iceberg commits, with runs."""

from lakelet.jobs.runner import JobRunFailed, run_job
from lakelet.jobs.runs import InputRead, Reject, RunRecord, RunStore
from lakelet.jobs.session import Session, query

__all__ = [
    "InputRead",
    "JobRunFailed",
    "Reject",
    "RunRecord",
    "RunStore",
    "Session",
    "query",
    "run_job",
]
