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

    from lakelet.jobs.spec import JobSpec
    from lakelet.project import Project


@dataclass
class EngineResult:
    """The query's rows, each input with the rows that reached the SQL, and raw rejects."""

    table: pa.Table
    inputs: list[InputRead] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)


class Engine(Protocol):
    name: str

    def run(self, project: Project, spec: JobSpec, params: Mapping[str, str]) -> EngineResult:
        """Run the job's SQL with ``params`` substituted; write nothing."""
        ...
