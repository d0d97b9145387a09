"""Lakelet benchmarks (`make bench`): numbers the issues name, printed as a table.

* pipeline — the reference scenario end to end at the demo's default size, per step;
  issue 2 asks for the whole demo in under a minute on 2 cores.
* iceberg read — an aggregation over an Iceberg table through the data files the
  snapshot plans (what the SQL surface does) against materialising the pyiceberg scan.
* crawl — issue 3's crawler figures (``benchmarks/crawl.py``).
* ingest — issue 4's: raw CSV → curated Iceberg table against DuckDB, dlt and Spark,
  and the PostgreSQL load against psycopg's COPY (``benchmarks/ingest.py``; TPC-H
  scale ``LAKELET_BENCH_SF``, default 1).
* functions — issue 5's: cold starts (fork from the zygote) against a fresh interpreter,
  warm overhead, a burst at 10× the concurrency limit (``benchmarks/functions.py``), and
  the gateway's throughput against a bare Starlette app (``benchmarks/gateway.py``).

Run from the repository root: ``.venv/bin/python benchmarks/run.py [--rows N]``.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

DEMO_BUDGET_S = 60.0


def bench_pipeline(workdir: Path) -> list[tuple[str, float, str]]:
    from lakelet.demo.scenario import DemoOptions, run_scenario

    started = time.perf_counter()
    result = run_scenario(workdir / "demo", DemoOptions())
    total = time.perf_counter() - started
    rows = [(f"demo: {s.name}", s.seconds, s.detail) for s in result.steps]
    verdict = "ok" if total < DEMO_BUDGET_S else "OVER BUDGET"
    rows.append(("demo: total", total, f"budget {DEMO_BUDGET_S:.0f} s: {verdict}"))
    return rows


def bench_iceberg_read(workdir: Path, n_rows: int) -> list[tuple[str, float, str]]:
    import duckdb
    import pyarrow as pa
    import pyarrow.compute as pc

    from lakelet.catalog import TableName
    from lakelet.jobs import query
    from lakelet.project import init_project

    project = init_project(workdir / "iceberg")
    name = TableName("curated", "events")
    ids = pa.array(range(n_rows), pa.int64())
    table = pa.table(
        {
            "id": ids,
            "machine": pc.cast(pc.bit_wise_and(ids, pa.scalar(255, pa.int64())), pa.string()),
            "amount": pc.multiply(pc.cast(pc.bit_wise_and(ids, 1023), pa.float64()), 0.01),
        }
    )
    project.catalog.write(name, table, "overwrite")
    sql = "SELECT machine, sum(amount) AS s, count(*) AS n FROM curated.events GROUP BY machine"

    def planned() -> Any:
        return query(project, sql)

    def materialised() -> Any:
        arrow = project.catalog.read_arrow(name)
        con = duckdb.connect()
        con.register("events", arrow)
        return con.sql(sql.replace("curated.events", "events")).to_arrow_table()

    rows = []
    for label, fn in (
        ("planned files → DuckDB", planned),
        ("scan().to_arrow() → DuckDB", materialised),
    ):
        seconds = _best_of(fn, 3)
        rows.append((f"iceberg read: {label}", seconds, f"{n_rows:,} rows"))
    return rows


def _best_of(fn: Callable[[], Any], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=2_000_000, help="rows for the read bench")
    args = parser.parse_args()
    results: list[tuple[str, float, str]] = []
    with tempfile.TemporaryDirectory(prefix="lakelet-bench-") as tmp:
        results += bench_pipeline(Path(tmp))
        results += bench_iceberg_read(Path(tmp), args.rows)
        from crawl import bench_crawler  # benchmarks/crawl.py: issue 3's crawler figures

        results += bench_crawler(Path(tmp))
        from ingest import bench_ingest  # benchmarks/ingest.py: issue 4's ingest figures

        results += bench_ingest(Path(tmp))
        from gateway import bench_gateway  # benchmarks/gateway.py: issue 5's gateway

        from functions import bench_functions  # benchmarks/functions.py: issue 5's runtime

        for label, p50_ms, p99_ms, note in bench_functions(Path(tmp)):
            p99 = "" if p99_ms is None else f"p99 {p99_ms:.1f} ms; "
            seconds = float("nan") if p50_ms is None else p50_ms / 1000
            results.append((label, seconds, p99 + note))
        results += bench_gateway()
    table = Table(title="Lakelet benchmarks", title_justify="left", header_style="bold")
    table.add_column("benchmark")
    table.add_column("seconds", justify="right")
    table.add_column("notes")
    for label, seconds, note in results:
        table.add_row(label, "" if seconds != seconds else f"{seconds:.3f}", note)
    console = Console()
    console.print(table)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    console.print(f"peak resident memory of the benchmark process: {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
