"""Data quality of a job's output: DQDL rules, row-level quarantine, recorded results.

A run checks the job's own rules and those declared for the table it writes
(``[tables."db.table"]``, see :mod:`lakelet.jobs.quality.tables`), on the query's result
before anything is written. ``warn`` records only;
``quarantine`` (the default for row rules) holds failing rows back and appends them to
``quarantine.<job>``; ``fail`` stops the run before any commit. Light to import: the
CLI's listing of runs reads :class:`RuleResult` without loading DuckDB.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
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
    source: str = ""  # where it is declared: jobs.NAME.quality[i] / tables."db.t".quality[i]


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


def check_rules(spec: JobSpec) -> None:
    """Parse the job's rules now, so a bad rule fails before any work (exit code 2)."""
    if spec.quality:
        from lakelet.jobs.quality.rules import job_checks

        job_checks(spec.name, spec.quality)


def check_quality(
    project: Project,
    spec: JobSpec,
    result: pa.Table,
    run_id: str,
    *,
    now: datetime | None = None,
    **_: Any,
) -> QualityOutcome:
    """Evaluate the job's rules and its output table's on the result; quarantine held
    rows unless a rule blocks.

    The quarantine is appended before the output is written: if that write then fails,
    the held rows are still kept (under the failed run's id) rather than lost.
    """
    if not spec.quality and str(spec.output) not in project.settings.tables:
        return QualityOutcome(result)
    from lakelet.jobs.quality.quarantine import write_quarantine
    from lakelet.jobs.quality.rules import evaluate, job_checks
    from lakelet.jobs.quality.tables import declared_checks
    from lakelet.jobs.session import Session

    checks = job_checks(spec.name, spec.quality) + declared_checks(project.settings, spec.output)
    if not checks:
        return QualityOutcome(result)
    moment = now or datetime.now(UTC)
    with Session(project) as session:
        evaluation = evaluate(session, checks, result, now=moment)
    outcome = QualityOutcome(evaluation.passed, evaluation.held.num_rows, evaluation.results)
    if outcome.passed.num_rows + outcome.quarantined != result.num_rows:
        raise JobError(
            f"job {spec.name!r}: rows passed ({outcome.passed.num_rows}) + quarantined "
            f"({outcome.quarantined}) != rows produced ({result.num_rows}); nothing written"
        )
    if outcome.quarantined and not outcome.blocking:
        write_quarantine(project, spec.name, evaluation.held, run_id=run_id, at=moment)
    return outcome
