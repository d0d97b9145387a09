"""``SELECT * FROM raw_table`` jobs: read by pyarrow, written by parallel Parquet
writers, or by the checked scan when the Arrow read refuses; the output, the
accounting and the rejects are the same either way."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from lakelet.catalog import TableName
from lakelet.catalog.rawscan import arrowcsv
from lakelet.crawler import crawler_spec, run_crawler
from lakelet.jobs import query, run_job
from lakelet.jobs.runs import RunRecord
from lakelet.project import Project, init_project

OUT = TableName("curated", "sales")
GOOD = (
    "id,machine,amount,day,note\n"
    '1,m1,1.50,2026-11-27,"plain, quoted"\n'
    "2,m2,2.25,2026-11-27,\n"
    "3,m1,,2026-11-28,x\n"
)


def sales_project(tmp_path: Path, *, bookmark: bool = False, files: dict[str, str]) -> Project:
    project = init_project(tmp_path / "p")
    (project.root / "jobs" / "copy.sql").write_text("SELECT * FROM raw.sales\n")
    extra = 'mode = "append"\nbookmark = true\n' if bookmark else ""
    with (project.root / "lakelet.toml").open("a") as config:
        config.write(
            '\n[crawlers.sales]\npath = "raw/sales/"\n'
            f'[jobs.copy]\nsql = "jobs/copy.sql"\noutput = "curated.sales"\n{extra}'
        )
    project = Project.open(project.root)
    for key, text in files.items():
        project.store.put("raw", f"sales/{key}", text.encode())
    run_crawler(project, "sales", crawler_spec(project, "sales"))
    return project


@dataclass
class ArrowReads:
    """Arrow reads the runs attempted, and why any was refused."""

    attempts: int = 0
    refusals: list[str] = field(default_factory=list)


@pytest.fixture
def arrow_reads(monkeypatch: pytest.MonkeyPatch) -> ArrowReads:
    seen = ArrowReads()
    pieces, read_piece = arrowcsv.ArrowCsvRead.pieces, arrowcsv.ArrowCsvRead.read_piece

    def noted(method: Any, *, attempt: bool) -> Any:
        def wrapper(*args: Any) -> Any:
            seen.attempts += attempt
            try:
                yield from method(*args)
            except arrowcsv.ArrowReadRefused as refused:
                seen.refusals.append(str(refused))
                raise

        return wrapper

    monkeypatch.setattr(arrowcsv.ArrowCsvRead, "pieces", noted(pieces, attempt=True))
    monkeypatch.setattr(arrowcsv.ArrowCsvRead, "read_piece", noted(read_piece, attempt=False))
    return seen


def _checked_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(arrowcsv, "plan_arrow_read", lambda *a, **k: "turned off")


def _output(project: Project) -> list[dict[str, Any]]:
    return list(query(project, "SELECT * FROM curated.sales ORDER BY id").to_pylist())


def _data_files(project: Project) -> list[Path]:
    return sorted((Path(project.store.root) / "curated" / "sales").rglob("*.parquet"))


def test_copy_job_takes_the_arrow_read_and_writes_what_the_checked_scan_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, arrow_reads: ArrowReads
) -> None:
    files = {"a.csv": GOOD, "day=x/b.csv": GOOD.replace("1,m1", "4,m3")}
    fast = sales_project(tmp_path / "fast", files={"a.csv": GOOD, "b.csv": files["day=x/b.csv"]})
    record = run_job(fast, "copy")
    assert (arrow_reads.attempts, arrow_reads.refusals) == (1, [])
    assert (record.rows_read, record.rows_written, record.rows_rejected) == (6, 6, 0)

    _checked_only(monkeypatch)
    checked = sales_project(
        tmp_path / "checked", files={"a.csv": GOOD, "b.csv": files["day=x/b.csv"]}
    )
    assert run_job(checked, "copy").rows_written == 6
    assert arrow_reads.attempts == 1  # the second project never tried the Arrow read
    assert _output(fast) == _output(checked)
    fast_schema = fast.catalog.load_iceberg(OUT).schema()
    checked_schema = checked.catalog.load_iceberg(OUT).schema()
    assert str(fast_schema) == str(checked_schema)
    notes = {row["id"]: row["note"] for row in _output(fast)}
    assert notes == {1: "plain, quoted", 2: None, 3: "x", 4: "plain, quoted"}


def test_copy_job_without_bookmark_needs_no_duckdb_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, arrow_reads: ArrowReads
) -> None:
    from lakelet.jobs import streaming

    project = sales_project(tmp_path, files={"a.csv": GOOD})
    sessions: list[object] = []
    real = streaming.Session

    def counted(*args: Any, **kwargs: Any) -> Any:
        sessions.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(streaming, "Session", counted)
    record = run_job(project, "copy")
    assert (record.rows_read, record.rows_written, sessions) == (3, 3, [])
    assert arrow_reads.attempts == 1
    # a refused read falls back to a session, which does not try the Arrow read again
    project.store.put("raw", "sales/b.csv", (GOOD + "4,m2,1.234,2026-11-29,x\n").encode())
    assert run_job(project, "copy").rows_rejected == 1
    assert len(sessions) == 1 and arrow_reads.attempts == 2


def test_a_row_that_does_not_convert_falls_back_to_the_checked_scan(
    tmp_path: Path, arrow_reads: ArrowReads
) -> None:
    project = sales_project(tmp_path, files={"a.csv": GOOD})
    bad = GOOD + "4,m2,1.234,2026-11-29,too many decimals\n"  # DECIMAL(18,2) would round
    project.store.put("raw", "sales/b.csv", bad.encode())  # after the crawl: not sampled
    record = run_job(project, "copy")
    assert arrow_reads.attempts == 1 and "b.csv" in arrow_reads.refusals[0]
    assert (record.rows_read, record.rows_written, record.rows_rejected) == (7, 6, 1)
    assert record.rows_read == record.rows_written + record.rows_quarantined + record.rows_rejected
    (reject,) = record.rejects
    assert reject.file.endswith("b.csv") and reject.line == 5 and "1.234" in reject.reason
    # what the refused read wrote is gone: only the committed files remain
    committed = {Path(f.file_path.removeprefix("file://")) for f in _scan_files(project)}
    assert set(_data_files(project)) == committed


def _scan_files(project: Project) -> list[Any]:
    table = project.catalog.load_iceberg(OUT)
    return [task.file for task in table.scan().plan_files()]


def test_bookmarked_copy_tags_rows_with_their_file(tmp_path: Path, arrow_reads: ArrowReads) -> None:
    project = sales_project(tmp_path, bookmark=True, files={"a.csv": GOOD})
    first: RunRecord = run_job(project, "copy")
    assert (arrow_reads.attempts, arrow_reads.refusals) == (1, []) and first.rows_written == 3
    files = {r["_lakelet_file"] for r in _output(project)}
    assert files == {"raw/sales/a.csv"}
    assert run_job(project, "copy").rows_read == 0  # nothing new
    project.store.put("raw", "sales/b.csv", GOOD.replace("1,m1", "4,m3").encode())
    third = run_job(project, "copy")
    assert third.rows_read == 3 and arrow_reads.refusals == []
    assert sorted(r["_lakelet_file"] for r in _output(project))[-1] == "raw/sales/b.csv"


def test_writers_encode_dictionaries_only_for_few_distinct_values(tmp_path: Path) -> None:
    rows = "".join(f"{i},m{i % 3},{i}.25,2026-11-27,note {i}\n" for i in range(3000))
    project = sales_project(tmp_path, files={"a.csv": "id,machine,amount,day,note\n" + rows})
    run_job(project, "copy")
    encodings: dict[str, set[str]] = {}
    for path in _data_files(project):
        meta = pq.ParquetFile(path).metadata
        for group in range(meta.num_row_groups):
            for i in range(meta.num_columns):
                column = meta.row_group(group).column(i)
                encodings.setdefault(column.path_in_schema, set()).update(column.encodings)
    assert "RLE_DICTIONARY" in encodings["machine"]  # 3 values
    assert "RLE_DICTIONARY" not in encodings["id"]  # every value distinct
    assert query(project, "SELECT count(*) AS n FROM curated.sales").to_pylist() == [{"n": 3000}]


def _not_utf8_later(tmp_path: Path) -> Project:
    """A file, added after the crawl read the first as UTF-8, with two rows holding a
    byte that is not (DuckDB checks it only in the columns it reads), then UTF-8 text."""
    project = sales_project(tmp_path, files={"a.csv": GOOD})
    rows = [b"4,m\xff2,4.00,2026-11-29,fine", b"5,m1,5.00,2026-11-29,bad \xff"]
    rows.append("6,m1,6.00,2026-11-29,café".encode())
    project.store.put("raw", "sales/b.csv", GOOD.encode() + b"\n".join(rows) + b"\n")
    return project


@pytest.mark.parametrize("reader", ["arrow", "checked"])
def test_a_row_that_is_not_utf8_is_rejected_and_counted_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reader: str
) -> None:
    project = _not_utf8_later(tmp_path)
    if reader == "checked":
        _checked_only(monkeypatch)
    record = run_job(project, "copy")
    assert (record.rows_read, record.rows_written, record.rows_rejected) == (9, 7, 2)
    assert record.rows_read == record.rows_written + record.rows_quarantined + record.rows_rejected
    assert sorted((r.line, r.column) for r in record.rejects) == [(5, "machine"), (6, "note")]
    assert all("unicode" in r.reason.lower() for r in record.rejects)
    notes = {row["id"]: row["note"] for row in _output(project)}
    assert sorted(row["id"] for row in _output(project)) == [1, 1, 2, 2, 3, 3, 6]
    assert notes[6] == "café"


def test_an_aggregate_counts_a_row_that_is_not_utf8_once(tmp_path: Path) -> None:
    """A query that reads some columns: the count of what it read reads them all."""
    project = _not_utf8_later(tmp_path)
    (project.root / "jobs" / "copy.sql").write_text(
        "SELECT machine, count(*) AS n FROM raw.sales GROUP BY machine\n"
    )
    record = run_job(project, "copy")
    assert (record.rows_read, record.rows_rejected) == (9, 2)  # 7 reached the query
    assert sorted(r.line for r in record.rejects) == [5, 6]
    # row 6's machine is UTF-8, but the row is rejected as for a query of every column
    assert {r["machine"]: r["n"] for r in _output_rows(project)} == {"m1": 5, "m2": 2}


def _output_rows(project: Project) -> list[dict[str, Any]]:
    return list(query(project, "SELECT * FROM curated.sales").to_pylist())


@pytest.mark.parametrize("bookmark", [False, True])
def test_rows_not_utf8_beside_a_value_that_does_not_convert_are_located(
    tmp_path: Path, bookmark: bool
) -> None:
    """Locating a value that does not convert reads the file's lines again; lines that
    are not UTF-8 keep their place, as in the same file with those bytes replaced."""
    rows = [
        b"4,m\xff2,4.00,2026-11-29,fine",
        b'5,m1,5.00,2026-11-29,"two\nlines"',
        b"6,m1,1.234,2026-11-29,too many decimals",
        b"7,m1,7.00,2026-11-29,bad \xff",
        b"8,m2,8.5x,2026-11-29,not a number",
    ]
    found = {}
    for name, data in [("dirty", rows), ("clean", [r.replace(b"\xff", b"X") for r in rows])]:
        project = sales_project(tmp_path / name, bookmark=bookmark, files={"a.csv": GOOD})
        project.store.put("raw", "sales/b.csv", GOOD.encode() + b"\n".join(data) + b"\n")
        record = run_job(project, "copy")
        assert record.rows_read == record.rows_written + record.rows_rejected
        found[name] = {(r.line, r.column): r for r in record.rejects}
    (six, eight) = sorted(found["clean"])  # lines as DuckDB counts them: the span once
    assert [column for _, column in (six, eight)] == ["amount", "amount"]
    assert {k for k in found["dirty"] if k[1] == "amount"} == {six, eight}
    assert found["dirty"][six].raw == "6,m1,1.234,2026-11-29,too many decimals"
    assert found["dirty"][eight].raw == "8,m2,8.5x,2026-11-29,not a number"
    unicode = sorted(k for k in found["dirty"] if k[1] != "amount")
    assert unicode == [(5, "machine"), (six[0] + 1, "note")]
