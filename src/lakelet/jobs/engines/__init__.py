"""Where a job's SQL runs: in-process DuckDB (the default) or Apache Spark.

Each engine implements :class:`Engine` and is loaded only when a job asks for it, so
pyspark is never imported by a DuckDB run.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from lakelet.errors import ConfigError
from lakelet.jobs.engines.base import Engine, EngineResult

if TYPE_CHECKING:
    from lakelet.project import Project

ENGINES = ("duckdb", "spark")


def engine_for(name: str) -> Engine:
    """The engine called ``name``."""
    if name == "duckdb":
        from lakelet.jobs.engines.duckdb import DuckDBEngine

        return DuckDBEngine()
    if name == "spark":
        from lakelet.jobs.engines.spark import SparkEngine

        return SparkEngine()
    raise ConfigError(f"unknown engine {name!r}: use one of {', '.join(ENGINES)}")


def with_engine(project: Project, job: str, engine: str) -> Project:
    """The project with job ``job`` set to run on ``engine`` (``lakelet run --engine``).

    An unknown job is left for the runner to report with its usual hint.
    """
    from lakelet.project import Project

    if engine not in ENGINES:
        raise ConfigError(f"--engine {engine!r}: use one of {', '.join(ENGINES)}")
    jobs = project.settings.jobs
    if job not in jobs:
        return project
    section = dataclasses.replace(jobs[job], engine=engine)  # type: ignore[arg-type]
    settings = dataclasses.replace(project.settings, jobs={**jobs, job: section})
    return Project(project.root, settings)


__all__ = ["ENGINES", "Engine", "EngineResult", "engine_for", "with_engine"]
