"""Crawler benchmark (issue 3, item 10), printed as a table.

* A lake of 10,000 small CSV files in 1,000 Hive partitions (``date=…/site=…/``):
  a full crawl (budget 10 s on 2 cores), a crawl that finds nothing new, and an
  incremental crawl after one new file (budget 0.2 s).
* One ~1 GB CSV file: inference by sampling (budget 1 s), then the full streaming
  scan that computes the table's statistics, with the process's peak memory.

Run from the repository root: ``.venv/bin/python benchmarks/crawl.py [--gigabytes 1]``;
``benchmarks/run.py`` runs it as part of ``make bench``.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

FULL_BUDGET_S = 10.0
INCREMENTAL_BUDGET_S = 0.2
INFERENCE_BUDGET_S = 1.0
REPEAT = 5
PARTITIONS = 1000
FILES_PER_PARTITION = 10
ROWS_PER_FILE = 10

Row = tuple[str, float, str]


def _repeated(label: str, seconds: list[float], action: str) -> Row:
    best, median = min(seconds), sorted(seconds)[len(seconds) // 2]
    note = f"{action}; best of {len(seconds)}, median {median:.3f} s; "
    return (label, best, note + _verdict(best, INCREMENTAL_BUDGET_S))


def _verdict(seconds: float, budget: float) -> str:
    return f"budget {budget:g} s: {'ok' if seconds < budget else 'OVER BUDGET'}"


def write_small_lake(root: Path) -> int:
    """Write the 10,000 files straight to the lake folder (no events: it is a fixture)."""
    count = 0
    for p in range(PARTITIONS):
        folder = root / "raw" / "sales" / f"date=2026-{1 + p // 28 % 12:02d}-{1 + p % 28:02d}"
        folder = folder / f"site={p}"
        folder.mkdir(parents=True, exist_ok=True)
        for f in range(FILES_PER_PARTITION):
            rows = "".join(
                f"{(p * FILES_PER_PARTITION + f) * ROWS_PER_FILE + i},m{i % 7},{i * 1.25:.2f},"
                f"2026-11-{1 + i % 28:02d}\n"
                for i in range(ROWS_PER_FILE)
            )
            (folder / f"part-{f}.csv").write_text("id,machine,price,day\n" + rows)
            count += 1
    return count


def bench_small_files(workdir: Path) -> list[Row]:
    from lakelet.config import CrawlerSection
    from lakelet.crawler import run_crawler
    from lakelet.project import init_project

    project = init_project(workdir / "crawl-small")
    files = write_small_lake(Path(project.store.root))
    spec = CrawlerSection(path="raw/sales/")
    rows: list[Row] = []

    started = time.perf_counter()
    report = run_crawler(project, "sales", spec, full=True)
    seconds = time.perf_counter() - started
    (table,) = report.tables
    detail = f"{files:,} files, {PARTITIONS:,} partitions → {table.name}; "
    rows.append(("crawl: full, 10k small CSV", seconds, detail + _verdict(seconds, FULL_BUDGET_S)))

    # Sub-second timings on a shared 2-core machine vary by ±40 % from run to run: the
    # incremental cases are repeated and reported as best and median of REPEAT runs.
    noop: list[float] = []
    for _ in range(REPEAT):
        started = time.perf_counter()
        again = run_crawler(project, "sales", spec)
        noop.append(time.perf_counter() - started)
    rows.append(_repeated("crawl: incremental, nothing new", noop, again.tables[0].action))

    one_file: list[float] = []
    for i in range(REPEAT):
        new_key = f"sales/date=2026-12-{i + 1:02d}/site=1000/part-0.csv"
        body = f"id,machine,price,day\n{i},m1,2.50,2026-12-{i + 1:02d}\n".encode()
        project.store.put("raw", new_key, body)
        started = time.perf_counter()
        one = run_crawler(project, "sales", spec)
        one_file.append(time.perf_counter() - started)
    rows.append(_repeated("crawl: incremental, 1 new file", one_file, one.tables[0].action))
    return rows


def write_big_csv(path: Path, gigabytes: float) -> int:
    """A CSV of about ``gigabytes`` GB, written by DuckDB (fast, and not what we time)."""
    import duckdb

    bytes_per_row = 41
    rows = int(gigabytes * 1e9 / bytes_per_row)
    duckdb.sql(
        f"""COPY (SELECT i AS id, 'machine-' || (i % 1000) AS machine,
                        round((i % 10000) * 0.37, 2) AS price,
                        DATE '2026-01-01' + CAST(i % 365 AS INTEGER) AS day,
                        i % 13 AS qty
                 FROM range({rows}) t(i)) TO '{path}' (HEADER, DELIMITER ',')"""
    )
    return rows


def bench_big_file(workdir: Path, gigabytes: float) -> list[Row]:
    import duckdb

    from lakelet.crawler.crawler import crawl_prefix
    from lakelet.crawler.files import list_files
    from lakelet.crawler.grouping import group_by_folder
    from lakelet.crawler.inference import TableSource, build_table, infer_files
    from lakelet.crawler.probe import probe_file
    from lakelet.crawler.schema import FileSchema
    from lakelet.crawler.stats import compute_stats
    from lakelet.project import init_project

    project = init_project(workdir / "crawl-big")
    folder = Path(project.store.root) / "raw" / "big"
    folder.mkdir(parents=True)
    path = folder / "sales.csv"
    write_big_csv(path, gigabytes)
    size_gb = path.stat().st_size / 1e9
    bucket, prefix = crawl_prefix("raw/big/")
    (file,) = list_files(project.store, bucket, prefix, []).files

    con = duckdb.connect()
    started = time.perf_counter()
    probes = {file.key: probe_file(project.store, file)}
    outcomes = infer_files(con, [file], probes)
    seconds = time.perf_counter() - started
    schema = outcomes[file.key]
    assert isinstance(schema, FileSchema), schema
    types = ", ".join(f"{f.name} {f.type}" for f in schema.fields)
    rows: list[Row] = [
        (
            f"crawl: infer {size_gb:.2f} GB CSV (sampled)",
            seconds,
            f"{types}; {_verdict(seconds, INFERENCE_BUDGET_S)}",
        )
    ]
    source = TableSource("raw", "big", "raw/big/")
    (group,) = group_by_folder(bucket, prefix, [file], 0)
    inferred = build_table(source, "csv", group, {file.key: schema})
    assert inferred is not None
    before_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    con.execute("SET memory_limit = '1GB'")
    started = time.perf_counter()
    result = compute_stats(con, inferred.table, [file.url])
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    counted = result.stats["rows"] if result.stats else result.warning
    note = f"{counted:,} rows; peak RSS {peak_mb:.0f} MB (before: {before_mb:.0f} MB)"
    rows.append((f"crawl: full scan statistics, {size_gb:.2f} GB", seconds, note))
    con.close()
    return rows


def bench_crawler(workdir: Path, gigabytes: float = 1.0) -> list[Row]:
    """Every crawler figure, for ``benchmarks/run.py``."""
    rows = bench_small_files(workdir)
    if gigabytes > 0:
        rows += bench_big_file(workdir, gigabytes)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--gigabytes", type=float, default=1.0, help="size of the big CSV (0: skip)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lakelet-bench-crawl-") as tmp:
        results = bench_crawler(Path(tmp), args.gigabytes)
    table = Table(title="Lakelet crawler benchmark", title_justify="left", header_style="bold")
    table.add_column("benchmark")
    table.add_column("seconds", justify="right")
    table.add_column("notes")
    for label, seconds, note in results:
        table.add_row(label, f"{seconds:.3f}", note)
    Console().print(table)


if __name__ == "__main__":
    main()
