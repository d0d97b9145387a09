"""Small CSV files read as one bundle give exactly the rows of reading each file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from lakelet.catalog.rawscan import csv_options, sql_literal
from lakelet.crawler.bundle import FILE_COLUMN, MIN_FILES, bundled_csv

COLUMNS = [("id", "VARCHAR"), ("name", "VARCHAR"), ("amount", "VARCHAR")]
DIALECT: dict[str, Any] = {"delimiter": ",", "quote": '"', "escape": '"', "header": True}

PLAIN = {
    "plain": b"id,name,amount\n1,a,1.5\n2,b,2.5\n",
    "crlf": b"id,name,amount\r\n3,c,3.5\r\n4,d,4.5\r\n",
    "no_final_newline": b"id,name,amount\n5,e,5.5",
    "bom": b"\xef\xbb\xbfid,name,amount\n6,f,6.5\n",
    "header_only": b"id,name,amount\n",
    "blank_lines": b"id,name,amount\n7,g,7.5\n\n8,h,8.5\n",
    "too_many_fields": b"id,name,amount\n9,i,9.5,extra\n10,j,10.5\n",
    "too_few_fields": b"id,name,amount\n11,k\n12,l,12.5\n",
    "empty_values": b"id,name,amount\n13,,\n",
}
ON_THEIR_OWN = {
    "quoted": b'id,name,amount\n14,"x, y",14.5\n',
    "bare_cr": b"id,name,amount\r15,m,15.5\r",
    "gzip": b"\x1f\x8b\x08\x00not really",
}


def _write(folder: Path, files: dict[str, bytes], copies: int) -> list[str]:
    urls = []
    for n in range(copies):
        for name, data in files.items():
            path = folder / f"{name}-{n}.csv"
            path.write_bytes(data)
            urls.append(str(path))
    return urls


def _one_by_one(con: Any, urls: list[str], dialect: dict[str, Any]) -> list[tuple[Any, ...]]:
    columns = ", ".join(f"{sql_literal(n)}: {sql_literal(t)}" for n, t in COLUMNS)
    rows: list[tuple[Any, ...]] = []
    for url in urls:
        rows += con.execute(
            f"SELECT {sql_literal(url)}, * FROM read_csv({sql_literal(url)}, "
            f"columns={{{columns}}}, {csv_options(dialect)}, ignore_errors=true)"
        ).fetchall()
    return sorted(rows, key=repr)


def test_bundle_reads_the_rows_each_file_gives(tmp_path: Path) -> None:
    urls = _write(tmp_path, PLAIN, copies=4)
    assert len(urls) >= MIN_FILES
    con = duckdb.connect()
    with bundled_csv(con, urls, COLUMNS, DIALECT) as bundle:
        assert bundle.sql is not None
        assert bundle.rest == []
        got = sorted(con.execute(bundle.sql).fetchall(), key=repr)
    assert got == _one_by_one(con, urls, DIALECT)
    assert any(row[1:] == ("13", None, None) for row in got)  # empty values stay NULL


def test_files_that_are_not_plain_lines_are_left_to_the_caller(tmp_path: Path) -> None:
    plain = _write(tmp_path, PLAIN, copies=4)
    odd = _write(tmp_path, ON_THEIR_OWN, copies=1)
    missing = str(tmp_path / "gone.csv")
    con = duckdb.connect()
    with bundled_csv(con, [*plain, *odd, missing, "s3://bucket/key.csv"], COLUMNS, DIALECT) as b:
        assert sorted(b.rest) == sorted([*odd, missing, "s3://bucket/key.csv"])
        files = {row[0] for row in con.execute(f"SELECT {FILE_COLUMN} FROM ({b.sql})").fetchall()}
    assert files <= set(plain)


def test_preamble_lines_are_skipped_per_file(tmp_path: Path) -> None:
    files = {"titled": b"Sales report\nid,name,amount\n1,a,1.5\n"}
    urls = _write(tmp_path, files, copies=MIN_FILES)
    dialect = {**DIALECT, "skip": 1}
    con = duckdb.connect()
    with bundled_csv(con, urls, COLUMNS, dialect) as bundle:
        assert bundle.sql is not None
        got = sorted(con.execute(bundle.sql).fetchall(), key=repr)
    assert got == _one_by_one(con, urls, dialect)
    assert len(got) == MIN_FILES


@pytest.mark.parametrize(
    ("count", "dialect", "columns"),
    [
        (MIN_FILES - 1, DIALECT, COLUMNS),  # too few files to pay off
        (MIN_FILES, {**DIALECT, "encoding": "utf-16"}, COLUMNS),
        (MIN_FILES, DIALECT, COLUMNS[:1]),  # one column: a blank line is a row
    ],
)
def test_no_bundle_when_it_would_not_read_the_same(
    tmp_path: Path, count: int, dialect: dict[str, Any], columns: list[tuple[str, str]]
) -> None:
    urls = _write(tmp_path, {"plain": PLAIN["plain"]}, copies=count)
    with bundled_csv(duckdb.connect(), urls, columns, dialect) as bundle:
        assert bundle.sql is None
        assert bundle.rest == urls


def test_the_bundle_file_is_removed_afterwards(tmp_path: Path) -> None:
    urls = _write(tmp_path, PLAIN, copies=4)
    with bundled_csv(duckdb.connect(), urls, COLUMNS, DIALECT) as bundle:
        assert bundle.sql is not None
        path = Path(bundle.sql.split("read_csv('", 1)[1].split("'", 1)[0])
        assert path.exists()
    assert not path.exists()
