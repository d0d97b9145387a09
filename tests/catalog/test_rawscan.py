"""Reading crawled raw tables: typed rows, and every malformed row accounted for."""

from __future__ import annotations

import io
from datetime import date, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakelet.catalog import Column, RawTable, TableName
from lakelet.catalog.rawscan import RawScan, file_partitions, plan_raw_scan, raw_files
from lakelet.config import CrawlerSection
from lakelet.crawler import run_crawler
from lakelet.project import Project

GOOD = "".join(f"{i},m{i},{i}.5,2026-11-27 10:00:00\n" for i in range(1, 21))
MALFORMED_CSV = (
    "id,machine,price,sold_at\n"
    + GOOD
    + "21,m21,1.0,2026-11-27 10:00:00,extra\n"  # line 22: too many fields
    + "22,m22\n"  # line 23: too few fields
    + "23,m23,abc,2026-11-27 10:00:00\n"  # line 24: price is not a number
    + "24,m24,2.0,2026-11-27 10:00:00\n"  # line 25: good
    + '25,"m25,1.0,2026-11-27 10:00:00\n'  # line 26: unterminated quote ...
    + "26,m26,3.0,2026-11-27 10:00:00\n"  # line 27: ... swallows the rest of the file
)
CSV_COLUMNS = [
    Column("id", "BIGINT"),
    Column("machine", "VARCHAR"),
    Column("price", "DOUBLE"),
    Column("sold_at", "TIMESTAMP"),
]
CSV_DIALECT = {"delimiter": ",", "quote": '"', "escape": '"', "header": True, "skip": 0}

MALFORMED_JSONL = (
    '{"id": 1, "price": 1.5, "tags": ["a"]}\n'  # 1 good
    '{"id": 2, "price": "abc"}\n'  # 2 price is not a number
    '{"id": 3, "price": \n'  # 3 invalid JSON
    "[1, 2]\n"  # 4 not an object
    "\n"  # blank: not a row
    '{"id": 4.5, "price": 2}\n'  # 6 id is not an integer
    '{"id": 5}\n'  # 7 good, price absent
    '{"id": 6, "price": null, "tags": "x"}\n'  # 8 tags is not a list
    '{"id": 7, "price": null}\n'  # 9 good
)
JSON_COLUMNS = [Column("id", "BIGINT"), Column("price", "DOUBLE"), Column("tags", "VARCHAR[]")]


def _write(tmp_path: Path, relative: str, content: str | bytes) -> str:
    path = tmp_path / "lake" / "raw" / "sales" / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return str(path)


def _table(fmt: str, columns: list[Column], **kwargs: object) -> RawTable:
    return RawTable("raw", "sales", "raw/sales/", fmt, columns, **kwargs)  # type: ignore[arg-type]


def _count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    # fetchall: DuckDB records a scan's rejects once its result is fully consumed
    ((n,),) = con.execute(f"SELECT count(*) FROM ({sql})").fetchall()
    return int(n)


def test_csv_every_row_is_read_or_rejected(tmp_path: Path) -> None:
    url = _write(tmp_path, "date=2026-11-27/a.csv", MALFORMED_CSV)
    table = _table("csv", CSV_COLUMNS, partition_keys=[Column("date", "DATE")], dialect=CSV_DIALECT)
    scan = plan_raw_scan(table, [url], scan_id="scan_1")
    con = duckdb.connect()

    rows = con.sql(scan.select_sql).fetchall()
    rejects = con.sql(scan.rejects_sql).fetchall()

    data_rows = MALFORMED_CSV.count("\n") - 1
    assert len(rows) + len(rejects) == data_rows == 26
    assert sorted(r[0] for r in rows) == [*range(1, 21), 24]
    assert min(rows) == (1, "m1", 1.5, datetime(2026, 11, 27, 10), date(2026, 11, 27))
    assert [(r[0], r[1], r[2]) for r in rejects] == [
        (url, 22, None),
        (url, 23, "price"),
        (url, 24, "price"),
        (url, 26, "machine"),
        (url, 27, None),
    ]
    reasons = [r[3] for r in rejects]
    assert reasons[0].startswith("TOO MANY COLUMNS")
    assert reasons[1].startswith("MISSING COLUMNS")
    assert reasons[2].startswith("CAST") and '"abc"' in reasons[2]
    assert "unterminated quote" in reasons[3]
    assert "line 26" in reasons[4]
    assert rejects[1][4] == "22,m22"


def test_csv_accounting_holds_whatever_is_projected(tmp_path: Path) -> None:
    url = _write(tmp_path, "a.csv", MALFORMED_CSV)
    scan = plan_raw_scan(_table("csv", CSV_COLUMNS, dialect=CSV_DIALECT), [url], scan_id="s")
    con = duckdb.connect()
    con.execute(f"CREATE VIEW sales AS {scan.select_sql}")
    # count(*) must not skip the casts that reject a row, nor a narrow projection
    assert _count(con, "SELECT * FROM sales") == 21
    assert _count(con, "SELECT machine FROM sales") == 21
    assert _count(con, scan.rejects_sql) == 5  # the view was scanned twice: still 5


def test_two_scans_in_one_connection_do_not_collide(tmp_path: Path) -> None:
    bad = _write(tmp_path, "a.csv", MALFORMED_CSV)
    clean = str(tmp_path / "clean.csv")
    Path(clean).write_text("id,machine,price,sold_at\n1,m1,1.0,2026-11-27 10:00:00\n")
    table = _table("csv", CSV_COLUMNS, dialect=CSV_DIALECT)
    first = plan_raw_scan(table, [bad], scan_id="first")
    second = plan_raw_scan(table, [clean], scan_id="second")
    con = duckdb.connect()
    joined = f"SELECT * FROM ({first.select_sql}) UNION ALL SELECT * FROM ({second.select_sql})"
    assert _count(con, joined) == 22
    assert _count(con, first.rejects_sql) == 5
    assert _count(con, second.rejects_sql) == 0


def test_csv_files_with_their_own_column_order(tmp_path: Path) -> None:
    old = _write(tmp_path, "old.csv", "machine,id\nm1,1\n")
    new = _write(tmp_path, "new.csv", "id,machine,qty\n2,m2,5\n")
    table = _table(
        "csv",
        [Column("id", "BIGINT"), Column("machine", "VARCHAR"), Column("qty", "BIGINT")],
        dialect={**CSV_DIALECT, "layouts": [{"columns": ["machine", "id"], "files": ["old.csv"]}]},
    )
    scan = plan_raw_scan(table, [old, new], scan_id="s")
    rows = duckdb.connect().sql(f"{scan.select_sql} ORDER BY id").fetchall()
    assert rows == [(1, "m1", None), (2, "m2", 5)]


def test_jsonl_every_line_is_read_or_rejected(tmp_path: Path) -> None:
    url = _write(tmp_path, "date=2026-11-27/a.jsonl", MALFORMED_JSONL)
    table = _table("json", JSON_COLUMNS, partition_keys=[Column("date", "DATE")])
    scan = plan_raw_scan(table, [url], scan_id="j")
    con = duckdb.connect()

    rows = con.sql(f"{scan.select_sql} ORDER BY id").fetchall()
    rejects = con.sql(scan.rejects_sql).fetchall()

    data_lines = sum(1 for line in MALFORMED_JSONL.splitlines() if line.strip())
    assert len(rows) + len(rejects) == data_lines == 8
    day = date(2026, 11, 27)
    assert rows == [(1, 1.5, ["a"], day), (5, None, None, day), (7, None, None, day)]
    assert [(r[1], r[2], r[3]) for r in rejects] == [
        (2, "price", 'column "price": "abc" is not a DOUBLE'),
        (3, None, "invalid JSON"),
        (4, None, "not a JSON object"),
        (6, "id", 'column "id": 4.5 is not a BIGINT'),
        (8, "tags", 'column "tags": "x" is not a VARCHAR[]'),
    ]
    assert rejects[1][4] == '{"id": 3, "price": '
    assert _count(con, f"SELECT id FROM ({scan.select_sql})") == 3


def test_parquet_has_no_rejects(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    pq.write_table(pa.table({"id": pa.array([1, 2], pa.int32())}), buffer)
    url = _write(tmp_path, "site=7/p.parquet", buffer.getvalue())
    table = _table("parquet", [Column("id", "BIGINT")], partition_keys=[Column("site", "BIGINT")])
    scan = plan_raw_scan(table, [url], scan_id="p")
    con = duckdb.connect()
    rows = con.sql(f"SELECT id, typeof(id), site FROM ({scan.select_sql}) ORDER BY id").fetchall()
    assert rows == [(1, "BIGINT", 7), (2, "BIGINT", 7)]
    assert con.sql(scan.rejects_sql).fetchall() == []
    assert [d[0] for d in con.sql(scan.rejects_sql).description] == [
        "file",
        "line",
        "column_name",
        "reason",
        "raw_row",
    ]


def test_no_files_is_an_empty_typed_scan() -> None:
    scan = plan_raw_scan(_table("csv", CSV_COLUMNS), [], scan_id="e")
    con = duckdb.connect()
    relation = con.sql(scan.select_sql)
    assert relation.fetchall() == []
    assert relation.types == ["BIGINT", "VARCHAR", "DOUBLE", "TIMESTAMP"]
    assert con.sql(scan.rejects_sql).fetchall() == []
    assert scan.files == []


def test_scan_id_must_be_an_identifier() -> None:
    with pytest.raises(ValueError, match="scan_id"):
        plan_raw_scan(_table("csv", CSV_COLUMNS), ["/x.csv"], scan_id="a-b; drop")


def test_file_partitions_are_read_below_the_location_only() -> None:
    url = "/home/x=1/lake/raw/sales/date=2026-11-27/city=New%20York/f.csv"
    assert file_partitions(url, "raw/sales/") == {"date": "2026-11-27", "city": "New York"}


def test_raw_files(tmp_project: Project) -> None:
    store = tmp_project.store
    for key in (
        "sales/a.csv",
        "sales/date=2026-11-27/b.csv",
        "sales/other/c.csv",
        "sales/d.jsonl",
        "sales/_SUCCESS",
        "sales/_tmp/e.csv",
        "sales/.f.csv",
        "sales/old.csv",
    ):
        store.put("raw", key, b"id\n1\n")
    store.put("raw", "sales/empty.csv", b"")
    table = _table("csv", [Column("id", "BIGINT")], dialect={"nested": False, "exclude": ["old*"]})
    names = [u.split("/raw/sales/", 1)[1] for u in raw_files(store, table)]
    assert names == ["a.csv", "date=2026-11-27/b.csv"]
    nested = _table("csv", [Column("id", "BIGINT")])
    names = [u.split("/raw/sales/", 1)[1] for u in raw_files(store, nested)]
    assert names == ["a.csv", "date=2026-11-27/b.csv", "old.csv", "other/c.csv"]


def test_crawled_csv_reads_with_the_same_accounting(tmp_project: Project) -> None:
    tmp_project.store.put("raw", "sales/a.csv", MALFORMED_CSV.encode())
    run_crawler(tmp_project, "sales", CrawlerSection(path="raw/sales/"))
    table = tmp_project.catalog.raw_table(TableName("raw", "sales"))
    # "1.5", "2.5", …: exact decimals of scale 1, not floating point.
    assert table.columns == [
        Column("id", "BIGINT"),
        Column("machine", "VARCHAR"),
        Column("price", "DECIMAL(18,1)"),
        Column("sold_at", "TIMESTAMP"),
    ]
    scan: RawScan = plan_raw_scan(table, raw_files(tmp_project.store, table), scan_id="c")
    con = duckdb.connect()
    assert _count(con, scan.select_sql) == 21
    assert _count(con, scan.rejects_sql) == 5
