"""Spark's failures as Lakelet's errors, so a run never ends in a raw Py4J trace.

pyspark turns some JVM exceptions into Python ones (analysis and most runtime errors)
and leaves the rest as ``Py4JJavaError``, whose first line only says which JVM call
failed: a failed job wraps the task's exception several times over. The message kept is
the innermost cause's, the one that names what went wrong (``Division by zero``). A
cause the machine is to blame for (I/O, memory) is a :class:`JobError`, which the
runner retries; the rest is the SQL's (:class:`SqlError`, exit code 2).
"""

from __future__ import annotations

from typing import Any

from lakelet.errors import JobError, LakeletError, SqlError

FAULTS = frozenset({"java.io.IOException", "java.lang.VirtualMachineError"})
"""Root causes that are the machine's fault, not the SQL's: a retry may succeed."""
MAX_CAUSES = 32


def spark_exceptions() -> tuple[type[Exception], ...]:
    """What pyspark raises for a failure in the JVM (imported lazily)."""
    from py4j.protocol import Py4JJavaError  # type: ignore[import-untyped]
    from pyspark.errors import PySparkException

    return (PySparkException, Py4JJavaError)


def spark_failure(exc: Exception, what: str, *, sql: str | None = None) -> LakeletError:
    """The error a run reports for ``exc``, raised while doing ``what`` on Spark."""
    from py4j.protocol import Py4JJavaError

    shown = f" (Spark SQL: {sql})" if sql else ""
    if isinstance(exc, Py4JJavaError):
        root = _root_cause(exc.java_exception)
        message = f"{what} on Spark: {_first_line(_message(root))}{shown}"
        return JobError(message) if _class_names(root) & FAULTS else SqlError(message)
    return SqlError(f"{what} on Spark: {_first_line(str(exc)) or type(exc).__name__}{shown}")


def _root_cause(throwable: Any) -> Any:
    for _ in range(MAX_CAUSES):
        cause = throwable.getCause()
        if cause is None or cause.equals(throwable):
            break
        throwable = cause
    return throwable


def _message(throwable: Any) -> str:
    message = throwable.getMessage()
    return str(message) if message else str(throwable.toString())


def _class_names(throwable: Any) -> set[str]:
    """The class of ``throwable`` and its superclasses."""
    names = set()
    cls = throwable.getClass()
    while cls is not None:
        names.add(str(cls.getName()))
        cls = cls.getSuperclass()
    return names


def _first_line(text: str) -> str:
    stripped = text.strip()
    return stripped.splitlines()[0] if stripped else ""
