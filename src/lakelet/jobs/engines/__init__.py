"""Where a job's SQL runs: DuckDB in-process (default) or Apache Spark."""

from __future__ import annotations

from lakelet.errors import ConfigError
from lakelet.jobs.engines.base import Engine, EngineResult

ENGINES = ("duckdb", "spark")


def engine_for(name: str) -> Engine:
    """The engine called ``name``; Spark's module (and pyspark) load only when asked for."""
    if name == "duckdb":
        from lakelet.jobs.engines.duckdb import DuckDBEngine

        return DuckDBEngine()
    if name == "spark":
        from lakelet.jobs.engines.spark import SparkEngine

        return SparkEngine()
    raise ConfigError(f"unknown engine {name!r}: use one of {', '.join(ENGINES)}")


__all__ = ["ENGINES", "Engine", "EngineResult", "engine_for"]
