"""Jobs: SQL over catalog tables by name, written as atomic Iceberg commits, with runs.

Names are imported on first use, so ``import lakelet.jobs.runs`` (the CLI's listing of
runs) does not pay for sqlglot and DuckDB.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lakelet.jobs.runner import JobRunFailed, run_job
    from lakelet.jobs.runs import InputRead, Reject, RunRecord, RunStore
    from lakelet.jobs.session import Session, query

_HOMES = {
    "JobRunFailed": "lakelet.jobs.runner",
    "run_job": "lakelet.jobs.runner",
    "InputRead": "lakelet.jobs.runs",
    "Reject": "lakelet.jobs.runs",
    "RunRecord": "lakelet.jobs.runs",
    "RunStore": "lakelet.jobs.runs",
    "Session": "lakelet.jobs.session",
    "query": "lakelet.jobs.session",
}

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


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'lakelet.jobs' has no attribute {name!r}")
    return getattr(import_module(_HOMES[name]), name)
