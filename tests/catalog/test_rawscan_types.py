"""CSV raw scans convert text by the recorded type decisions: no value is coerced."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from lakelet.catalog import Column, RawTable
from lakelet.catalog.rawscan import plan_raw_scan

DIALECT = {"delimiter": ",", "quote": '"', "escape": '"', "header": True, "skip": 0}

TYPED_CSV = (
    "id,day,amount,share,note\n"  # line 1
    "1,2026-11-27,$74.69,12%,a\n"  # 2 good
    "1.5,2026-11-27,$1.00,1%,b\n"  # 3 id is not an integer
    "3,2026-13-01,$2.00,2%,c\n"  # 4 no month 13
    "4,N/A,-$5.00,N/A,N/A\n"  # 5 good: N/A is NULL in typed columns, text in note
    "5,2026-11-28,($1234.50),12.5%,\n"  # 6 good (a negative amount, one decimal)
    "6,2026-11-28,€3.00,3%,d\n"  # 7 another currency
    "7,2026-11-28 10:00:00,$1.00,x%,e\n"  # 8 a timestamp in a DATE column, a bad share
)
TYPED_COLUMNS = [
    Column("id", "BIGINT"),
    Column("day", "DATE"),
    Column("amount", "DECIMAL(18,2)"),
    Column("share", "DECIMAL(18,1)"),
    Column("note", "VARCHAR"),
]
TYPES = {
    "day": {"format": "%Y-%m-%d"},
    "amount": {"format": "currency", "currency": "$"},
    "share": {"format": "percent"},
}


def _write(tmp_path: Path, name: str, content: str) -> str:
    path = tmp_path / "lake" / "raw" / "t" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    return str(path)


def _table(columns: list[Column], dialect: dict[str, object]) -> RawTable:
    return RawTable("raw", "t", "raw/t/", "csv", columns, dialect=dialect)


def _read(sql_select: str, sql_rejects: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    con = duckdb.connect()
    rows = con.sql(f"{sql_select} ORDER BY ALL").fetchall()
    rejects = con.sql(sql_rejects).fetchall()
    return rows, rejects


def test_values_are_converted_or_rejected_with_line_and_reason(tmp_path: Path) -> None:
    url = _write(tmp_path, "a.csv", TYPED_CSV)
    scan = plan_raw_scan(_table(TYPED_COLUMNS, {**DIALECT, "types": TYPES}), [url], scan_id="s")
    rows, rejects = _read(scan.select_sql, scan.rejects_sql)

    assert len(rows) + len(rejects) == TYPED_CSV.count("\n") - 1 == 7
    day = date(2026, 11, 27)
    assert rows == [
        (1, day, Decimal("74.69"), Decimal("12.0"), "a"),
        (4, None, Decimal("-5.00"), None, "N/A"),
        (5, date(2026, 11, 28), Decimal("-1234.50"), Decimal("12.5"), None),
    ]
    assert [(r[0], r[1], r[2], r[3]) for r in rejects] == [
        (url, 3, "id", 'CAST: column "id": value "1.5" is not a BIGINT'),
        (url, 4, "day", 'CAST: column "day": value "2026-13-01" is not a DATE (%Y-%m-%d)'),
        (
            url,
            7,
            "amount",
            'CAST: column "amount": value "€3.00" is not a DECIMAL(18,2) amount in $',
        ),
        (
            url,
            8,
            "day",
            'CAST: column "day": value "2026-11-28 10:00:00" is not a DATE (%Y-%m-%d); '
            'CAST: column "share": value "x%" is not a DECIMAL(18,1) percentage',
        ),
    ]
    assert rejects[0][4] == "1.5,2026-11-27,$1.00,1%,b"


def test_types_from_the_sniffer_are_checked_too(tmp_path: Path) -> None:
    # No recorded decisions (a table crawled before them): the column types and the
    # dialect's date format decide, and DuckDB's lossy casts are not used.
    content = (
        "id,day,at\n"
        "1,27/11/2026,2026-11-27 10:00:00\n"
        "1.5,27/11/2026,2026-11-27 10:00:00\n"
        "3,27/11/2026 10:00,2026-11-27 10:00:00\n"
        "4,28/11/2026,2026-11-27 10:00:00+02\n"
    )
    url = _write(tmp_path, "b.csv", content)
    columns = [Column("id", "BIGINT"), Column("day", "DATE"), Column("at", "TIMESTAMP")]
    scan = plan_raw_scan(_table(columns, {**DIALECT, "dateformat": "%d/%m/%Y"}), [url], scan_id="s")
    rows, rejects = _read(scan.select_sql, scan.rejects_sql)
    assert rows == [(1, date(2026, 11, 27), datetime(2026, 11, 27, 10))]
    assert [(r[1], r[2]) for r in rejects] == [(3, "id"), (4, "day"), (5, "at")]
    assert '"1.5" is not a BIGINT' in rejects[0][3]
    assert "(%d/%m/%Y)" in rejects[1][3]


def test_lines_count_like_duckdb_around_malformed_rows(tmp_path: Path) -> None:
    # A multi-line quoted value is one line to DuckDB; blank lines count; malformed
    # rows are rejected by the reader itself, and later lines keep their numbers.
    content = (
        "id,note\n"  # 1
        '1,"two\nlines"\n'  # 2
        "2,x,extra\n"  # 3 too many fields
        "\n"  # 4 blank
        "x,bad id\n"  # 5
        "4\n"  # 6 too few fields
        "5,ok\n"  # 7
        "5.5,bad id\n"  # 8
    )
    url = _write(tmp_path, "c.csv", content)
    columns = [Column("id", "BIGINT"), Column("note", "VARCHAR")]
    scan = plan_raw_scan(_table(columns, DIALECT), [url], scan_id="s")
    rows, rejects = _read(scan.select_sql, scan.rejects_sql)
    assert rows == [(1, "two\nlines"), (5, "ok")]
    assert [(r[1], r[2], r[3].split(":")[0]) for r in rejects] == [
        (3, None, "TOO MANY COLUMNS"),
        (5, "id", "CAST"),
        (6, "note", "MISSING COLUMNS"),
        (8, "id", "CAST"),
    ]
    assert [r[4] for r in rejects if r[2] == "id"] == ["x,bad id", "5.5,bad id"]


def test_accounting_holds_across_files_and_projections(tmp_path: Path) -> None:
    first = _write(tmp_path, "a.csv", TYPED_CSV)
    # a file with its own column order
    second = _write(tmp_path, "b.csv", "note,id\nz,10\ny,1.25\n")
    dialect = {
        **DIALECT,
        "types": TYPES,
        "layouts": [{"columns": ["note", "id"], "files": ["b.csv"]}],
    }
    scan = plan_raw_scan(_table(TYPED_COLUMNS, dialect), [first, second], scan_id="s")
    con = duckdb.connect()
    con.execute(f"CREATE VIEW t AS {scan.select_sql}")
    for projection in ("*", "note", "count(*)"):
        con.execute(f"SELECT {projection} FROM t").fetchall()
    ((good,),) = con.execute("SELECT count(*) FROM t").fetchall()
    rejects = con.execute(scan.rejects_sql).fetchall()
    assert good == 4
    assert len(rejects) == 5  # scanned four times, still one reject per line
    assert (second, 3, "id") in [(r[0], r[1], r[2]) for r in rejects]


def test_conversion_reject_lines_match_duckdbs_own_numbering(tmp_path: Path) -> None:
    # For each row, a bad value and an extra field on that row must get the same line
    # number: the first from the conversion, the second from DuckDB's reader.
    rows = [
        '1,"a\nb"',
        "",
        "# a comment",
        "2,plain",
        '3,"x ""quoted""\n\nthree lines"',
        "4,y",
        "",
        "5,z",
    ]
    dialect = {**DIALECT, "comment": "#", "skip": 1}
    columns = [Column("id", "BIGINT"), Column("note", "VARCHAR")]
    table = _table(columns, dialect)
    for j, row in enumerate(rows):
        if not row or row.startswith("#"):
            continue
        bad_value = ["junk before the header", "id,note", *rows]
        bad_value[j + 2] = "x" + row[1:]
        extra = ["junk before the header", "id,note", *rows]
        extra[j + 2] = row + ",extra"
        lines = []
        for name, content in (("value.csv", bad_value), ("extra.csv", extra)):
            url = _write(tmp_path, name, "\n".join(content) + "\n")
            scan = plan_raw_scan(table, [url], scan_id="s")
            good, rejects = _read(scan.select_sql, scan.rejects_sql)
            assert len(good) == 4 and len(rejects) == 1, (name, j, rejects)
            lines.append(rejects[0][1])
        assert lines[0] == lines[1], (j, row)
        _, rejects = _read(*_scan_of(tmp_path, table, bad_value))
        assert rejects[0][4] == "x" + row[1:]


def _scan_of(tmp_path: Path, table: RawTable, content: list[str]) -> tuple[str, str]:
    url = _write(tmp_path, "again.csv", "\n".join(content) + "\n")
    scan = plan_raw_scan(table, [url], scan_id="s")
    return scan.select_sql, scan.rejects_sql
