"""Counting what a CSV scan read, and the cast fast path of its conversions."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import duckdb
import pytest

from lakelet.catalog import Column, RawTable
from lakelet.catalog.rawscan import ScanCount, accounting, count_scan, plan_raw_scan
from lakelet.catalog.rawscan.csv import value_sql
from lakelet.crawler.values import conversion_sql, decision_for_column

DIALECT = {"delimiter": ",", "quote": '"', "escape": '"', "header": True, "skip": 0}
COLUMNS = [Column("id", "BIGINT"), Column("note", "VARCHAR"), Column("day", "DATE")]
CLEAN = "id,note,day\n1,a,2026-11-27\n2,,2026-11-28\n3,c,\n"
DIRTY = (
    "id,note,day\n"
    "1,a,2026-11-27\n"  # 2 good
    "1.5,b,2026-11-27\n"  # 3 id is not an integer
    "3,c,2026-11-27,extra\n"  # 4 too many fields
    "4,N/A,n/a\n"  # 5 good: a null token in a DATE column
)


def _table(columns: list[Column] = COLUMNS) -> RawTable:
    return RawTable("raw", "t", "raw/t/", "csv", columns, dialect=DIALECT)


def _write(tmp_path: Path, name: str, content: str) -> str:
    path = tmp_path / "lake" / "raw" / "t" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    return str(path)


def _consume(con: duckdb.DuckDBPyConnection, select_sql: str) -> int:
    return len(con.execute(select_sql).fetchall())


def test_counting_finds_the_rows_read_and_every_reject(tmp_path: Path) -> None:
    dirty, clean = _write(tmp_path, "a.csv", DIRTY), _write(tmp_path, "b.csv", CLEAN)
    scan = plan_raw_scan(_table(), [dirty, clean], scan_id="s")
    con = duckdb.connect()
    read = _consume(con, scan.select_sql)
    counted = count_scan(con, scan)
    assert counted.accepted == read == 5
    assert [(r[0], r[1], r[2]) for r in counted.rejects] == [
        (dirty, 3, "id"),
        (dirty, 4, None),
    ]
    assert counted.rejects == con.execute(scan.rejects_sql).fetchall()
    assert scan.located_sql.keys() == {dirty, clean}


@pytest.mark.parametrize("content", [CLEAN, DIRTY])
def test_rows_taken_by_the_query_give_the_same_count(tmp_path: Path, content: str) -> None:
    url = _write(tmp_path, "a.csv", content)
    scan = plan_raw_scan(_table(), [url], scan_id="s")
    con = duckdb.connect()
    taken = _consume(con, f"SELECT * FROM ({scan.select_sql})")
    told = count_scan(con, scan, accepted=taken)
    assert told == count_scan(con, scan)
    assert told.accepted + len(told.rejects) == content.count("\n") - 1


NOT_NEEDED = "SELECT error('this count was not needed')"


def test_newlines_prove_a_clean_file_without_another_read(tmp_path: Path) -> None:
    url = _write(tmp_path, "a.csv", CLEAN.replace("\n", "\r\n").rstrip())
    scan = plan_raw_scan(_table(), [url], scan_id="s")
    con = duckdb.connect()
    taken = _consume(con, scan.select_sql)
    unread = replace(scan, total_sql=NOT_NEEDED, counts_sql=NOT_NEEDED)
    assert count_scan(con, unread, accepted=taken) == count_scan(con, scan) == ScanCount(3, [])


@pytest.mark.parametrize(
    "content",
    [
        'id,note,day\n1,"two\nlines",2026-11-27\n2,b,\n',  # a row on two lines
        "id,note,day\n1,a,2026-11-27\n\n2,b,\n",  # a blank line
        "id,note,day\n1,a,2026-11-27\nx,b,\n",  # a value that does not convert
    ],
)
def test_lines_that_hold_no_accepted_row_need_the_count(tmp_path: Path, content: str) -> None:
    url = _write(tmp_path, "a.csv", content)
    scan = plan_raw_scan(_table(), [url], scan_id="s")
    con = duckdb.connect()
    taken = _consume(con, scan.select_sql)
    with pytest.raises(duckdb.Error, match="was not needed"):
        count_scan(con, replace(scan, total_sql=NOT_NEEDED), accepted=taken)
    counted = count_scan(con, scan, accepted=taken)
    assert counted.accepted + len(counted.rejects) == 2


def test_physical_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(accounting, "CHUNK_BYTES", 3)  # a CRLF split across chunks
    path = tmp_path / "f.csv"
    for content, lines in [
        (b"", 0),
        (b"a\n", 1),
        (b"a\nb", 2),
        (b"ab\r\ncd\r\n", 2),
        (b"a\r\nbb\r\nc", 3),
        (b"a\rb\r", None),  # bare carriage returns may end lines too
    ]:
        path.write_bytes(content)
        assert accounting.physical_lines(path) == lines, content


def test_more_rows_accepted_than_read_is_a_caller_bug(tmp_path: Path) -> None:
    url = _write(tmp_path, "a.csv", CLEAN)
    scan = plan_raw_scan(_table(), [url], scan_id="s")
    con = duckdb.connect()
    _consume(con, scan.select_sql)
    with pytest.raises(ValueError, match="4 rows accepted"):
        count_scan(con, scan, accepted=4)


def test_text_only_tables_count_whole_rows_whatever_is_projected(tmp_path: Path) -> None:
    url = _write(tmp_path, "a.csv", 'a,b\nx,y\nonly one\nx,y,z\n"open,y\n')
    table = _table([Column("a", "VARCHAR"), Column("b", "VARCHAR")])
    scan = plan_raw_scan(table, [url], scan_id="s")
    con = duckdb.connect()
    con.execute(f"CREATE VIEW t AS {scan.select_sql}")
    assert con.execute("SELECT count(*) FROM t").fetchall() == [(1,)]
    assert _consume(con, "SELECT a FROM t") == 1
    counted = count_scan(con, scan)
    assert counted.accepted == 1
    assert [r[1] for r in counted.rejects] == [3, 4, 5]


def test_other_formats_are_counted_from_their_scan(tmp_path: Path) -> None:
    path = tmp_path / "lake" / "raw" / "t" / "a.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text('{"id": 1}\n{"id": "x"}\n')
    table = RawTable("raw", "t", "raw/t/", "json", [Column("id", "BIGINT")])
    scan = plan_raw_scan(table, [str(path)], scan_id="s")
    assert scan.counts_sql is None
    counted = count_scan(duckdb.connect(), scan)
    assert counted.accepted == 1
    assert [r[1] for r in counted.rejects] == [2]


# --- the cast fast path ---------------------------------------------------------------

TYPES = [
    ("BIGINT", {}),
    ("SMALLINT", {}),
    ("HUGEINT", {}),
    ("DECIMAL(18,2)", {}),
    ("DOUBLE", {}),
    ("DATE", {}),
    ("DATE", {"format": "%Y-%m-%d"}),
    ("DATE", {"format": "%d/%m/%Y"}),
    ("TIMESTAMP", {"format": "iso8601"}),
    ("TIME", {}),
    ("BOOLEAN", {}),
    ("DECIMAL(18,2)", {"format": "decimal-comma"}),
]
# Values DuckDB's cast reads leniently or specially, beside ones it writes itself.
AWKWARD = [
    "1.5",
    "1.0",
    "4.",
    ".5",
    "1e3",
    "0x1F",
    "1_000",
    "007",
    "+42",
    "-0",
    "-0.0",
    "nan",
    "NaN",
    "-nan",
    "inf",
    "Infinity",
    "1e400",
    "17.00",
    "17.0",
    "1.234",
    "-0.00",
    "9223372036854775808",
    "1e-05",
    "100.0",
    "true",
    "TRUE",
    "1",
    "t",
    "2026-11-27",
    "2026-13-01",
    "2026-1-5",
    "26-11-27",
    "infinity",
    "epoch",
    "0026-11-27",
    "10000-01-01",
    "10:00",
    "10:00:00",
    "25:00:00",
    "27/11/2026",
    "1,5",
    " 42",
    "2026-11-27 (BC)",
    "2026-11-27 10:00:00",
    "2026-11-27 10:00:00.123",
    "2026-11-27 10:00:00+02",
    "2026-11-27T10:00:00",
]


def _samples() -> list[str]:
    rng = random.Random(7)
    alphabet = "0123456789-+.eE x_,:T/()BCnaNifty"
    made = {"".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))) for _ in range(5000)}
    return sorted(made | set(AWKWARD))


@pytest.mark.parametrize(("sql_type", "stored"), TYPES, ids=[f"{t}{s}" for t, s in TYPES])
def test_the_cast_fast_path_reads_every_value_as_the_conversion(
    sql_type: str, stored: dict[str, str]
) -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE v (x VARCHAR)")
    con.executemany("INSERT INTO v VALUES (?)", [[s] for s in _samples()] + [[None]])
    decision = decision_for_column(sql_type, stored)
    fast, slow = value_sql(decision, "x"), conversion_sql(decision, "x")
    differing = con.execute(
        f"SELECT x FROM (SELECT x, {fast} AS f, {slow} AS s FROM v) WHERE f IS DISTINCT FROM s"
    ).fetchall()
    assert differing == []


def test_values_written_as_duckdb_writes_them_take_the_fast_path() -> None:
    for sql_type, value in [("BIGINT", "42"), ("DATE", "2026-11-27"), ("DECIMAL(18,2)", "1.50")]:
        sql = value_sql(decision_for_column(sql_type), "x")
        assert sql.startswith("CASE WHEN CAST(TRY_CAST(x")
        got = duckdb.execute(f"SELECT CAST({sql} AS VARCHAR) FROM (SELECT '{value}' AS x)")
        assert got.fetchall() == [(value,)]
    assert value_sql(decision_for_column("DATE", {"format": "%d/%m/%Y"}), "x") == (
        conversion_sql(decision_for_column("DATE", {"format": "%d/%m/%Y"}), "x")
    )
