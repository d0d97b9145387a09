"""The Spark engine: same rows as DuckDB, same catalog, clear errors when pieces are missing.

The slow tests share one local SparkSession (one JVM) per module; each run still gets a
session of its own with the project's catalog configured, as in production.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlglot

from lakelet.catalog import TableName
from lakelet.cli.main import main
from lakelet.crawler import crawler_spec, run_crawler
from lakelet.errors import ConfigError, SqlError
from lakelet.jobs import JobRunFailed, RunStore, query, run_job
from lakelet.jobs.engines import with_engine
from lakelet.jobs.engines.spark import catalog_conf, iceberg_table, spark_conf, transpile
from lakelet.jobs.engines.spark_runtime import (
    SparkSetupError,
    iceberg_runtime_jar,
    java_binary,
    jdbc_driver_jar,
)
from lakelet.jobs.sqltext import TableRef
from lakelet.project import Project, init_project

# 20 good rows and one bad quantity on file line 6: both engines must reject it alike.
_ROWS = [f"m{1 + i % 3},{('cola', 'water', 'juice')[i % 4 % 3]},{1 + i % 5}" for i in range(20)]
SALES_CSV = (
    "machine,product,qty\n" + "\n".join([*_ROWS[:4], "m2,cola,oops", *_ROWS[4:]]) + "\n"
).encode()
PRICES = pa.table(
    {
        "product": ["cola", "water", "juice"],
        "price": pa.array([Decimal("1.50"), Decimal("0.80"), Decimal("2.10")], pa.decimal128(9, 2)),
    }
)
# DuckDB-only syntax on purpose: GROUP BY ALL, :: casts, a ${param}.
JOB_SQL = """
SELECT s.machine, p.product, sum(s.qty)::BIGINT AS units,
       sum(s.qty * p.price) AS revenue, count(*) AS sales
FROM raw.sales s JOIN curated.prices p ON s.product = p.product
WHERE s.qty >= ${min_qty}::INT
GROUP BY ALL
"""


# --- without Spark -----------------------------------------------------------------


def test_transpile_qualifies_pins_and_rewrites_duckdb_syntax() -> None:
    statement = sqlglot.parse_one(
        "SELECT sales.machine, curated.prices.price, x::INT AS n FROM raw.sales "
        "JOIN curated.prices USING (product) GROUP BY ALL",
        read="duckdb",
    )
    targets = {
        TableRef("raw", "sales"): sqlglot.exp.table_("lakelet_input_1"),
        TableRef("curated", "prices"): iceberg_table("lake", TableRef("curated", "prices"), 42),
    }
    sql = transpile(statement, targets)
    assert sql == (
        "SELECT sales.machine, prices.price, CAST(x AS INT) AS n FROM lakelet_input_1 AS sales "
        "JOIN `lake`.`curated`.`prices` VERSION AS OF 42 AS prices USING (product) GROUP BY ALL"
    )


def test_catalog_conf_points_spark_at_the_same_catalog(tmp_project: Project) -> None:
    conf = catalog_conf(tmp_project)
    db = (tmp_project.root / ".lakelet" / "catalog.db").resolve()
    assert conf == {
        "spark.sql.catalog.lakelet": "org.apache.iceberg.spark.SparkCatalog",
        "spark.sql.catalog.lakelet.type": "jdbc",
        "spark.sql.catalog.lakelet.cache-enabled": "false",
        "spark.sql.catalog.lakelet.uri": f"jdbc:sqlite:{db}",
        "spark.sql.catalog.lakelet.warehouse": str((tmp_project.root / "lake").resolve()),
    }
    pg = Project.open(
        tmp_project.root,
        overrides={"catalog.uri": "postgresql://ann:s3cret@db.example:5433/lake"},
    )
    conf = catalog_conf(pg)
    assert conf["spark.sql.catalog.lakelet.uri"] == "jdbc:postgresql://db.example:5433/lake"
    assert conf["spark.sql.catalog.lakelet.jdbc.user"] == "ann"
    assert conf["spark.sql.catalog.lakelet.jdbc.password"] == "s3cret"


def test_spark_settings_reach_the_session_conf(tmp_project: Project) -> None:
    project = Project.open(
        tmp_project.root,
        overrides={
            "spark.master": "spark://head:7077",
            "spark.jars": [
                "/opt/iceberg-spark-runtime-3.5_2.12-1.10.2.jar",
                "/opt/sqlite-jdbc.jar",
            ],
            "spark.packages": ["org.postgresql:postgresql:42.7.4"],
            "spark.conf": {"spark.executor.memory": "4g", "spark.ui.enabled": True},
        },
    )
    conf = spark_conf(project)
    assert conf["spark.master"] == "spark://head:7077"
    # The user's runtime and driver replace the local build and Debian's driver.
    assert (
        conf["spark.jars"] == "/opt/iceberg-spark-runtime-3.5_2.12-1.10.2.jar,/opt/sqlite-jdbc.jar"
    )
    assert conf["spark.jars.packages"] == "org.postgresql:postgresql:42.7.4"
    assert conf["spark.executor.memory"] == "4g"
    assert conf["spark.ui.enabled"] == "true"  # the user's conf wins
    assert "spark.driver.bindAddress" not in conf  # loopback only in local mode


def test_with_engine_overrides_one_job(tmp_project: Project) -> None:
    (tmp_project.root / "jobs" / "j.sql").write_text("SELECT 1 AS x")
    with (tmp_project.root / "lakelet.toml").open("a") as f:
        f.write('\n[jobs.j]\nsql = "jobs/j.sql"\noutput = "curated.j"\n')
    project = Project.open(tmp_project.root)
    assert with_engine(project, "j", "spark").settings.jobs["j"].engine == "spark"
    assert project.settings.jobs["j"].engine == "duckdb"
    with pytest.raises(ConfigError, match="use one of duckdb, spark"):
        with_engine(project, "j", "flink")


def test_a_job_of_steps_only_stays_on_duckdb(tmp_project: Project) -> None:
    with (tmp_project.root / "lakelet.toml").open("a") as f:
        f.write(
            '\n[jobs.j]\noutput = "curated.j"\nengine = "spark"\n'
            '[[jobs.j.steps]]\npython = "steps:make"\n'
        )
    with pytest.raises(JobRunFailed) as failed:
        run_job(Project.open(tmp_project.root), "j")
    assert isinstance(failed.value.__cause__, ConfigError)
    assert "a job of steps only runs on the DuckDB engine" in str(failed.value)


def test_missing_java_names_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SparkSetupError, match="apt-get install default-jre-headless"):
        java_binary()


def test_missing_jarjar_or_driver_names_the_package(tmp_path: Path) -> None:
    fake_pyspark = tmp_path / "jars"
    fake_pyspark.mkdir()
    for artifact in ("jackson-core", "jackson-databind", "jackson-annotations"):
        (fake_pyspark / f"{artifact}-2.15.2.jar").write_bytes(b"")
    empty = tmp_path / "java"
    empty.mkdir()
    with pytest.raises(SparkSetupError, match="apt-get install libjarjar-java libasm-java"):
        iceberg_runtime_jar(tmp_path / "cache", java_dirs=[empty], pyspark_jars=fake_pyspark)
    with pytest.raises(SparkSetupError, match="apt-get install libxerial-sqlite-jdbc-java"):
        jdbc_driver_jar("sqlite", java_dirs=[empty])


# --- on Spark ----------------------------------------------------------------------


def _has_java() -> bool:
    home = os.environ.get("JAVA_HOME")
    return (
        bool(home and (Path(home) / "bin" / "java").is_file()) or shutil.which("java") is not None
    )


def _project(root: Path) -> Project:
    project = init_project(root)
    project.store.put("raw", "sales/part-0.csv", SALES_CSV)
    project.catalog.write(TableName("curated", "prices"), PRICES, "overwrite")
    (project.root / "jobs" / "revenue.sql").write_text(JOB_SQL)
    with (project.root / "lakelet.toml").open("a") as f:
        f.write('\n[crawlers.sales]\npath = "raw/sales/"\ndatabase = "raw"\n')
        for name, engine in (("on_duckdb", "duckdb"), ("on_spark", "spark")):
            f.write(
                f'\n[jobs.{name}]\nsql = "jobs/revenue.sql"\noutput = "curated.{name}"\n'
                f'engine = "{engine}"\n'
            )
    project = Project.open(project.root)
    run_crawler(project, "sales", crawler_spec(project, "sales"))
    return project


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One local SparkSession for the module, started the way the engine starts it."""
    if not _has_java():
        pytest.skip(
            "Java is not installed: apt-get install default-jre-headless (make system-deps)"
        )
    from lakelet.jobs.engines.spark import spark_session

    session = spark_session(_project(tmp_path_factory.mktemp("spark") / "boot"))
    yield session
    session.stop()


def _sorted(table: pa.Table) -> list[dict[str, Any]]:
    return sorted(table.to_pylist(), key=lambda r: json.dumps(r, default=str))


@pytest.mark.slow
@pytest.mark.integration
def test_spark_gives_the_rows_duckdb_gives(spark: Any, tmp_path: Path) -> None:
    project = _project(tmp_path / "p")
    on_duckdb = run_job(project, "on_duckdb", {"min_qty": "1"})
    on_spark = run_job(project, "on_spark", {"min_qty": "1"})
    duck_rows = query(project, "SELECT * FROM curated.on_duckdb")
    spark_rows = query(project, "SELECT * FROM curated.on_spark")  # readable after Spark
    assert spark_rows.num_rows == 9  # 3 machines x 3 products
    assert _sorted(spark_rows) == _sorted(duck_rows)
    assert spark_rows.schema.names == duck_rows.schema.names

    stored = RunStore(project.metadata).get(on_spark.run_id)
    assert (stored.engine, stored.status) == ("spark", "succeeded")
    assert RunStore(project.metadata).get(on_duckdb.run_id).engine == "duckdb"
    # Same accounting: 9 rows read, the bad one rejected with its file and line.
    assert (stored.rows_read, stored.rows_rejected) == (on_duckdb.rows_read, 1)
    assert [(r.file, r.line) for r in on_spark.rejects] == [
        (r.file, r.line) for r in on_duckdb.rejects
    ]
    prices = TableName("curated", "prices")
    assert on_spark.snapshots_read["curated.prices"] == project.catalog.current_snapshot_id(prices)
    assert stored.snapshot_written == project.catalog.current_snapshot_id(
        TableName("curated", "on_spark")
    )


@pytest.mark.slow
@pytest.mark.integration
def test_engines_take_turns_on_one_table_from_the_cli(
    spark: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = _project(tmp_path / "p")
    root = str(project.root)
    args = ["--project", root, "run", "on_duckdb", "-p", "min_qty=2", "--format", "json"]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert main([*args, "--engine", "spark"]) == 0  # overwrite the DuckDB-made table
    second = json.loads(capsys.readouterr().out)
    assert (first["engine"], second["engine"]) == ("duckdb", "spark")
    assert second["rows_written"] == first["rows_written"] == 8
    rows = query(project, "SELECT * FROM curated.on_duckdb")
    expected = query(
        project,
        "SELECT s.machine, p.product, sum(s.qty) AS units FROM raw.sales s "
        "JOIN curated.prices p USING (product) WHERE s.qty >= 2 GROUP BY ALL",
    )
    assert _sorted(rows.select(["machine", "product", "units"])) == _sorted(expected)
    assert main(["--project", root, "run", "on_duckdb", "--engine", "flink"]) == 2


@pytest.mark.slow
@pytest.mark.integration
def test_a_spark_sql_error_fails_the_run_and_writes_nothing(spark: Any, tmp_path: Path) -> None:
    project = _project(tmp_path / "p")
    (project.root / "jobs" / "revenue.sql").write_text("SELECT nope FROM curated.prices")
    project = Project.open(project.root)
    with pytest.raises(JobRunFailed) as failed:
        run_job(project, "on_spark")
    assert isinstance(failed.value.__cause__, SqlError)
    assert failed.value.exit_code == 2
    assert "on Spark" in str(failed.value) and "nope" in str(failed.value)
    assert failed.value.record.engine == "spark"
    assert project.catalog.kind(TableName("curated", "on_spark")) is None


def _add_job(
    project: Project, name: str, sql: str, extra: str = "", engine: str = "spark"
) -> Project:
    (project.root / "jobs" / f"{name}.sql").write_text(sql)
    with (project.root / "lakelet.toml").open("a") as f:
        f.write(
            f'\n[jobs.{name}]\nsql = "jobs/{name}.sql"\noutput = "curated.{name}"\n'
            f'engine = "{engine}"\n{extra}\n'
        )
    return Project.open(project.root)


def _multiset(project: Project, sql: str) -> list[tuple[Any, ...]]:
    return sorted(tuple(r.values()) for r in query(project, sql).to_pylist())


@pytest.mark.slow
@pytest.mark.integration
def test_a_bookmarked_raw_job_on_spark_reads_only_new_files(spark: Any, tmp_path: Path) -> None:
    project = _add_job(
        _project(tmp_path / "p"),
        "book",
        "SELECT machine, product, qty, _lakelet_file FROM raw.sales",
        'mode = "append"\nbookmark = true',
    )
    out = "SELECT machine, product, qty FROM curated.book"
    everything = "SELECT machine, product, qty FROM raw.sales"
    first = run_job(project, "book")
    assert (first.engine, first.rows_written, first.rows_rejected) == ("spark", 20, 1)
    assert _multiset(project, out) == _multiset(project, everything)
    assert run_job(project, "book").rows_read == 0

    project.store.put("raw", "sales/part-0.csv", b"machine,product,qty\nm1,cola,7\nm9,cola,1\n")
    project.store.put("raw", "sales/part-1.csv", b"machine,product,qty\nm4,water,2\n")
    third = run_job(project, "book")
    assert (third.rows_read, third.rows_written) == (3, 3)
    assert _multiset(project, out) == _multiset(project, everything)  # replaced, not added


@pytest.mark.slow
@pytest.mark.integration
def test_spark_reads_new_iceberg_data_and_runs_the_steps(spark: Any, tmp_path: Path) -> None:
    project = _add_job(
        _project(tmp_path / "p"),
        "catalogue",
        "SELECT product, price FROM curated.prices",
        'mode = "append"\nbookmark = true\n[[jobs.catalogue.steps]]\n'
        'builtin = "apply_mapping"\nmapping = { name = "product", cents = "price:INTEGER" }',
    )
    out = "SELECT name, cents FROM curated.catalogue"
    assert run_job(project, "catalogue").rows_written == 3
    assert _multiset(project, out) == [("cola", 2), ("juice", 2), ("water", 1)]
    prices = TableName("curated", "prices")
    project.catalog.write(prices, PRICES.slice(0, 1).set_column(0, "product", [["tea"]]), "append")
    second = run_job(project, "catalogue")
    assert (second.rows_read, second.rows_written) == (1, 1)
    assert second.snapshots_read["curated.prices"] == project.catalog.current_snapshot_id(prices)
    assert _multiset(project, out) == [("cola", 2), ("juice", 2), ("tea", 2), ("water", 1)]


@pytest.mark.slow
@pytest.mark.integration
def test_a_spark_run_past_its_timeout_is_cancelled(spark: Any, tmp_path: Path) -> None:
    project = _project(tmp_path / "p")
    project.catalog.write(TableName("curated", "n"), pa.table({"x": range(20_000)}), "overwrite")
    project = _add_job(
        project,
        "slow",
        "SELECT count(*) AS c FROM curated.n a, curated.n b, curated.n c "
        "WHERE hash(a.x, b.x, c.x) % 7 = 0",
        "timeout = 3",
    )
    started = time.monotonic()
    with pytest.raises(JobRunFailed, match="exceeded its timeout of 3 s") as failed:
        run_job(project, "slow")
    assert time.monotonic() - started < 30  # cancelled, not run for hours
    assert failed.value.record.status == "timeout"
    assert RunStore(project.metadata).get(failed.value.record.run_id).status == "timeout"
    assert project.catalog.kind(TableName("curated", "slow")) is None
    assert run_job(project, "on_spark", {"min_qty": "1"}).status == "succeeded"  # usable again


# --- the staged route: Spark writes the output, pyiceberg commits its files ----------


@pytest.fixture
def no_collect(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any attempt to bring a Spark result to the driver."""
    from lakelet.jobs.engines import spark as engine
    from lakelet.jobs.engines import spark_staging

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the Spark result was collected to the driver")

    monkeypatch.setattr(engine, "to_arrow", refuse)
    monkeypatch.setattr(engine, "collect", refuse)
    monkeypatch.setattr(spark_staging, "to_arrow", refuse)


def _data_files(project: Project, name: str) -> list[str]:
    table = project.catalog.load_iceberg(TableName.parse(name))
    return [task.file.file_path for task in table.scan().plan_files()]


def _leftovers(project: Project, name: str) -> list[str]:
    """Files under the table's folder that no snapshot references (but its metadata)."""
    table = project.catalog.load_iceberg(TableName.parse(name))
    folder = Path(table.location())
    referenced = {str(Path(f)) for f in _data_files(project, name)}
    return sorted(
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.is_file() and "metadata" not in p.parts and str(p) not in referenced
    )


@pytest.mark.slow
@pytest.mark.integration
def test_spark_writes_the_output_itself_and_it_equals_duckdbs(
    spark: Any, tmp_path: Path, no_collect: None
) -> None:
    project = _project(tmp_path / "p")
    on_duckdb = run_job(project, "on_duckdb", {"min_qty": "1"})
    on_spark = run_job(project, "on_spark", {"min_qty": "1"})
    duck_rows = query(project, "SELECT * FROM curated.on_duckdb")
    spark_rows = query(project, "SELECT * FROM curated.on_spark")
    assert spark_rows.num_rows == 9
    assert _sorted(spark_rows) == _sorted(duck_rows)
    assert spark_rows.schema == duck_rows.schema
    assert (on_spark.rows_read, on_spark.rows_rejected) == (on_duckdb.rows_read, 1)
    assert (on_spark.rows_produced, on_spark.rows_written) == (9, 9)
    assert [(r.file, r.line) for r in on_spark.rejects] == [
        (r.file, r.line) for r in on_duckdb.rejects
    ]
    files = _data_files(project, "curated.on_spark")
    location = project.catalog.load_iceberg(TableName("curated", "on_spark")).location()
    assert files and all(f.startswith(f"{location}/data/") for f in files)
    for file in files:  # Spark's own Parquet, microsecond timestamps, no field ids
        metadata = pq.read_metadata(file)
        assert b"org.apache.spark.version" in (metadata.metadata or {})
        assert "parquet-mr" in metadata.created_by
    assert _leftovers(project, "curated.on_spark") == []  # no checksums, no staging
    assert not (Path(location) / "_staging").exists()


@pytest.mark.slow
@pytest.mark.integration
def test_types_and_timestamps_survive_the_staged_write(
    spark: Any, tmp_path: Path, no_collect: None
) -> None:
    sql = (
        "SELECT machine, qty::TINYINT AS small, qty * 1.5::DOUBLE AS half, "
        "CAST('2026-11-27 1' || qty || ':30:00.25' AS TIMESTAMP) AS at_local, "
        "TIMESTAMPTZ '2026-11-27 10:30:00+00' AS at_utc, DATE '1500-01-01' AS old, "
        "[qty, qty + 1] AS pair, {'m': machine, 'q': qty} AS nested FROM raw.sales"
    )
    project = _add_job(_project(tmp_path / "p"), "typed", sql)
    project = _add_job(project, "typed_duckdb", sql, engine="duckdb")
    run_job(project, "typed")
    run_job(project, "typed_duckdb")
    rows = query(project, "SELECT * FROM curated.typed")
    expected = query(project, "SELECT * FROM curated.typed_duckdb")
    assert rows.num_rows == 20
    assert rows.schema == expected.schema
    assert _sorted(rows) == _sorted(expected)
    assert str(rows.schema.field("at_local").type) == "timestamp[us]"  # not made UTC


@pytest.mark.slow
@pytest.mark.integration
def test_a_partitioned_output_gets_one_partition_value_per_file(
    spark: Any, tmp_path: Path, no_collect: None
) -> None:
    from pyiceberg.transforms import DayTransform, IdentityTransform, TruncateTransform

    project = _project(tmp_path / "p")
    events = pa.table(
        {
            "kind": ["a", "b", None, "a", "b", "a"] * 5,
            "seen": pa.array(
                [
                    None if i % 7 == 0 else 1_795_000_000_000_000 + i * 9_000_000_000
                    for i in range(30)
                ],
                pa.timestamp("us", tz="UTC"),
            ),
            "n": list(range(30)),
        }
    )
    project.catalog.write(TableName("curated", "events"), events, "overwrite")
    sql = "SELECT kind, seen, n FROM curated.events"
    project = _add_job(project, "parted", sql, 'mode = "append"')
    table = project.catalog.iceberg.create_table(
        ("curated", "parted"),
        schema=events.schema,
        location=project.store.url("curated", "parted"),
    )
    with table.update_spec() as spec:
        spec.add_field("kind", IdentityTransform(), "kind")
        spec.add_field("seen", DayTransform(), "seen_day")
        spec.add_field("n", TruncateTransform(10), "n_trunc")
    run_job(project, "parted")
    assert _sorted(query(project, "SELECT * FROM curated.parted")) == _sorted(query(project, sql))
    table = project.catalog.load_iceberg(TableName("curated", "parted"))
    tasks = list(table.scan().plan_files())
    partitions = set()
    for task in tasks:
        kind, day, tens = task.file.partition[0], task.file.partition[1], task.file.partition[2]
        rows = pq.read_table(task.file.file_path).to_pylist()
        for row in rows:  # every row of the file is in the file's partition
            row_day = None if row["seen"] is None else int(row["seen"].timestamp() // 86400)
            assert (row["kind"], row_day, row["n"] - row["n"] % 10) == (kind, day, tens)
        partitions.add((kind, day, tens))
    assert len(partitions) == len(tasks)  # one file per partition (hash distribution)
    assert any(k is None for k, _, _ in partitions) and any(d is None for _, d, _ in partitions)


@pytest.mark.slow
@pytest.mark.integration
def test_a_column_iceberg_stores_escaped_is_collected_and_written_by_pyiceberg(
    spark: Any, tmp_path: Path
) -> None:
    sql = "SELECT machine, count(*) FROM raw.sales GROUP BY machine"  # Spark: count(1)
    project = _add_job(_project(tmp_path / "p"), "counted", sql)
    assert run_job(project, "counted").rows_written == 3
    rows = query(project, "SELECT * FROM curated.counted")
    assert rows.schema.names == ["machine", "count(1)"]
    assert _multiset(project, "SELECT * FROM curated.counted") == _multiset(project, sql)


@pytest.mark.slow
@pytest.mark.integration
def test_a_failure_during_the_write_leaves_the_table_and_the_folder_clean(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = _add_job(
        _project(tmp_path / "p"), "fragile", "SELECT * FROM raw.sales", 'mode = "append"'
    )
    first = run_job(project, "fragile")
    output = TableName("curated", "fragile")
    before = project.catalog.current_snapshot_id(output)
    # A row fails while Spark writes: Spark's error, as a SqlError, nothing committed.
    (project.root / "jobs" / "fragile.sql").write_text(
        "SELECT machine, CASE WHEN qty > 4 THEN CAST(raise_error('boom') AS VARCHAR) "
        "ELSE product END AS product, qty FROM raw.sales"
    )
    project = Project.open(project.root)
    with pytest.raises(JobRunFailed) as failed:
        run_job(project, "fragile")
    assert isinstance(failed.value.__cause__, SqlError)
    assert "boom" in str(failed.value) and "Py4J" not in str(failed.value)
    assert project.catalog.current_snapshot_id(output) == before
    assert _leftovers(project, "curated.fragile") == []

    # The files are written, then the commit fails: they go too.
    from lakelet.catalog import bulk

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("catalog went away")

    (project.root / "jobs" / "fragile.sql").write_text("SELECT * FROM raw.sales")
    monkeypatch.setattr(bulk, "_commit", broken)
    with pytest.raises(JobRunFailed, match="catalog went away"):
        run_job(project, "fragile")
    assert project.catalog.current_snapshot_id(output) == before
    assert _leftovers(project, "curated.fragile") == []
    assert query(project, "SELECT count(*) AS n FROM curated.fragile")["n"][0].as_py() == (
        first.rows_written
    )


@pytest.mark.slow
@pytest.mark.integration
def test_a_staged_bookmarked_job_commits_its_bookmark_and_reads_nothing_new_again(
    spark: Any, tmp_path: Path, no_collect: None
) -> None:
    project = _add_job(
        _project(tmp_path / "p"),
        "book",
        "SELECT machine, product, qty, _lakelet_file FROM raw.sales",
        'mode = "append"\nbookmark = true',
    )
    output = TableName("curated", "book")
    first = run_job(project, "book")
    assert (first.rows_read, first.rows_written, first.rows_rejected) == (21, 20, 1)
    snapshot = project.catalog.current_snapshot_id(output)
    again = run_job(project, "book")
    assert (again.rows_read, again.rows_written) == (0, 0)
    assert _multiset(project, "SELECT count(*) FROM curated.book") == [(20,)]
    project.store.put("raw", "sales/part-1.csv", b"machine,product,qty\nm4,water,2\n")
    third = run_job(project, "book")
    assert (third.rows_read, third.rows_written) == (1, 1)
    assert project.catalog.current_snapshot_id(output) != snapshot
    out = "SELECT machine, product, qty FROM curated.book"
    assert _multiset(project, out) == _multiset(
        project, "SELECT machine, product, qty FROM raw.sales"
    )


@pytest.mark.slow
@pytest.mark.integration
def test_a_job_with_rules_still_collects_and_maps_spark_runtime_errors(
    spark: Any, tmp_path: Path
) -> None:
    project = _add_job(
        _project(tmp_path / "p"),
        "ruled",
        "SELECT machine, CAST(raise_error('bad row') AS VARCHAR) AS product FROM raw.sales",
        "[[jobs.ruled.quality]]\nrule = 'IsComplete \"machine\"'",
    )
    with pytest.raises(JobRunFailed) as failed:
        run_job(project, "ruled")
    assert isinstance(failed.value.__cause__, SqlError)
    assert "bad row" in str(failed.value) and "Py4J" not in str(failed.value)
    assert failed.value.exit_code == 2
    (project.root / "jobs" / "ruled.sql").write_text("SELECT machine, qty FROM raw.sales")
    record = run_job(Project.open(project.root), "ruled")
    assert (record.rows_written, record.quality[0].passed) == (20, True)


@pytest.mark.slow
@pytest.mark.integration
def test_partition_keys_group_values_as_iceberg_transforms_do(spark: Any) -> None:
    from pyiceberg import transforms, types

    from lakelet.jobs.engines.spark_partitions import transform_keys

    session = spark.newSession()
    session.conf.set("spark.sql.session.timeZone", "America/St_Johns")  # UTC-3:30, DST
    start = datetime(1969, 12, 30, 22, tzinfo=UTC)
    instants = [start + timedelta(minutes=23 * i) for i in range(300)]  # hours share values
    instants += [
        datetime(2026, 3, 8, 5, 30, tzinfo=UTC),
        datetime(2026, 12, 31, 23, 59, tzinfo=UTC),
    ]
    values: dict[Any, list[Any]] = {
        types.TimestamptzType(): instants,
        types.TimestampType(): [i.replace(tzinfo=None) for i in instants],
        types.DateType(): sorted({i.date() for i in instants} | {date(1969, 1, 1)}),
    }
    hour: Any = transforms.HourTransform()
    checked: list[Any] = [
        transforms.YearTransform(),
        transforms.MonthTransform(),
        transforms.DayTransform(),
    ]
    assert transform_keys(hour, types.DateType(), "`v`") is None
    for source_type, column in values.items():
        timed = not isinstance(source_type, types.DateType)
        cases = [*checked, hour] if timed else checked
        keys = [transform_keys(t, source_type, "`v`") for t in cases]
        literals = ", ".join(f"({_spark_literal(v)})" for v in column)
        frame = session.sql(f"SELECT * FROM VALUES {literals} AS t(v)")  # no Python worker
        selected = [k for ks in keys for k in ks or []]
        rows = [tuple(r) for r in frame.selectExpr(*selected).collect()]  # one Spark job
        at = 0
        for transform, key in zip(cases, keys, strict=True):
            assert key is not None
            got = [row[at : at + len(key)] for row in rows]
            at += len(key)
            iceberg = transform.transform(source_type)
            want = [iceberg(_iceberg_value(v, source_type)) for v in column]
            # The keys tell values apart exactly when the transform does.
            pairs = list(zip(got, want, strict=True))
            distinct = (len({g for g, _ in pairs}), len({w for _, w in pairs}), len(set(pairs)))
            assert len(set(distinct)) == 1, (transform, source_type, distinct)


def _spark_literal(value: Any) -> str:
    """A Spark SQL literal for a date, an aware (UTC) or a naive timestamp."""
    if not isinstance(value, datetime):
        return f"date_from_unix_date({(value - date(1970, 1, 1)).days})"
    if value.tzinfo is not None:
        return f"timestamp_micros({int((value - datetime(1970, 1, 1, tzinfo=UTC)) / _MICRO)})"
    fields = value.year, value.month, value.day, value.hour, value.minute, value.second
    return f"make_timestamp_ntz({', '.join(map(str, fields))})"


_MICRO = timedelta(microseconds=1)


def _iceberg_value(value: Any, source_type: Any) -> int:
    """Iceberg's physical value: days for a date, microseconds for a timestamp."""
    from pyiceberg import types

    if isinstance(source_type, types.DateType):
        return int((value - date(1970, 1, 1)).days)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int((value - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() * 1_000_000)


def test_bucket_and_void_partitions_are_not_staged() -> None:
    from pyiceberg import transforms, types

    from lakelet.jobs.engines.spark_partitions import transform_keys

    long = types.LongType()
    assert transform_keys(transforms.BucketTransform(8), long, "`v`") is None
    assert transform_keys(transforms.VoidTransform(), long, "`v`") is None
    assert transform_keys(transforms.IdentityTransform(), long, "`v`") == ["`v`"]
    assert transform_keys(transforms.TruncateTransform(10), long, "`v`") == ["`v` - pmod(`v`, 10)"]
    assert transform_keys(transforms.TruncateTransform(3), types.StringType(), "`v`") == [
        "substring(`v`, 1, 3)"
    ]
    assert transform_keys(transforms.TruncateTransform(50), types.DecimalType(9, 2), "`v`") == [
        "`v` - pmod(`v`, CAST('0.50' AS DECIMAL(38, 2)))"
    ]
    assert transform_keys(transforms.TruncateTransform(3), types.DoubleType(), "`v`") is None


def test_staged_inputs_take_the_types_the_arrow_hand_over_gave() -> None:
    import duckdb

    from lakelet.jobs.engines.spark_inputs import spark_columns

    con = duckdb.connect()
    relation = con.sql(
        "SELECT 1::HUGEINT AS h, uuid() AS u, '{}'::JSON AS j, now()::TIMESTAMP_NS AS ns, "
        "[1::HUGEINT] AS l, {'a': uuid()} AS st, MAP {'k': 1::HUGEINT} AS m, 1 AS plain, "
        "now()::TIMESTAMPTZ AS tz"
    )
    assert spark_columns(relation.columns, relation.types) == (
        'CAST("h" AS DECIMAL(38,0)) AS "h", CAST("u" AS VARCHAR) AS "u", '
        'CAST("j" AS VARCHAR) AS "j", CAST("ns" AS TIMESTAMP) AS "ns", '
        'CAST("l" AS DECIMAL(38,0)[]) AS "l", CAST("st" AS STRUCT("a" VARCHAR)) AS "st", '
        'CAST("m" AS MAP(VARCHAR, DECIMAL(38,0))) AS "m", "plain", "tz"'
    )


def test_only_spark_jobs_with_nothing_to_check_take_the_staged_route(
    tmp_project: Project,
) -> None:
    from lakelet.jobs.engines.spark_staging import can_stage
    from lakelet.jobs.spec import job_spec

    (tmp_project.root / "jobs" / "j.sql").write_text("SELECT 1 AS x")
    with (tmp_project.root / "lakelet.toml").open("a") as f:
        for name, extra in (
            ("plain", ""),
            ("ruled", "[[jobs.ruled.quality]]\nrule = 'IsComplete \"x\"'"),
            ("stepped", '[[jobs.stepped.steps]]\nbuiltin = "dedupe"\nkeys = ["x"]'),
            ("guarded", ""),
        ):
            f.write(
                f'\n[jobs.{name}]\nsql = "jobs/j.sql"\noutput = "curated.{name}"\n'
                f'engine = "spark"\n{extra}\n'
            )
        f.write('\n[[tables."curated.guarded".quality]]\nrule = "RowCount > 0"\n')
    project = Project.open(tmp_project.root)
    staged = {n: can_stage(project, job_spec(project, n)) for n in project.settings.jobs}
    assert staged == {"plain": True, "ruled": False, "stepped": False, "guarded": False}
    on_duckdb = with_engine(project, "plain", "duckdb")
    assert not can_stage(on_duckdb, job_spec(on_duckdb, "plain"))


def test_staged_files_keeps_spark_data_files_only(tmp_path: Path) -> None:
    from lakelet.jobs.engines.spark_staging import staged_files

    folder = tmp_path / "data" / "run"
    (folder / "k=a").mkdir(parents=True)
    pq.write_table(pa.table({"x": [1, 2]}), folder / "k=a" / "part-00000-x.snappy.parquet")
    pq.write_table(pa.table({"x": pa.array([], pa.int64())}), folder / "part-00001-x.parquet")
    (folder / "k=a" / ".part-00000-x.snappy.parquet.crc").write_bytes(b"crc")
    (folder / "_SUCCESS").write_bytes(b"")
    files, rows = staged_files(folder, "file:///lake/t/data/run")
    assert (files, rows) == (["file:///lake/t/data/run/k=a/part-00000-x.snappy.parquet"], 2)
    assert sorted(p.name for p in folder.rglob("*") if p.is_file()) == [
        "part-00000-x.snappy.parquet"
    ]
