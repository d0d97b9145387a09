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
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
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


def _add_job(project: Project, name: str, sql: str, extra: str = "") -> Project:
    (project.root / "jobs" / f"{name}.sql").write_text(sql)
    with (project.root / "lakelet.toml").open("a") as f:
        f.write(
            f'\n[jobs.{name}]\nsql = "jobs/{name}.sql"\noutput = "curated.{name}"\n'
            f'engine = "spark"\n{extra}\n'
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
