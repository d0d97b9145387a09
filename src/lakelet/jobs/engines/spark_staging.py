"""A Spark job that scales past the driver: Spark writes the result into the output
table as Parquet, and pyiceberg commits the files.

A job with nothing to look at in Python before its commit (no data-quality rules of
its own or of its output table, no steps) never brings its rows to the driver: Spark
writes them, in parallel and spilling to disk as it needs, into a folder of its own
under the output table's ``data/``, and one pyiceberg transaction adds the files
(``add_files``) with the bookmark, the schema change and, for ``overwrite``, the removal
of the old rows (:mod:`lakelet.catalog.bulk` makes that commit for DuckDB's writes too).
Inputs reach Spark as Iceberg reads or as staged Parquet
(:mod:`~lakelet.jobs.engines.spark_inputs`), so no input passes through memory either.

The files are Parquet as Iceberg reads it (microsecond timestamps, no field ids: the
table's name mapping ties columns to fields), one partition value per file for a
partitioned table (:mod:`~lakelet.jobs.engines.spark_partitions`). A failure before the
commit (Spark's, the deadline's, the commit's own) removes the folder and commits
nothing. A result that cannot be written so is collected and written by pyiceberg, as
the runner writes any Spark result: columns Iceberg stores under escaped names
(``count(1)``), types it has no equal for, rows of re-read files to replace, partition
transforms a file's bounds cannot tell (``bucket``).
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from lakelet.catalog.catalog import WriteResult
from lakelet.errors import TableSchemaError
from lakelet.jobs.commit import OutputCommit, plan_commit
from lakelet.jobs.engines.base import inputs_read
from lakelet.jobs.engines.spark import (
    SparkJob,
    job_group,
    query_frame,
    result_schema,
    spark_job,
    to_arrow,
)
from lakelet.jobs.engines.spark_errors import spark_exceptions, spark_failure
from lakelet.jobs.engines.spark_partitions import HELPER, partition_keys
from lakelet.jobs.streaming import StreamedRun, writes_unchecked

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame
    from pyspark.sql.types import DataType, StructType

    from lakelet.jobs.bookmarks import BookmarkedRead
    from lakelet.jobs.deadline import Deadline
    from lakelet.jobs.spec import JobSpec
    from lakelet.project import Project

SPARK_CODECS = {"lz4": "lz4_raw"}  # Spark's "lz4" is Hadoop's framing, not Parquet's
SUCCESS_MARKER = "mapreduce.fileoutputcommitter.marksuccessfuljobs"
DISTRIBUTION = "write.distribution-mode"


@dataclass(frozen=True)
class StagedWrite:
    """What Spark writes: the result with a helper column per partition key."""

    frame: DataFrame
    partition_by: list[str]


def can_stage(project: Project, spec: JobSpec) -> bool:
    """A Spark job whose result Spark can write itself (:func:`writes_unchecked`)."""
    return writes_unchecked(project, spec, "spark")


def stage_job(
    project: Project,
    spec: JobSpec,
    params: Mapping[str, str],
    *,
    reading: BookmarkedRead | None,
    deadline: Deadline,
) -> StreamedRun:
    """Run the job on Spark and commit its result; the rows never reach the driver
    unless the result cannot be staged (see the module's notes)."""
    with spark_job(project, spec, params, bookmark=reading, deadline=deadline) as job:
        frame = query_frame(job.spark, job.sql, source=job.source)
        schema = result_schema(frame, job.sql, source=job.source)
        commit = plan_commit(project.catalog, spec, schema, reading)
        # Counted before the commit: a failure after it would fail a run whose output
        # is already written.
        inputs, rejects = inputs_read(job.duck), job.duck.rejects()
        staged = staged_write(project, spec, frame, commit)
        if staged is None:
            with job_group(job.spark) as cancel, deadline.interrupting(cancel):
                rows = to_arrow(frame, job.sql, source=job.source)
            deadline.check()
            written = commit.write(project.catalog, spec, rows)
        else:
            written = write_staged(project, spec, job, staged, schema, commit, deadline)
    return StreamedRun(written, inputs, rejects)


def staged_write(
    project: Project, spec: JobSpec, frame: DataFrame, commit: OutputCommit
) -> StagedWrite | None:
    """How Spark writes ``frame`` into the output, or ``None`` when it cannot."""
    if commit.replace is not None:  # rows of re-read files to delete: Catalog.write does
        return None
    if not writable_columns(frame.schema):
        return None
    kind = project.catalog.kind(spec.output)
    if kind == "raw":  # Catalog.write says why not
        return None
    if kind is None:  # a new table: unpartitioned
        return StagedWrite(frame, [])
    table = project.catalog.load_iceberg(spec.output)
    keys = partition_keys(table, frame.columns)
    if keys is None or local_folder(table.location()) is None:
        return None
    if not keys:
        return StagedWrite(frame, [])
    from pyspark.sql import functions as F

    names = [HELPER.format(i) for i in range(len(keys))]
    try:
        keyed = frame.select("*", *(F.expr(k).alias(n) for k, n in zip(keys, names, strict=True)))
    except spark_exceptions():  # a column of another type than the table's
        return None
    mode = str(table.properties.get(DISTRIBUTION, "hash"))  # Iceberg's default
    if mode == "hash":  # one task (so one file) per partition
        keyed = keyed.repartition(*names)
    elif mode == "range":
        keyed = keyed.repartitionByRange(*names)
    return StagedWrite(keyed, names)


def write_staged(
    project: Project,
    spec: JobSpec,
    job: SparkJob,
    staged: StagedWrite,
    schema: pa.Schema,
    commit: OutputCommit,
    deadline: Deadline,
) -> WriteResult:
    """Spark writes the rows into a new folder of the table's ``data/``; one commit adds
    the files. The table is opened, committed to and cleaned up after a failure as for
    DuckDB's streamed writes (:mod:`lakelet.catalog.bulk`)."""
    from lakelet.catalog.bulk import write_files

    def produce(location: str, codec: str) -> tuple[int, list[str]]:
        folder = local_folder(location)
        if folder is None:  # checked for an existing table; a new one is in the lake
            raise TableSchemaError(f"cannot write to {spec.output}: {location} is not local")
        try:
            with job_group(job.spark) as cancel, deadline.interrupting(cancel):
                write_parquet(staged, folder, SPARK_CODECS.get(codec, codec))
            files, rows = staged_files(folder, location)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)  # also for a ``file:`` location
            raise
        return rows, files

    def before_commit(rows: int) -> None:
        deadline.check()  # a run past its timeout writes nothing

    try:
        return write_files(
            project.catalog,
            project.store,
            spec.output,
            schema,
            commit.mode,
            produce,
            commit.properties,
            before_commit,
        )
    except spark_exceptions() as exc:
        raise spark_failure(exc, job.source, sql=job.sql) from exc


def write_parquet(staged: StagedWrite, folder: Path, codec: str) -> None:
    """Spark writes the rows under ``folder``, a subfolder per partition."""
    writer = staged.frame.write.mode("errorifexists").option("compression", codec)
    writer = writer.option(SUCCESS_MARKER, "false")
    if staged.partition_by:
        writer = writer.partitionBy(*staged.partition_by)
    writer.parquet(folder.as_uri())


def staged_files(folder: Path, location: str) -> tuple[list[str], int]:
    """Spark's data files under ``folder`` as the table names them (``location``), and
    their rows; checksums, markers and empty files are removed."""
    import pyarrow.parquet as pq

    files: list[str] = []
    rows = 0
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.name.startswith("part-") and path.suffix == ".parquet":
            count = pq.read_metadata(path).num_rows
            if count:
                files.append(f"{location}/{path.relative_to(folder).as_posix()}")
                rows += count
                continue
        path.unlink()  # .crc checksums, the empty file of an empty result
    if not files:
        shutil.rmtree(folder, ignore_errors=True)
    return files, rows


def writable_columns(schema: StructType) -> bool:
    """Whether Spark's Parquet of these columns is what the Iceberg table reads: names
    Iceberg does not escape, no two equal but for case, types Iceberg has."""
    from pyiceberg.schema import make_compatible_name

    seen: set[str] = set()
    for field in schema.fields:
        if make_compatible_name(field.name) != field.name or field.name.lower() in seen:
            return False
        seen.add(field.name.lower())
        if not _plain_type(field.dataType):
            return False
    return True


def _plain_type(dtype: DataType) -> bool:
    from pyiceberg.schema import make_compatible_name
    from pyspark.sql import types as T

    if isinstance(dtype, T.ArrayType):
        return _plain_type(dtype.elementType)
    if isinstance(dtype, T.MapType):
        return _plain_type(dtype.keyType) and _plain_type(dtype.valueType)
    if isinstance(dtype, T.StructType):
        return all(
            make_compatible_name(f.name) == f.name and _plain_type(f.dataType) for f in dtype.fields
        )
    plain = (
        T.BooleanType,
        T.ByteType,
        T.ShortType,
        T.IntegerType,
        T.LongType,
        T.FloatType,
        T.DoubleType,
        T.DecimalType,
        T.StringType,
        T.BinaryType,
        T.DateType,
        T.TimestampType,
        T.TimestampNTZType,
    )
    return isinstance(dtype, plain)


def local_folder(location: str) -> Path | None:
    """The folder a table location names on this machine, if it is local."""
    if location.startswith("file:"):
        return Path(unquote(urlparse(location).path))
    if "://" in location:
        return None
    return Path(location)
