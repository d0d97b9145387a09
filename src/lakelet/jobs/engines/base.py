"""What an engine promises the runner: the job's rows as Arrow, and what it read.

The runner owns everything after the query (data-quality rules, the one Iceberg commit,
the run record), so every engine writes through the same catalog code and a job's
accounting does not depend on where its SQL ran.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from lakelet.jobs.runs import InputRead, Reject

if TYPE_CHECKING:
    import pyarrow as pa

    from lakelet.jobs.bookmarks import BookmarkedRead
    from lakelet.jobs.children import ChildTable
    from lakelet.jobs.deadline import Deadline
    from lakelet.jobs.session import Session
    from lakelet.jobs.spec import JobSpec
    from lakelet.project import Project


@dataclass
class EngineResult:
    """The query's rows, each input with the rows that reached the SQL, and raw rejects."""

    table: pa.Table
    inputs: list[InputRead] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    children: list[ChildTable] = field(default_factory=list)
    """Child tables a ``flatten`` step made of arrays; the runner writes them."""


class Engine(Protocol):
    name: str

    def run(
        self,
        project: Project,
        spec: JobSpec,
        params: Mapping[str, str],
        *,
        bookmark: BookmarkedRead | None = None,
        deadline: Deadline | None = None,
    ) -> EngineResult:
        """Run the job's SQL (``params`` substituted) and steps; write nothing.

        With a ``bookmark``, read only what it has not seen (and record what was read
        in it); stop the work in progress when the ``deadline`` passes.
        """
        ...


def inputs_read(session: Session) -> list[InputRead]:
    """Every table the session bound, with the rows that reached the job (rejects are
    added by the runner)."""
    return [
        InputRead(
            table=str(bound.ref),
            kind=bound.kind,
            rows_read=session.count(bound.ref),
            rows_rejected=0,
            snapshot_id=bound.snapshot_id,
        )
        for bound in session.bound
    ]
