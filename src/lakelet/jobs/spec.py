"""Job specs: a ``[jobs.NAME]`` entry of ``lakelet.toml`` with its SQL file read."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from lakelet.catalog.catalog import WriteMode
from lakelet.catalog.names import TableName
from lakelet.config import QualityRule, StepSection
from lakelet.errors import ConfigError, JobNotFoundError, UserError
from lakelet.jobs.steps import check_steps

if TYPE_CHECKING:
    from lakelet.config import JobSection
    from lakelet.project import Project


@dataclass(frozen=True)
class JobSpec:
    """A job: its SQL (``""`` when it is made of steps only), steps, output and run rules."""

    name: str
    sql: str
    sql_path: Path | None
    output: TableName
    mode: WriteMode
    engine: str
    quality: list[QualityRule] = field(default_factory=list)
    max_retries: int = 0
    timeout: int | None = None
    max_concurrent_runs: int = 1
    bookmark: bool = False
    steps: list[StepSection] = field(default_factory=list)

    @property
    def source(self) -> str:
        """How errors name the job's SQL."""
        where = self.sql_path.name if self.sql_path is not None else "steps"
        return f"job {self.name} ({where})"


def job_spec(project: Project, name: str) -> JobSpec:
    """Resolve job ``name``: its section, its SQL text and its output table name."""
    jobs = project.settings.jobs
    if name not in jobs:
        close = difflib.get_close_matches(name, list(jobs), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        known = ", ".join(sorted(jobs)) or "none (add a [jobs.NAME] section to lakelet.toml)"
        raise JobNotFoundError(f"no job {name!r}{hint} (jobs: {known})")
    return spec_from_section(project.root, name, jobs[name])


def spec_from_section(root: Path, name: str, section: JobSection) -> JobSpec:
    path: Path | None = None
    sql = ""
    if section.sql is not None:
        path = Path(section.sql)
        path = path if path.is_absolute() else root / path
        if not path.is_file():
            raise ConfigError(f"jobs.{name}.sql: no SQL file at {path}")
        sql = path.read_text(encoding="utf-8")
    elif not section.steps:
        raise ConfigError(f'jobs.{name}: give it sql = "jobs/{name}.sql" or [[jobs.{name}.steps]]')
    check_steps(root, name, section.steps, first=section.sql is None)
    try:
        output = TableName.parse(section.output)
    except UserError as exc:
        raise ConfigError(f"jobs.{name}.output: {exc}") from exc
    for key, value, least in (
        ("max_retries", section.max_retries, 0),
        ("timeout", section.timeout, 1),
        ("max_concurrent_runs", section.max_concurrent_runs, 1),
    ):
        if value is not None and value < least:
            raise ConfigError(f"jobs.{name}.{key} = {value}: must be at least {least}")
    if section.bookmark and section.mode != "append":
        raise ConfigError(
            f'jobs.{name}.bookmark = true needs mode = "append": a bookmarked run reads only '
            "new data, so overwriting would drop what earlier runs wrote"
        )
    return JobSpec(
        name=name,
        sql=sql,
        sql_path=path,
        output=output,
        mode=section.mode,
        engine=section.engine,
        quality=list(section.quality),
        max_retries=section.max_retries,
        timeout=section.timeout,
        max_concurrent_runs=section.max_concurrent_runs,
        bookmark=section.bookmark,
        steps=list(section.steps),
    )
