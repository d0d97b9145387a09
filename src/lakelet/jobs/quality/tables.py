"""Rules declared per table (``[tables."db.table"]``), whichever job writes the table.

They are checked at load time (a bad name or rule fails before anything runs), added to
the rules of every job run that writes the table, and can be evaluated on the table's
current rows without a job (``lakelet check TABLE``), which changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from lakelet.catalog.names import TableName
from lakelet.errors import ConfigError, NotFoundError, UserError
from lakelet.jobs.quality.rules import Check, table_checks, table_key

if TYPE_CHECKING:
    from lakelet.config import Settings, TableSection
    from lakelet.jobs.quality import RuleResult
    from lakelet.project import Project


@dataclass
class TableCheck:
    """A table's declared rules evaluated on its current rows."""

    table: str
    rows: int
    snapshot_id: int | None
    results: list[RuleResult] = field(default_factory=list)

    @property
    def blocking(self) -> list[RuleResult]:
        """Failed rules whose action is ``fail``: a run writing these rows would fail."""
        return [r for r in self.results if not r.passed and r.action == "fail"]


def check_table_sections(tables: Mapping[str, TableSection], source: str) -> None:
    """Refuse a table key that is not ``db.table`` or a rule that does not parse."""
    for key, section in tables.items():
        try:
            name = TableName.parse(key)
        except UserError as exc:
            raise ConfigError(f"{source}: tables.{table_key(key)}: {exc}") from exc
        if str(name) != key:
            raise ConfigError(
                f"{source}: tables.{table_key(key)}: write the table name as {str(name)!r}"
            )
        try:
            table_checks(key, section.quality)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from exc


def declared_checks(settings: Settings, table: TableName) -> list[Check]:
    """The rules ``lakelet.toml`` declares for ``table`` (none when it has no section)."""
    section = settings.tables.get(str(table))
    return table_checks(str(table), section.quality) if section is not None else []


def check_table(project: Project, name: str, *, now: datetime | None = None) -> TableCheck:
    """Evaluate ``name``'s declared rules on its current rows; write nothing.

    Row rules report their failing rows but hold nothing back: quarantine belongs to
    a job's run.
    """
    from lakelet.jobs.quality.rules import evaluate
    from lakelet.jobs.session import Session
    from lakelet.jobs.sqltext import TableRef

    table = TableName.parse(name)
    checks = declared_checks(project.settings, table)
    if not checks:
        declared = ", ".join(sorted(project.settings.tables)) or "none"
        raise NotFoundError(
            f"no data-quality rules for {table}: add [[tables.{table_key(str(table))}.quality]] "
            f"entries to lakelet.toml (tables with rules: {declared})"
        )
    with Session(project) as session:
        bound = session.bind(TableRef(db=table.database, name=table.name))
        rows = session.execute(f'SELECT * FROM "{table.database}"."{table.name}"')
        evaluation = evaluate(session, checks, rows, now=now or datetime.now(UTC))
    return TableCheck(str(table), rows.num_rows, bound.snapshot_id, evaluation.results)
