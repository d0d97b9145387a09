"""The Spark engine: a job's SQL, transpiled from DuckDB's dialect, on Apache Spark.

Spark reads Iceberg tables through Iceberg's own Spark catalog over the same JDBC
database pyiceberg uses (SQLite or PostgreSQL), pinned to the snapshot the run records.
Raw (crawled) and warehouse tables are read by Lakelet's DuckDB scan, so a malformed row
is rejected with its file and line exactly as on the DuckDB engine, and handed to Spark
as Parquet files (:mod:`~lakelet.jobs.engines.spark_inputs`; as Arrow for a lake on S3).

A job with nothing to check in Python before its commit has Spark write its result as
Parquet into the output table and pyiceberg commit the files
(:mod:`~lakelet.jobs.engines.spark_staging`). Otherwise, as here, the result comes back
as Arrow and the runner writes it through pyiceberg: the data-quality rules and the
single Iceberg commit are the same for every engine.

A bookmarked job reads on Spark what it reads on DuckDB: raw files the bookmark has not
seen (each row with its ``_lakelet_file``) and, of an Iceberg input, only the data files
added since the bookmarked snapshot (staged like a raw input; a first or full read stays
Iceberg's own). A job's steps run after the Spark SQL, on its result, in the run's
DuckDB session. The job's ``timeout`` cancels the run's Spark jobs (one job group per
run).

One SparkSession (one JVM) is started per process and reused; every run gets its own
``newSession()`` with the project's catalog configured, so runs of different projects
in one process do not see each other's catalogs or views.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from lakelet.errors import ConfigError, MissingExtraError, SqlError
from lakelet.jobs.deadline import Deadline
from lakelet.jobs.engines.base import EngineResult, inputs_read
from lakelet.jobs.engines.spark_errors import spark_exceptions, spark_failure
from lakelet.jobs.engines.spark_inputs import input_staging, staged_input
from lakelet.jobs.engines.spark_runtime import (
    iceberg_runtime_jar,
    java_binary,
    jdbc_driver_jar,
    log_config,
)
from lakelet.jobs.session import Session
from lakelet.jobs.sqltext import TableRef, parse_one_statement, substitute_params, table_refs
from lakelet.jobs.steps import run_steps_with_children
from lakelet.metadata import resolve_sqlalchemy_uri

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

    from lakelet.jobs.bookmarks import BookmarkedRead
    from lakelet.jobs.children import ChildTable
    from lakelet.jobs.spec import JobSpec
    from lakelet.project import Project

ICEBERG_CATALOG = "org.apache.iceberg.spark.SparkCatalog"
ICEBERG_EXTENSIONS = "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions"
LOCAL_SHUFFLE_PARTITIONS = "8"  # Spark's 200 makes small local jobs slow
INPUT_VIEW = "lakelet_input_{}"
SPARK_DIALECT = "spark"
PARQUET_CONF = {
    # Parquet as Iceberg reads it: microsecond timestamps (not INT96), no field ids
    # (add_files refuses them; the table's name mapping ties columns to fields),
    # standard list and map layouts, and dates in the proleptic calendar both ways.
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.parquet.fieldId.write.enabled": "false",
    "spark.sql.parquet.writeLegacyFormat": "false",
    "spark.sql.parquet.datetimeRebaseModeInWrite": "CORRECTED",
    "spark.sql.parquet.datetimeRebaseModeInRead": "CORRECTED",
}


class SparkEngine:
    name = "spark"

    def run(
        self,
        project: Project,
        spec: JobSpec,
        params: Mapping[str, str],
        *,
        bookmark: BookmarkedRead | None = None,
        deadline: Deadline | None = None,
    ) -> EngineResult:
        deadline = deadline or Deadline(None)
        with spark_job(project, spec, params, bookmark=bookmark, deadline=deadline) as job:
            with job_group(job.spark) as cancel, deadline.interrupting(cancel):
                result = collect(job.spark, job.sql, source=job.source)
            children: list[ChildTable] = []
            if spec.steps:
                with deadline.interrupting(job.duck.connection.interrupt):
                    result, children = run_steps_with_children(job.duck, spec, result, params)
            return EngineResult(result, inputs_read(job.duck), job.duck.rejects(), children)


@dataclass(frozen=True)
class SparkJob:
    """A run made ready on Spark: its SQL over Spark's names for its inputs."""

    spark: SparkSession
    duck: Session
    """The run's DuckDB session: it read the raw inputs and runs the steps."""
    sql: str
    source: str


@contextmanager
def spark_job(
    project: Project,
    spec: JobSpec,
    params: Mapping[str, str],
    *,
    bookmark: BookmarkedRead | None,
    deadline: Deadline,
) -> Iterator[SparkJob]:
    """The job's inputs bound for Spark and its SQL transpiled; staged inputs and the
    run's catalog connection are released when the block ends."""
    if not spec.sql:
        raise ConfigError(
            f"jobs.{spec.name}: a job of steps only runs on the DuckDB engine (on Spark "
            'the steps follow the job\'s sql); remove engine = "spark" for this job'
        )
    source = spec.source
    statement = parse_one_statement(
        substitute_params(spec.sql, params, source=source), source=source
    )
    spark = run_session(project)
    try:
        with input_staging(project, spec) as staging, Session(project, bookmark=bookmark) as duck:
            with deadline.interrupting(duck.connection.interrupt):
                targets = spark_inputs(
                    spark,
                    duck,
                    statement,
                    project.settings.catalog.name,
                    source=source,
                    staging=staging,
                )
            yield SparkJob(spark, duck, transpile(statement, targets), source)
    finally:
        release(spark, project.settings.catalog.name)


def spark_inputs(
    spark: SparkSession,
    duck: Session,
    statement: exp.Expr,
    catalog: str,
    *,
    source: str,
    staging: Path | None = None,
) -> dict[TableRef, exp.Table]:
    """What Spark reads for each table the statement names.

    An Iceberg table read whole is Spark's own read of the pinned snapshot; anything
    else (raw and warehouse tables, the new part of a bookmarked Iceberg input) is read
    by the DuckDB session, exactly as a DuckDB run reads it, and handed over as Parquet
    files in ``staging`` (as Arrow without one).
    """
    targets: dict[TableRef, exp.Table] = {}
    for ref in table_refs(statement):
        bound = duck.bind(ref)  # resolves names and errors as the DuckDB engine does
        if bound.kind == "iceberg" and not bound.partial:
            targets[ref] = iceberg_table(catalog, ref, bound.snapshot_id)
            continue
        view = INPUT_VIEW.format(len(targets) + 1)
        if staging is None:
            rows = duck.execute(f"SELECT * FROM {_duck_name(ref)}", source=source)
            frame = arrow_to_spark(spark, rows)
        else:
            frame = staged_input(spark, duck, _duck_name(ref), staging / view, source=source)
        frame.createOrReplaceTempView(view)
        targets[ref] = exp.table_(view)
    return targets


@contextmanager
def job_group(spark: SparkSession) -> Iterator[Callable[[], None]]:
    """Run the block's Spark jobs in a group of their own; yields what cancels them."""
    group = f"lakelet-{uuid.uuid4().hex}"
    context = spark.sparkContext
    context.setJobGroup(group, "lakelet job run", interruptOnCancel=True)
    try:
        yield lambda: context.cancelJobGroup(group)
    finally:
        jsc: Any = context._jsc
        jsc.clearJobGroup()


# --- SQL ---------------------------------------------------------------------------


def transpile(statement: exp.Expr, targets: Mapping[TableRef, exp.Table]) -> str:
    """Spark SQL for a DuckDB statement, with each catalog name swapped for its target.

    A swapped table keeps its name as alias, so ``sales.amount`` still resolves.
    """

    def swap(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Table) and isinstance(node.this, exp.Identifier) and node.db:
            target = targets.get(TableRef(db=node.db, name=node.name, catalog=node.catalog))
            if target is not None:
                new = target.copy()
                alias = node.args.get("alias") or exp.TableAlias(this=exp.to_identifier(node.name))
                new.set("alias", alias)
                return new
        if isinstance(node, exp.Column) and node.args.get("db") is not None:
            ref = TableRef(db=node.text("db"), name=node.table, catalog=node.text("catalog"))
            if ref in targets:  # db.table.column → table.column (the alias above)
                return exp.column(node.name, table=node.table)
        return node

    return statement.copy().transform(swap).sql(dialect=SPARK_DIALECT)


def iceberg_table(catalog: str, ref: TableRef, snapshot_id: int | None) -> exp.Table:
    """``catalog.db.table VERSION AS OF snapshot``: Spark reads what the run records."""
    table = exp.table_(ref.name, db=ref.db, catalog=catalog, quoted=True)
    if snapshot_id is not None:
        table.set(
            "version",
            exp.Version(this="VERSION", kind="AS OF", expression=exp.Literal.number(snapshot_id)),
        )
    return table


def _duck_name(ref: TableRef) -> str:
    return ".".join('"' + p.replace('"', '""') + '"' for p in (ref.catalog, ref.db, ref.name) if p)


# --- sessions ----------------------------------------------------------------------


def spark_conf(project: Project) -> dict[str, str]:
    """Static settings for the process's SparkSession; ``[spark] conf`` wins."""
    settings = project.settings.spark
    jars = list(settings.jars)
    if not any("iceberg-spark-runtime" in j for j in [*jars, *settings.packages]):
        jars.insert(0, str(iceberg_runtime_jar()))
    kind = _catalog_kind(project)
    if not any(_driver_marker(kind) in Path(j).name for j in jars):
        jars.append(str(jdbc_driver_jar(kind)))
    conf = {
        "spark.master": settings.master,
        "spark.app.name": f"lakelet-{project.settings.project.name}",
        "spark.jars": ",".join(jars),
        "spark.sql.extensions": ICEBERG_EXTENSIONS,
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
    }
    if settings.packages:
        conf["spark.jars.packages"] = ",".join(settings.packages)
    conf["spark.driver.extraJavaOptions"] = f"-Dlog4j2.configurationFile={log_config()}"
    if settings.master.startswith("local"):
        conf["spark.driver.host"] = "127.0.0.1"
        conf["spark.driver.bindAddress"] = "127.0.0.1"
        conf["spark.sql.shuffle.partitions"] = LOCAL_SHUFFLE_PARTITIONS
    conf.update({k: _conf_value(v) for k, v in settings.conf.items()})
    return conf


def catalog_conf(project: Project) -> dict[str, str]:
    """Iceberg's JDBC catalog over the database pyiceberg's SqlCatalog uses.

    The Spark catalog takes the pyiceberg catalog's name: both filter ``iceberg_tables``
    by it, so they see the same tables.
    """
    from sqlalchemy.engine import make_url

    name = project.settings.catalog.name
    prefix = f"spark.sql.catalog.{name}"
    url = make_url(resolve_sqlalchemy_uri(project.settings.catalog.uri, project.root))
    conf = {
        prefix: ICEBERG_CATALOG,
        f"{prefix}.type": "jdbc",
        f"{prefix}.cache-enabled": "false",  # one catalog per run, snapshots pinned
        f"{prefix}.warehouse": project.settings.spark.warehouse or project.store.root,
    }
    if url.get_backend_name() == "sqlite":
        conf[f"{prefix}.uri"] = f"jdbc:sqlite:{url.database}"
    else:
        host = url.host or "localhost"
        port = f":{url.port}" if url.port else ""
        conf[f"{prefix}.uri"] = f"jdbc:postgresql://{host}{port}/{url.database or ''}"
        if url.username:
            conf[f"{prefix}.jdbc.user"] = url.username
        if url.password:
            conf[f"{prefix}.jdbc.password"] = str(url.password)
    return conf


def spark_session(project: Project) -> SparkSession:
    """The process's SparkSession, started with :func:`spark_conf` if none is running."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise MissingExtraError("pyspark", "spark", "the Spark engine") from exc
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    java_binary()  # a clear error before pyspark's own "Java gateway exited"
    conf = spark_conf(project)
    if conf["spark.master"].startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # stay on loopback
    builder: Any = SparkSession.builder
    for key, value in conf.items():
        builder = builder.config(key, value)
    session: SparkSession = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


def run_session(project: Project) -> SparkSession:
    """A fresh session on the shared JVM, with this project's catalog configured."""
    session = spark_session(project).newSession()
    for key, value in {**catalog_conf(project), **PARQUET_CONF}.items():
        session.conf.set(key, value)
    return session


def release(session: SparkSession, catalog: str) -> None:
    """Close the run's JDBC catalog, so a long-lived process does not pile up connections."""
    from py4j.protocol import Py4JError  # type: ignore[import-untyped]

    try:
        manager: Any = session._jsparkSession.sessionState().catalogManager()
        if manager.isCatalogRegistered(catalog):
            manager.catalog(catalog).icebergCatalog().close()
    except Py4JError:
        pass  # best effort: the JVM may already be gone


def _catalog_kind(project: Project) -> str:
    uri = project.settings.catalog.uri
    return "postgresql" if uri.startswith("postgresql") else "sqlite"


def _driver_marker(kind: str) -> str:
    return "sqlite-jdbc" if kind == "sqlite" else "postgresql"


def _conf_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --- Arrow in and out --------------------------------------------------------------


def collect(spark: SparkSession, sql: str, *, source: str) -> pa.Table:
    """Run Spark SQL and return every row as Arrow; Spark's errors become SqlErrors."""
    return to_arrow(query_frame(spark, sql, source=source), sql, source=source)


def query_frame(spark: SparkSession, sql: str, *, source: str) -> DataFrame:
    """The statement analysed by Spark (nothing runs yet); names and types are checked."""
    try:
        return spark.sql(sql)
    except spark_exceptions() as exc:
        raise spark_failure(exc, source, sql=sql) from exc


def result_schema(frame: DataFrame, sql: str, *, source: str) -> pa.Schema:
    """The frame's rows as Arrow types, every column nullable as DuckDB returns them:
    the output table's schema must not depend on the engine (Spark marks ``count(*)``
    and literals NOT NULL)."""
    import pyarrow as pa
    from pyspark.sql.pandas.types import to_arrow_schema

    try:
        return pa.schema([f.with_nullable(True) for f in to_arrow_schema(frame.schema)])
    except TypeError as exc:
        raise SqlError(
            f"{source} on Spark: the result cannot be returned: {exc} (Spark SQL: {sql})"
        ) from exc


def to_arrow(frame: DataFrame, sql: str, *, source: str) -> pa.Table:
    """Every row of ``frame``, brought to the driver."""
    import pyarrow as pa

    schema = result_schema(frame, sql, source=source)
    try:
        batches = frame._collect_as_arrow()
    except spark_exceptions() as exc:
        raise spark_failure(exc, source, sql=sql) from exc
    if not batches:
        return schema.empty_table()
    table = pa.Table.from_batches(batches)
    return table.cast(pa.schema([f.with_nullable(True) for f in table.schema]))


def arrow_to_spark(spark: SparkSession, table: pa.Table) -> DataFrame:
    """A Spark DataFrame holding ``table``'s rows, types kept (no pandas on the way).

    pyspark 3.5 builds DataFrames from Arrow only through pandas; this hands the Arrow
    stream to the same JVM entry points pyspark uses after its pandas step.
    """
    import pyarrow as pa
    from pyspark.sql import DataFrame
    from pyspark.sql.pandas.types import from_arrow_schema

    table = spark_ready(table)
    try:
        schema = from_arrow_schema(table.schema, prefer_timestamp_ntz=True)
    except TypeError as exc:
        raise SqlError(f"a column cannot be handed to Spark: {exc}") from exc
    jvm: Any = spark._jvm
    with tempfile.TemporaryDirectory(prefix="lakelet-spark-") as tmp:
        path = str(Path(tmp) / "rows.arrows")
        with pa.OSFile(path, "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table, max_chunksize=10_000)
        batches = jvm.PythonSQLUtils.readArrowStreamFromFile(path)  # read into memory
    jdf = jvm.PythonSQLUtils.toDataFrame(batches, schema.json(), spark._jsparkSession)
    return DataFrame(jdf, spark)


def spark_ready(table: pa.Table) -> pa.Table:
    """Arrow types Spark's reader takes: no large/view strings, dictionaries or ns times."""
    import pyarrow as pa

    fields = [pa.field(f.name, _spark_type(f.type), f.nullable) for f in table.schema]
    schema = pa.schema(fields)
    return table if schema.equals(table.schema) else table.cast(schema)


def _spark_type(t: pa.DataType) -> pa.DataType:
    import pyarrow as pa

    if pa.types.is_dictionary(t):
        return _spark_type(t.value_type)
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pa.string()
    if pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        return pa.binary()
    if pa.types.is_timestamp(t):
        return pa.timestamp("us", tz=None if t.tz is None else "UTC")
    if pa.types.is_large_list(t) or pa.types.is_list_view(t):
        return pa.list_(_spark_type(t.value_type))
    if pa.types.is_list(t):
        return pa.list_(_spark_type(t.value_type))
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, _spark_type(f.type), f.nullable) for f in t.fields])
    return t
