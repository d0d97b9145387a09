"""Rule results per run, in the metadata database's ``job_quality`` table.

They are written in the same transaction as the run's final state (see
:meth:`lakelet.jobs.runs.RunStore.finish`), so a run is never stored without them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from lakelet.jobs.quality import RuleResult
from lakelet.metadata import ensure_tables

_meta = sa.MetaData()
job_quality = sa.Table(
    "job_quality",
    _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(40), nullable=False, index=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("rule", sa.Text, nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("passed", sa.Boolean, nullable=False),
    sa.Column("failing_rows", sa.BigInteger, nullable=False, default=0),
    sa.Column("detail", sa.Text, nullable=False, default=""),
    sa.Column("source", sa.Text, nullable=False, default=""),
)
COLUMNS_ADDED_LATER = ("source",)


def ensure_quality_table(engine: sa.Engine) -> None:
    """Create ``job_quality``, or add the columns a project's older table lacks."""
    ensure_tables(engine, _meta)
    present = {c["name"] for c in sa.inspect(engine).get_columns("job_quality")}
    missing = [name for name in COLUMNS_ADDED_LATER if name not in present]
    for name in missing:
        try:
            with engine.begin() as conn:
                conn.execute(
                    sa.text(f"ALTER TABLE job_quality ADD COLUMN {name} TEXT NOT NULL DEFAULT ''")
                )
        except sa.exc.DBAPIError:  # another process added it first
            if name not in {c["name"] for c in sa.inspect(engine).get_columns("job_quality")}:
                raise


def save_results(conn: sa.Connection, run_id: str, results: Sequence[RuleResult]) -> None:
    """Store a run's rule results, replacing any stored before for that run."""
    conn.execute(job_quality.delete().where(job_quality.c.run_id == run_id))
    if results:
        conn.execute(
            job_quality.insert(),
            [
                {
                    "run_id": run_id,
                    "position": position,
                    "rule": r.rule,
                    "action": r.action,
                    "passed": r.passed,
                    "failing_rows": r.failing_rows,
                    "detail": r.detail,
                    "source": r.source,
                }
                for position, r in enumerate(results)
            ],
        )


def load_results(conn: sa.Connection, run_ids: Sequence[str]) -> dict[str, list[RuleResult]]:
    """Rule results of the given runs, in declaration order (runs without any: absent)."""
    if not run_ids:
        return {}
    query = (
        sa.select(job_quality)
        .where(job_quality.c.run_id.in_(list(run_ids)))
        .order_by(job_quality.c.run_id, job_quality.c.position)
    )
    found: dict[str, list[RuleResult]] = {}
    for row in conn.execute(query).mappings():
        found.setdefault(row["run_id"], []).append(
            RuleResult(
                rule=row["rule"],
                action=row["action"],
                passed=bool(row["passed"]),
                failing_rows=int(row["failing_rows"]),
                detail=row["detail"],
                source=row["source"],
            )
        )
    return found
