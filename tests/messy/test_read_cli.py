"""`lakelet read`: RFC 4180 output, --out-dir naming, --explain, and crawler agreement."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import duckdb
import pytest

from lakelet.cli.main import main
from lakelet.crawler.csv import HEAD_BYTES, infer_csv

MESSY = "Report,,\n,,\nid;day;qty\n".replace(";", ",") + "1,2024-01-05,3\n2,2024-01-06,4\n"


def test_read_writes_rfc4180_to_stdout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes('x;y\r\n1;"a;b"\r\n2;c\r\n'.encode("utf-16"))
    assert main(["read", str(path)]) == 0
    out = capsys.readouterr().out
    assert list(csv.reader(io.StringIO(out))) == [["x", "y"], ["1", "a;b"], ["2", "c"]]


def test_out_dir_names_each_table(tmp_path: Path) -> None:
    path = tmp_path / "two.csv"
    path.write_text("a,b\n1,2\n3,4\na,b\n5,6\n")
    assert main(["read", str(path), "--out-dir", str(tmp_path / "out")]) == 0
    first = (tmp_path / "out" / "two_converted.csv").read_bytes().decode()
    second = (tmp_path / "out" / "two_converted_2.csv").read_bytes().decode()
    assert first == '"a","b"\n"1","2"\n"3","4"\n'.replace("\n", "\r\n")
    assert second == '"a","b"\n"5","6"\n'.replace("\n", "\r\n")


def test_headerless_file_gets_names_unless_told_not_to(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "h.csv"
    path.write_text("1,2024-01-05\n2,2024-01-06\n3,2024-01-07\n")
    assert main(["read", str(path)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == '"col_0","col_1"'
    assert main(["read", "--no-generated-header", str(path)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == '"1","2024-01-05"'


def test_explain_names_the_decisions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "m.csv"
    path.write_text(MESSY + "3,2024-01-07\n4,2024-01-08,5\n")
    assert main(["read", "--explain", str(path)]) == 0
    err = capsys.readouterr().err
    for expected in ("encoding: utf-8", "delimiter ','", "preamble: 2 line(s)", "header: 1 row"):
        assert expected in err
    assert "reject line 6: 2 fields where the table has 3" in err


def test_missing_file_is_a_user_error(tmp_path: Path) -> None:
    assert main(["read", str(tmp_path / "nope.csv")]) == 2


def test_crawler_reads_the_same_table(tmp_path: Path) -> None:
    """The crawler's dialect makes DuckDB read exactly the rows `lakelet read` finds."""
    path = tmp_path / "m.csv"
    data = ("Café\n" + "h1,h2,h3\nu1,u2,u3\n" + "1,2024-01-05,3\n2,2024-01-06,4\n").encode("cp1252")
    path.write_bytes(data)
    con: Any = duckdb.connect()
    schema = infer_csv(con, str(path), data[:HEAD_BYTES], len(data))
    assert [f.name for f in schema.fields] == ["h1 u1", "h2 u2", "h3 u3"]
    assert (schema.dialect["skip"], schema.dialect["header"]) == (2, True)
    assert schema.dialect["encoding"] == "latin-1"
    from lakelet.catalog.rawscan import csv_options

    columns = ", ".join(f"'{f.name}': 'VARCHAR'" for f in schema.fields)
    rows = con.execute(
        f"SELECT * FROM read_csv('{path}', columns={{{columns}}}, {csv_options(schema.dialect)})"
    ).fetchall()
    assert rows == [("1", "2024-01-05", "3"), ("2", "2024-01-06", "4")]
