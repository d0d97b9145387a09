"""The default engine: the job's SQL and steps in the run's own DuckDB session."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from lakelet.jobs.deadline import Deadline
from lakelet.jobs.engines.base import EngineResult, inputs_read
from lakelet.jobs.session import Session
from lakelet.jobs.steps import run_steps_with_children

if TYPE_CHECKING:
    import pyarrow as pa

    from lakelet.jobs.bookmarks import BookmarkedRead
    from lakelet.jobs.children import ChildTable
    from lakelet.jobs.spec import JobSpec
    from lakelet.project import Project


class DuckDBEngine:
    name = "duckdb"

    def run(
        self,
        project: Project,
        spec: JobSpec,
        params: Mapping[str, str],
        *,
        bookmark: BookmarkedRead | None = None,
        deadline: Deadline | None = None,
    ) -> EngineResult:
        deadline = deadline or Deadline(None)
        with (
            Session(project, bookmark=bookmark) as session,
            deadline.interrupting(session.connection.interrupt),  # stops at the next chunk
        ):
            result: pa.Table | None = None
            children: list[ChildTable] = []
            if spec.sql:
                result = session.execute(spec.sql, params=params, source=spec.source)
            if spec.steps:
                result, children = run_steps_with_children(session, spec, result, params)
            assert result is not None  # a spec has SQL or steps
            return EngineResult(result, inputs_read(session), session.rejects(), children)
