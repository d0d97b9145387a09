"""Pollock benchmark: Lakelet's messy-CSV reader vs DuckDB's auto-detection.

Unpacks ../shared/benchmarks/pollock/pollock-polluted.tar.xz into .cache/pollock/ (once),
reads every file of polluted_files/csv/ in auto mode — with the function `lakelet read`
uses, in 2 processes, and a sample through the `lakelet read` CLI itself to check both
agree — and DuckDB's read_csv(strict_mode=false, ignore_errors=true, null_padding=true,
all_varchar=true) in the same run, then scores both against polluted_files/clean/ with
metric.py. polluted_files/parameters/ (the answer key) is never read: pollution kinds
come from the file names, weights from pollock_weights.json.

Our reader writes a file without a header row without inventing one
(``--no-generated-header``), like the clean files; the score with generated col_N names
is printed too.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))

from metric import FileScore, score

REPO = Path(__file__).resolve().parents[2]
ARCHIVE = REPO.parent / "shared" / "benchmarks" / "pollock" / "pollock-polluted.tar.xz"
CACHE = REPO / ".cache" / "pollock"
CSV_DIR = CACHE / "polluted_files" / "csv"
CLEAN_DIR = CACHE / "polluted_files" / "clean"
WEIGHTS = CACHE / "pollock_weights.json"
OUT = CACHE / "out"
CLI_SAMPLE_EVERY = 50
SYSTEMS = ("lakelet", "lakelet (col_N header)", "duckdb auto")
PUBLISHED = {"DuckDB 1.2 auto (paper)": (9.075, 8.439), "CleverCSV (paper)": (9.193, 9.453)}


def unpack() -> None:
    if CSV_DIR.is_dir() and WEIGHTS.is_file():
        return
    CACHE.mkdir(parents=True, exist_ok=True)
    with tarfile.open(ARCHIVE) as archive:
        archive.extractall(CACHE, filter="data")


def kind_of(name: str) -> str:
    """The pollution kind in a file name: ``row_less_sep_row7_col2.csv`` → ``row_less_sep``."""
    stem = name.removesuffix(".csv")
    match = re.match(r"(row_[a-z_]+?)_?(?:row)?\d", stem)
    return match.group(1) if match else stem


def ours(name: str) -> tuple[str, FileScore, FileScore]:
    """Read one file with the reader `lakelet read` uses; score both header variants."""
    from lakelet.crawler.messy.convert import error_text, table_text
    from lakelet.crawler.messy.reader import read_csv_file

    clean = (CLEAN_DIR / name).read_text(encoding="utf-8")
    try:
        result = read_csv_file(CSV_DIR / name)
        tables = result.tables
        plain = table_text(tables[0], generated_header=False) if tables else ""
        named = table_text(tables[0], generated_header=True) if tables else ""
    except Exception as exc:  # a crash is scored as a failed load
        plain = named = error_text(f"{type(exc).__name__}: {exc}")
    target = OUT / "lakelet" / f"{Path(name).stem}_converted.csv"
    target.write_text(plain, encoding="utf-8", newline="")
    return name, score(plain, clean), score(named, clean)


def duckdb_auto(name: str) -> tuple[str, FileScore]:
    """DuckDB's own detection of one file, written back as CSV with a header."""
    import duckdb

    clean = (CLEAN_DIR / name).read_text(encoding="utf-8")
    target = OUT / "duckdb" / f"{Path(name).stem}_converted.csv"
    source = str(CSV_DIR / name).replace("'", "''")
    query = (
        f"COPY (SELECT * FROM read_csv('{source}', strict_mode=false, ignore_errors=true, "
        f"null_padding=true, all_varchar=true)) TO '{str(target).replace(chr(39), chr(39) * 2)}' "
        "(HEADER true, DELIMITER ',', QUOTE '\"', FORCE_QUOTE *)"
    )
    try:
        with duckdb.connect() as con:
            con.execute("SET threads=1")
            con.execute(query)
        loaded = target.read_text(encoding="utf-8")
    except Exception as exc:  # DuckDB gives up on the file: a failed load
        loaded = f"Application Error\n{exc}\n"
        target.write_text(loaded, encoding="utf-8")
    return name, score(loaded, clean)


def check_cli(names: list[str]) -> tuple[int, int]:
    """Run the `lakelet read` CLI on a sample; count outputs equal to the in-process ones."""
    sample = names[::CLI_SAMPLE_EVERY]
    with tempfile.TemporaryDirectory() as tmp:
        command = [
            str(REPO / ".venv" / "bin" / "lakelet"),
            "read",
            "--out-dir",
            tmp,
            "--no-generated-header",
            *(str(CSV_DIR / n) for n in sample),
        ]
        subprocess.run(command, check=True, capture_output=True)
        same = 0
        for n in sample:
            converted = f"{Path(n).stem}_converted.csv"
            cli = Path(tmp, converted).read_bytes()
            same += cli == (OUT / "lakelet" / converted).read_bytes()
    return same, len(sample)


def main() -> None:
    out = Console()
    unpack()
    weights: dict[str, float] = json.loads(WEIGHTS.read_text())
    names = sorted(p.name for p in CSV_DIR.glob("*.csv"))
    for system in ("lakelet", "duckdb"):
        (OUT / system).mkdir(parents=True, exist_ok=True)
    scores: dict[str, dict[str, FileScore]] = {s: {} for s in SYSTEMS}
    timings: dict[str, float] = {}
    with ProcessPoolExecutor(max_workers=2) as pool:
        started = time.perf_counter()
        for name, plain, named in pool.map(ours, names, chunksize=16):
            scores["lakelet"][name] = plain
            scores["lakelet (col_N header)"][name] = named
        timings["lakelet"] = timings["lakelet (col_N header)"] = time.perf_counter() - started
        started = time.perf_counter()
        for name, result in pool.map(duckdb_auto, names, chunksize=16):
            scores["duckdb auto"][name] = result
        timings["duckdb auto"] = time.perf_counter() - started
    same, sampled = check_cli(names)

    summary = Table(title=f"Pollock: {len(names)} files (simple / weighted score, max 10)")
    for column in ("system", "simple", "weighted", "failed", "seconds"):
        summary.add_column(column, justify="left" if column == "system" else "right")
    for system in SYSTEMS:
        per_file = scores[system]
        simple = sum(s.total for s in per_file.values()) / len(per_file)
        total_weight = sum(weights.get(n, 0.0) for n in per_file)
        weighted = sum(s.total * weights.get(n, 0.0) for n, s in per_file.items()) / total_weight
        failed = sum(1 for s in per_file.values() if s.success == 0)
        summary.add_row(
            system, f"{simple:.3f}", f"{weighted:.3f}", str(failed), f"{timings[system]:.0f}"
        )
    for system, (simple, weighted) in PUBLISHED.items():
        summary.add_row(system, f"{simple:.3f}", f"{weighted:.3f}", "", "")
    out.print(summary)

    kinds: dict[str, list[str]] = defaultdict(list)
    for name in names:
        kinds[kind_of(name)].append(name)
    detail = Table(title="Mean score per pollution kind")
    detail.add_column("kind", no_wrap=True)
    detail.add_column("files", justify="right")
    detail.add_column("weight", justify="right")
    for system in SYSTEMS:
        detail.add_column(system, justify="right")
    for kind, members in sorted(kinds.items()):
        means = [sum(scores[s][n].total for n in members) / len(members) for s in SYSTEMS]
        weight = sum(weights.get(n, 0.0) for n in members)
        detail.add_row(kind, str(len(members)), f"{weight:.0f}", *(f"{m:.3f}" for m in means))
    out.print(detail)
    out.print(f"`lakelet read` CLI: {same}/{sampled} sampled outputs equal the in-process ones")
    if same != sampled:
        sys.exit(1)


if __name__ == "__main__":
    main()
