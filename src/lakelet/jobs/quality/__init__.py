"""Data quality of a job's output: DQDL rules, row-level quarantine, recorded results."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lakelet.errors import JobError

if TYPE_CHECKING:
    import pyarrow as pa

    from lakelet.jobs.spec import JobSpec
    from lakelet.project import Project


@dataclass(frozen=True)
class RuleResult:
    """One rule's outcome in one run."""

    rule: str
    action: str  # warn | quarantine | fail
    passed: bool
    failing_rows: int = 0
    detail: str = ""


@dataclass
class QualityOutcome:
    """What the rules let through, what they held back and why."""

    passed: pa.Table
    quarantined: int = 0
    results: list[RuleResult] = field(default_factory=list)

    @property
    def blocking(self) -> list[RuleResult]:
        """Failed rules whose action is ``fail``: the run must write nothing."""
        return [r for r in self.results if not r.passed and r.action == "fail"]


def check_quality(
    project: Project, spec: JobSpec, result: pa.Table, run_id: str, **_: Any
) -> QualityOutcome:
    """Evaluate the job's rules on its result (no rules: everything passes)."""
    if spec.quality:
        raise JobError(f"job {spec.name!r}: data-quality rules are not supported yet")
    return QualityOutcome(result)
