"""Ingest benchmark (issue 4, item 9): raw CSV → curated table, side by side.

One TPC-H ``lineitem`` CSV (scale factor 1 ≈ 766 MB, 6 M rows; generated once by
``tpchgen-cli`` into the repository's git-ignored ``.cache/bench/``) is loaded by:

* DuckDB: ``COPY (SELECT * FROM read_csv(...)) TO ... (FORMAT parquet)``;
* dlt: its Arrow path (pyarrow record batches) into a DuckDB database;
* Spark local mode (``local[2]``): CSV with schema inference → Parquet, on a session
  started once (its start-up is reported apart);
* Lakelet: a crawl (inference and statistics) and a job ``SELECT * FROM raw.lineitem``
  into the Iceberg table ``curated.lineitem`` through the job runner (``run_job``):
  pyarrow reads the CSV (every value checked, see
  :mod:`lakelet.catalog.rawscan.arrowcsv`) and parallel writers write Parquet, one
  commit adds the files; and the same with the checked DuckDB scan, which files the
  Arrow read refuses take (shown, not a goal).

The contenders run interleaved, ``LAKELET_BENCH_REPEAT`` times (default 3), in an order
rotated each round and reversed every other round (rotation alone keeps each contender
behind the same one: Lakelet always ran after Spark), each once the CPUs are idle (at
most 15 s of waiting: Spark's JVM works on for seconds after its job, which the next
contender paid for) and with the CSV read once into the page cache (the kernel here pages
out what stays cold); medians are reported, since these machines are shared and noisy. Then the
PostgreSQL load: ``lakelet load`` of the first ``LAKELET_BENCH_PG_ROWS`` rows (default
1 M) from Iceberg into a real PostgreSQL server, against a raw psycopg ``COPY`` of the
same rows from their CSV text.

Run from the repository root: ``.venv/bin/python benchmarks/ingest.py``;
``LAKELET_BENCH_SF=0.1`` for a quick run. ``benchmarks/run.py`` includes it.
"""

from __future__ import annotations

import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / ".cache" / "bench"
PG_SUPPORT = REPO / "tests" / "support"
JOB_SQL = "SELECT * FROM raw.lineitem\n"
# (contender it is compared with, goal: that contender's seconds / Lakelet's seconds)
LAKELET = "Lakelet crawl + job"
LAKELET_CHECKED = "Lakelet crawl + job, checked scan"
GOALS = {"duckdb COPY → Parquet": 1.0, "dlt Arrow → DuckDB": 1.5, "Spark local → Parquet": 3.0}
PG_GOAL = 0.8
PG_RAW = "psycopg COPY (CSV text)"
PG_OURS = "lakelet load (Iceberg → PG)"

Row = tuple[str, float, str]
Contender = Callable[[Path, Path], dict[str, float]]
"""Loads a CSV (first argument) using a scratch folder (second): its phases' seconds."""


@dataclass
class Timings:
    """Wall seconds of each run of each contender, and the phases some report."""

    runs: dict[str, list[float]] = field(default_factory=dict)
    phases: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    rows: int = 0

    def add(self, name: str, seconds: float, phases: dict[str, float] | None = None) -> None:
        self.runs.setdefault(name, []).append(seconds)
        for phase, value in (phases or {}).items():
            self.phases.setdefault(name, {}).setdefault(phase, []).append(value)

    def median(self, name: str) -> float:
        return statistics.median(self.runs[name])


# --- the data ----------------------------------------------------------------------------


def scale_factor() -> str:
    return os.environ.get("LAKELET_BENCH_SF", "1")


def lineitem_csv(sf: str) -> Path:
    """TPC-H lineitem at scale ``sf`` as CSV with a header, generated once and cached."""
    target = CACHE / f"sf{sf}" / "lineitem.csv"
    if target.is_file():
        return target
    tool = Path(sys.executable).parent / "tpchgen-cli"
    command = [str(tool if tool.exists() else "tpchgen-cli"), "csv", "--scale-factor", sf]
    command += ["--tables", "lineitem", "--output-dir", str(target.parent), "--quiet"]
    subprocess.run(command, check=True)
    if not target.is_file():
        raise RuntimeError(f"tpchgen-cli wrote no {target}")
    return target


def _place(csv: Path, folder: Path) -> Path:
    """The CSV inside a lake folder: a hard link (no copy) where the disk allows it."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / csv.name
    try:
        os.link(csv, target)
    except OSError:
        shutil.copyfile(csv, target)
    return target


# --- contenders --------------------------------------------------------------------------


def run_duckdb(csv: Path, work: Path) -> dict[str, float]:
    import duckdb

    out = work / "duckdb.parquet"
    with duckdb.connect() as con:
        con.execute(f"COPY (SELECT * FROM read_csv('{csv}')) TO '{out}' (FORMAT parquet)")
    return {}


def run_dlt(csv: Path, work: Path) -> dict[str, float]:
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    import dlt
    import pyarrow.csv as pacsv

    @dlt.resource(name="lineitem", write_disposition="replace")
    def batches() -> Any:
        reader = pacsv.open_csv(csv, read_options=pacsv.ReadOptions(block_size=16 << 20))
        yield from reader

    pipeline = dlt.pipeline(
        pipeline_name="lakelet_bench",
        destination=dlt.destinations.duckdb(str(work / "dlt.duckdb")),
        dataset_name="bench",
        pipelines_dir=str(work / "dlt-pipelines"),
    )
    info = pipeline.run(batches())
    if info.has_failed_jobs:
        raise RuntimeError(f"dlt load failed: {info}")
    return {}


def spark_session() -> Any:
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("lakelet-bench")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.driver.memory", "2g")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    return session


def run_spark(spark: Any, csv: Path, work: Path) -> dict[str, float]:
    frame = spark.read.option("header", "true").option("inferSchema", "true").csv(str(csv))
    frame.write.mode("overwrite").parquet(str(work / "spark"))
    return {}


def _lakelet_project(csv: Path, work: Path) -> Any:
    from lakelet.project import Project, init_project

    project = init_project(work / "lakelet")
    _place(csv, Path(project.store.root) / "raw" / "lineitem")
    (project.root / "jobs" / "lineitem.sql").write_text(JOB_SQL, encoding="utf-8")
    with (project.root / "lakelet.toml").open("a", encoding="utf-8") as config:
        config.write(
            '\n[crawlers.lineitem]\npath = "raw/lineitem/"\ndatabase = "raw"\n'
            '\n[jobs.lineitem]\nsql = "jobs/lineitem.sql"\noutput = "curated.lineitem"\n'
        )
    return Project.open(project.root)


def _crawl(project: Any) -> float:
    from lakelet.crawler import crawler_spec, run_crawler

    started = time.perf_counter()
    run_crawler(project, "lineitem", crawler_spec(project, "lineitem"))
    return time.perf_counter() - started


def run_lakelet_job(csv: Path, work: Path, *, arrow: bool = True) -> dict[str, float]:
    """Crawl, then ``run_job``: what ``lakelet crawl`` and ``lakelet run`` do. The job is
    ``SELECT *``: pyarrow reads the CSV and parallel writers write Parquet; with
    ``arrow=False`` the checked scan runs instead, as for files the Arrow read refuses
    (a bad row, a format only DuckDB converts)."""
    from lakelet.catalog.rawscan import arrowcsv
    from lakelet.jobs.runner import run_job

    project = _lakelet_project(csv, work)
    crawl = _crawl(project)
    original = arrowcsv.plan_arrow_read
    if not arrow:
        arrowcsv.plan_arrow_read = lambda *args, **kwargs: "turned off for the benchmark"
    started = time.perf_counter()
    try:
        with _refusals() as refused:
            record = run_job(project, "lineitem")
    finally:
        arrowcsv.plan_arrow_read = original
    if arrow and refused:
        raise RuntimeError(f"the Arrow read was refused: {refused}")
    if record.rows_written is None or record.rows_read != record.rows_written:
        raise RuntimeError(f"lakelet job: {record.rows_read} read, {record.rows_written} written")
    return {"crawl": crawl, "job": time.perf_counter() - started}


@contextmanager
def _refusals() -> Iterator[list[str]]:
    """Why the runs inside refused the Arrow read (the streaming module logs it)."""
    found: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            found.append(record.getMessage())

    logger = logging.getLogger("lakelet.jobs.streaming")
    handler, level = Collect(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield found
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


# --- running them --------------------------------------------------------------------------


def _timed(fn: Callable[[], dict[str, float]]) -> tuple[float, dict[str, float]]:
    started = time.perf_counter()
    phases = fn()
    return time.perf_counter() - started, phases


def bench_contenders(csv: Path, work: Path, repeat: int) -> Timings:
    timings = Timings()
    spark_started = time.perf_counter()
    spark = spark_session()
    timings.notes["Spark local → Parquet"] = (
        f"session start {time.perf_counter() - spark_started:.1f} s not included"
    )
    contenders: list[tuple[str, Contender]] = [
        ("duckdb COPY → Parquet", run_duckdb),
        ("dlt Arrow → DuckDB", run_dlt),
        ("Spark local → Parquet", lambda c, w: run_spark(spark, c, w)),
        (LAKELET, run_lakelet_job),
        (LAKELET_CHECKED, lambda c, w: run_lakelet_job(c, w, arrow=False)),
    ]
    _warm_up(csv, work, contenders)
    try:
        for round_ in range(repeat):
            shift = round_ % len(contenders)
            order = contenders[shift:] + contenders[:shift]
            for name, run in order[::-1] if round_ % 2 else order:
                with tempfile.TemporaryDirectory(dir=work) as folder:
                    read_through(csv)
                    settle()
                    started = time.perf_counter()
                    phases = run(csv, Path(folder))
                    seconds = time.perf_counter() - started
                timings.add(name, seconds, phases)
                print(f"  {name}: {seconds:.2f} s {_phase_text(phases)}", flush=True)
    finally:
        stop_spark(spark)
    return timings


def stop_spark(spark: Any) -> None:
    """Stop the session and its JVM: ``stop()`` alone leaves the JVM running until this
    process exits, a neighbour for the benchmarks that run after this one."""
    from pyspark import SparkContext

    gateway = SparkContext._gateway
    spark.stop()
    if gateway is None:
        return
    gateway.shutdown()
    process = getattr(gateway, "proc", None)
    if process is not None:
        process.kill()
        process.wait()
    SparkContext._gateway = None
    SparkContext._jvm = None


def read_through(path: Path) -> None:
    """Read the file once, unmeasured, so every run starts with it in the page cache:
    this machine's kernel pages out what stays cold (DAMON's ``pageout``), and a run
    after Spark's 40 s would otherwise read from disk what the one before it did not."""
    buffer = bytearray(16 << 20)
    with path.open("rb", buffering=0) as stream:
        while stream.readinto(buffer):
            pass


def settle(idle: float = 0.8, window: float = 0.5, longest: float = 15.0) -> None:
    """Wait until the machine's CPUs are mostly idle (``idle`` of a ``window``), at most
    ``longest`` seconds. Spark's JVM keeps working for seconds after its job returns
    (garbage collection, cleaning up), and the contender run next paid for it: each
    contender starts on a quiet machine, or after the wait."""
    deadline = time.monotonic() + longest
    while time.monotonic() < deadline:
        before = _cpu_times()
        time.sleep(window)
        after = _cpu_times()
        busy, total = after[0] - before[0], after[1] - before[1]
        if total <= 0 or busy / total <= 1 - idle:
            return


def _cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot, from ``/proc/stat`` (Linux)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return 0, 0
    values = [int(v) for v in fields]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return sum(values) - idle, sum(values)


def _warm_up(csv: Path, work: Path, contenders: list[tuple[str, Contender]]) -> None:
    """Run every contender but Spark once on the file's first lines, so imports and
    first-use costs (pyiceberg, dlt, DuckDB's extensions) are not in the first round."""
    small = work / "warm-up" / csv.name
    small.parent.mkdir(parents=True, exist_ok=True)
    with csv.open("rb") as source, small.open("wb") as target:
        for _, line in zip(range(20_000), source, strict=False):
            target.write(line)
    for name, run in contenders:
        if not name.startswith("Spark"):
            with tempfile.TemporaryDirectory(dir=work) as folder:
                run(small, Path(folder))
    shutil.rmtree(small.parent, ignore_errors=True)


def _phase_text(phases: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.2f} s" for k, v in phases.items())


# --- PostgreSQL ----------------------------------------------------------------------------


def bench_postgres(csv: Path, work: Path, rows: int, repeat: int) -> Timings:
    """``lakelet load`` of ``rows`` lineitem rows from Iceberg against psycopg COPY."""
    import duckdb
    import psycopg

    sys.path.insert(0, str(PG_SUPPORT))
    from pgserver import start_postgres, stop_postgres  # type: ignore[import-not-found]

    from lakelet.catalog import TableName
    from lakelet.project import Project, init_project
    from lakelet.warehouse.loading import load_table

    head = work / "pg-rows.csv"
    sample = f"SELECT * FROM read_csv('{csv}') LIMIT {rows}"
    duckdb.execute(f"COPY ({sample}) TO '{head}' (HEADER)")
    server, process = start_postgres()
    timings = Timings()
    try:
        uri = server.create_database("bench")
        project = init_project(work / "pg-project")
        config = project.root / "lakelet.toml"
        text = config.read_text(encoding="utf-8")
        text = text.replace('uri = "duckdb:///.lakelet/warehouse.duckdb"', f'uri = "{uri}"')
        config.write_text(text, encoding="utf-8")
        project = Project.open(project.root)
        source = TableName("curated", "lineitem")
        with duckdb.connect() as con:
            data = con.sql(f"SELECT * FROM read_csv('{head}')").to_arrow_table()
        project.catalog.write(source, data, "overwrite")
        columns = ", ".join(
            f'"{f.name}" {_pg_type(str(t))}'
            for f, t in zip(data.schema, _duck_types(head), strict=True)
        )

        def raw_copy() -> dict[str, float]:
            with psycopg.connect(uri) as conn:
                conn.execute("DROP TABLE IF EXISTS raw_copy")
                conn.execute(f"CREATE TABLE raw_copy ({columns})".encode())
                with (
                    conn.cursor() as cur,
                    cur.copy(b"COPY raw_copy FROM STDIN (FORMAT csv, HEADER true)") as copy,
                    head.open("rb") as stream,
                ):
                    while chunk := stream.read(1 << 20):
                        copy.write(chunk)
            return {}

        def lakelet_load() -> dict[str, float]:
            result = load_table(project, source, "public.lineitem", mode="replace")
            if result.rows_loaded != rows:
                raise RuntimeError(f"lakelet load: {result.rows_loaded} of {rows} rows")
            return {}

        timings.rows = rows = data.num_rows  # a small scale factor has fewer rows
        pair = [(PG_RAW, raw_copy), (PG_OURS, lakelet_load)]
        for round_ in range(repeat):
            for name, fn in pair[round_ % 2 :] + pair[: round_ % 2]:
                settle()
                seconds, _ = _timed(fn)
                timings.add(name, seconds)
                print(f"  {name}: {seconds:.2f} s", flush=True)
    finally:
        stop_postgres(server, process)
    return timings


def _duck_types(csv: Path) -> list[str]:
    import duckdb

    with duckdb.connect() as con:
        relation = con.sql(f"SELECT * FROM read_csv('{csv}') LIMIT 0")
        assert relation is not None
        return [str(t) for t in relation.types]


def _pg_type(duck: str) -> str:
    return {"VARCHAR": "TEXT", "DOUBLE": "DOUBLE PRECISION"}.get(duck, duck)


# --- report --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """One goal of the issue: Lakelet's throughput as a multiple of another's."""

    ours: str
    other: str
    ratio: float
    goal: float

    @property
    def passed(self) -> bool:
        return self.ratio >= self.goal

    def text(self) -> str:
        verdict = "pass" if self.passed else "FAIL"
        return f"{self.ratio:.2f}× (goal ≥ {self.goal:g}×): {verdict}"


def verdicts(timings: Timings, pg: Timings | None) -> list[Verdict]:
    """Each goal's ratio: the median over rounds of the other's seconds over Lakelet's
    in the same round (a round runs the contenders back to back, so a noisy spell on a
    shared machine weighs on both sides of its ratio)."""
    found = []
    for ours in (n for n in timings.runs if n == LAKELET):
        for other, goal in GOALS.items():
            if other in timings.runs:
                found.append(Verdict(ours, other, paired_ratio(timings, other, ours), goal))
    if pg is not None:
        found.append(Verdict(PG_OURS, PG_RAW, paired_ratio(pg, PG_RAW, PG_OURS), PG_GOAL))
    return found


def paired_ratio(timings: Timings, other: str, ours: str) -> float:
    pairs = zip(timings.runs[other], timings.runs[ours], strict=True)
    return statistics.median(theirs / mine for theirs, mine in pairs)


def contender_rows(timings: Timings, megabytes: float) -> list[tuple[str, float, str]]:
    """(contender, median seconds, MB/s and phases)."""
    rows = []
    for name in timings.runs:
        seconds = timings.median(name)
        phases = {p: statistics.median(v) for p, v in timings.phases.get(name, {}).items()}
        notes = [f"{megabytes / seconds:.0f} MB/s", _phase_text(phases), timings.notes.get(name)]
        rows.append((name, seconds, "; ".join(n for n in notes if n)))
    return rows


def bench_ingest(workdir: Path) -> list[Row]:
    """Every ingest figure, for ``benchmarks/run.py``: (label, seconds, notes)."""
    timings, pg, megabytes, title = _measure(workdir)
    rows: list[Row] = [
        (f"ingest: {name}", seconds, f"{title}; {notes}")
        for name, seconds, notes in contender_rows(timings, megabytes)
    ]
    if pg is not None:
        rows += [(f"ingest: {name}", pg.median(name), "PostgreSQL") for name in pg.runs]
    rows += [
        (f"ingest goal: {v.ours} vs {v.other}", float("nan"), v.text())
        for v in verdicts(timings, pg)
    ]
    return rows


def _measure(workdir: Path) -> tuple[Timings, Timings | None, float, str]:
    sf = scale_factor()
    csv = lineitem_csv(sf)
    megabytes = csv.stat().st_size / 1e6
    repeat = int(os.environ.get("LAKELET_BENCH_REPEAT", "3"))
    pg_rows = int(os.environ.get("LAKELET_BENCH_PG_ROWS", "1000000"))
    title = f"TPC-H SF{sf} lineitem CSV, {megabytes:.0f} MB, median of {repeat}"
    print(f"ingest benchmark: {title}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="ingest-", dir=workdir))
    try:
        timings = bench_contenders(csv, work, repeat)
        pg = bench_postgres(csv, work, pg_rows, repeat) if pg_rows > 0 else None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return timings, pg, megabytes, title


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="lakelet-bench-ingest-") as tmp:
        timings, pg, megabytes, title = _measure(Path(tmp))
    console = Console(width=120)
    table = Table(title=f"Lakelet ingest benchmark: {title}", title_justify="left")
    table.add_column("contender")
    table.add_column("median s", justify="right")
    table.add_column("MB/s; phases (median s)")
    for name, seconds, notes in contender_rows(timings, megabytes):
        table.add_row(name, f"{seconds:.2f}", notes)
    if pg is not None:
        for name in pg.runs:
            table.add_row(name, f"{pg.median(name):.2f}", f"PostgreSQL, {pg.rows:,} rows")
    console.print(table)
    goals = Table(
        title="Goals: the other's seconds / Lakelet's (median of the rounds' ratios)",
        title_justify="left",
    )
    for column in ("Lakelet", "against", "ratio", "goal", "verdict"):
        goals.add_column(column, justify="right" if column in ("ratio", "goal") else "left")
    for v in verdicts(timings, pg):
        verdict = "pass" if v.passed else "FAIL"
        goals.add_row(v.ours, v.other, f"{v.ratio:.2f}×", f"≥ {v.goal:g}×", verdict)
    console.print(goals)


if __name__ == "__main__":
    main()
