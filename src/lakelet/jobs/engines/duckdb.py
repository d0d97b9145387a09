"""The default engine: the job's SQL on an in-process DuckDB :class:`Session`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from lakelet.jobs.engines.base import EngineResult
from lakelet.jobs.runs import InputRead
from lakelet.jobs.session import Session

if TYPE_CHECKING:
    from lakelet.jobs.spec import JobSpec
    from lakelet.project import Project


class DuckDBEngine:
    name = "duckdb"

    def run(self, project: Project, spec: JobSpec, params: Mapping[str, str]) -> EngineResult:
        with Session(project) as session:
            source = f"job {spec.name} ({spec.sql_path.name})"
            result = session.execute(spec.sql, params=params, source=source)
            inputs = [
                InputRead(
                    table=str(bound.ref),
                    kind=bound.kind,
                    rows_read=session.count(bound.ref),
                    rows_rejected=0,
                    snapshot_id=bound.snapshot_id,
                )
                for bound in session.bound
            ]
            return EngineResult(result, inputs, session.rejects())
