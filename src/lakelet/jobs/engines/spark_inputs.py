"""Hand Spark what Lakelet's DuckDB scan reads, as Parquet files rather than memory.

Raw (crawled) and warehouse tables, and the new part of a bookmarked Iceberg input, are
read by the run's DuckDB session, so a malformed row is rejected with its file and line
as on the DuckDB engine and a bookmarked row carries its ``_lakelet_file``. DuckDB
copies those rows into Parquet files in a staging folder in the lake (streamed: memory
stays within DuckDB's limit), and Spark reads the files, so neither the Python driver
nor the JVM holds an input whole. The folder lives beside the output table's files,
where a cluster that reads the lake also reaches it, and goes when the run ends.

Types are made the ones the Arrow hand-over gives Spark: DuckDB would write a HUGEINT
as a DOUBLE and a UUID as 16 bytes, and Spark reads no nanosecond timestamps.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakelet.errors import SqlError
from lakelet.jobs.engines.spark_errors import spark_exceptions, spark_failure
from lakelet.jobs.session import duckdb_message

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from lakelet.jobs.session import Session
    from lakelet.jobs.spec import JobSpec
    from lakelet.project import Project

STAGING_FOLDER = "_staging"
"""Inside the output table's folder; Spark and Hive skip ``_``-prefixed paths."""
FILE_BYTES = 128 * 1024 * 1024
"""One staged file per this many bytes, so Spark reads an input in parallel."""
_AS_TEXT = frozenset({"uuid", "enum"})
_AS_TIMESTAMP = frozenset({"timestamp_ns", "timestamp_ms", "timestamp_s"})


@contextmanager
def input_staging(project: Project, spec: JobSpec) -> Iterator[Path | None]:
    """A fresh folder for the run's staged inputs, removed afterwards with the folders
    it needed; ``None`` for a lake on S3 (Spark has no S3 file system here: the rows
    are handed over as Arrow)."""
    if project.store.root.startswith("s3://"):
        yield None
        return
    table_folder = Path(project.store.url(spec.output.database, spec.output.name))
    folder = table_folder / STAGING_FOLDER / uuid.uuid4().hex
    made = _make_folders(folder)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        for path in reversed(made[:-1]):  # the staging root, a new table's folder, …
            try:
                path.rmdir()  # only when empty: another run may be staging there
            except OSError:
                break


def staged_input(
    spark: SparkSession, duck: Session, relation: str, folder: Path, *, source: str
) -> DataFrame:
    """Spark's read of ``relation`` (a name bound in ``duck``), through Parquet files
    that DuckDB writes into ``folder``."""
    import duckdb

    con = duck.connection
    try:
        columns = con.sql(f"SELECT * FROM {relation} LIMIT 0")
        select = f"SELECT {spark_columns(columns.columns, columns.types)} FROM {relation}"
        target = _literal(str(folder))
        con.execute(
            f"COPY ({select}) TO {target} (FORMAT parquet, COMPRESSION snappy, "
            f"FILE_SIZE_BYTES {FILE_BYTES}, FILENAME_PATTERN 'part-{{i}}')"
        )
    except duckdb.Error as exc:
        raise SqlError(f"{source}: {duckdb_message(exc)}") from exc
    try:
        return spark.read.parquet(folder.as_uri())  # an empty input still leaves one file
    except spark_exceptions() as exc:  # a type Spark does not read (TIME, INTERVAL)
        raise spark_failure(exc, f"{source}: reading {relation}") from exc


def spark_columns(names: list[str], types: list[Any]) -> str:
    """The select list that casts each column to a type Spark reads as the Arrow
    hand-over would give it."""
    columns = []
    for name, dtype in zip(names, types, strict=True):
        quoted = _quote(name)
        wanted = spark_type(dtype)
        same = wanted == str(dtype)
        columns.append(quoted if same else f"CAST({quoted} AS {wanted}) AS {quoted}")
    return ", ".join(columns)


def spark_type(dtype: Any) -> str:
    """The DuckDB type a column of ``dtype`` is staged as (nested types throughout)."""
    kind = dtype.id
    if kind in ("hugeint", "uhugeint"):
        return "DECIMAL(38,0)"
    if kind in _AS_TEXT or str(dtype) == "JSON":
        return "VARCHAR"
    if kind in _AS_TIMESTAMP:
        return "TIMESTAMP"
    if kind == "list":
        ((_, child),) = dtype.children
        return f"{spark_type(child)}[]"
    if kind == "struct":
        fields = ", ".join(f"{_quote(n)} {spark_type(t)}" for n, t in dtype.children)
        return f"STRUCT({fields})"
    if kind == "map":
        (_, key), (_, value) = dtype.children
        return f"MAP({spark_type(key)}, {spark_type(value)})"
    return str(dtype)


def _make_folders(folder: Path) -> list[Path]:
    """Create ``folder`` and the missing folders above it; returns those it created,
    outermost first (``folder`` last)."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    folder.mkdir(parents=True, exist_ok=True)
    return list(reversed(missing))


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
