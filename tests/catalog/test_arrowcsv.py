"""The Arrow read of CSV files returns exactly what the checked scan returns, or refuses.

Every case runs both readers on the same files: when the Arrow read does not refuse,
its rows (values and types, in order) must equal the checked scan's and the checked
scan must have rejected nothing.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from lakelet.catalog import Column, RawTable
from lakelet.catalog.rawscan import plan_raw_scan
from lakelet.catalog.rawscan.arrowcsv import ArrowReadRefused, plan_arrow_read

DIALECT = {"delimiter": ",", "quote": '"', "escape": '"', "header": True, "skip": 0}
TYPED = [
    Column("id", "BIGINT"),
    Column("price", "DECIMAL(18,2)"),
    Column("day", "DATE"),
    Column("at", "TIMESTAMP"),
    Column("ok", "BOOLEAN"),
    Column("ratio", "DOUBLE"),
    Column("note", "VARCHAR"),
]
HEADER = "id,price,day,at,ok,ratio,note\n"


def _table(columns: list[Column], dialect: dict[str, Any] | None = None, **kw: Any) -> RawTable:
    return RawTable("raw", "t", "raw/t/", "csv", columns, dialect=dialect or DIALECT, **kw)


def _files(tmp_path: Path, contents: dict[str, str | bytes]) -> list[str]:
    urls = []
    for name, content in contents.items():
        path = tmp_path / "lake" / "raw" / "t" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        data = content.encode() if isinstance(content, str) else content
        path.write_bytes(data)
        urls.append(str(path))
    return urls


def _checked(table: RawTable, urls: list[str]) -> tuple[pa.Table, list[Any]]:
    scan = plan_raw_scan(table, urls, scan_id="s")
    con = duckdb.connect()
    rows = con.sql(scan.select_sql).to_arrow_table()
    return rows, con.sql(scan.rejects_sql).fetchall()


def _arrow(table: RawTable, urls: list[str]) -> pa.Table | str:
    read = plan_arrow_read(table, urls)
    if isinstance(read, str):
        return f"declined: {read}"
    try:
        return pa.Table.from_batches(list(read.batches()), schema=read.schema)
    except ArrowReadRefused as refused:
        return f"refused: {refused}"


def _agree(table: RawTable, urls: list[str]) -> pa.Table | str:
    """The Arrow read's result, after checking it against the checked scan's."""
    ours = _arrow(table, urls)
    rows, rejects = _checked(table, urls)
    if isinstance(ours, pa.Table):
        assert rejects == [], "the Arrow read took rows the checked scan rejects"
        assert ours.schema.types == rows.schema.types
        assert ours.column_names == rows.column_names
        for mine, theirs in zip(ours.columns, rows.columns, strict=True):
            # compared as Arrow: year 0 has no Python date
            assert mine.combine_chunks().equals(theirs.combine_chunks()), (mine, theirs)
    return ours


CLEAN = (
    HEADER
    + "1,10.50,2026-11-27,2026-11-27 10:00:00,true,0.5,plain\n"
    + '2,-3,2026-01-01,2026-01-01T00:00:01.25,FALSE,1e-3,"quoted, with comma"\n'
    + '3,,,,,,"with ""inner"" quotes"\n'
    + '004, 7.1 ,NULL,N/A,Yes,-inf,"two\nlines"\n'
    + "5,0.00,2026-02-28,2026-02-28 23:59:59.999999,n,12345678.9,\n"
    + '6,1,2026-03-01,2026-03-01 00:00,t,+2.5,""\n'
    + "7,1.500,2026-03-02,,f,.5,spelled\n"
    + "8,1e3,2026-03-03,,F,5.,spelled\n"
    + "9,.5,2026-03-04,,N,1e3,spelled\n"
    + "10,5.,2026-03-05,,Y,-0,spelled\n"
)


def test_clean_file_reads_the_same_values_and_types(tmp_path: Path) -> None:
    table = _table(TYPED)
    ours = _agree(table, _files(tmp_path, {"a.csv": CLEAN}))
    assert isinstance(ours, pa.Table), ours
    assert ours.num_rows == 10
    notes = ours.column("note").to_pylist()
    assert notes[2:6] == ['with "inner" quotes', "two\nlines", None, None]
    assert ours.column("id").to_pylist() == list(range(1, 11))
    prices = ours.column("price").to_pylist()
    assert [str(p) for p in prices[6:]] == ["1.50", "1000.00", "0.50", "5.00"]


@pytest.mark.parametrize(
    "content",
    [
        HEADER.replace("\n", "\r\n") + "1,2.5,2026-11-27,2026-11-27 10:00:00,true,1,x\r\n",
        "\ufeff" + HEADER + "1,2.5,2026-11-27,2026-11-27 10:00:00,true,1,x",  # BOM, no end
        HEADER,  # header only
        HEADER + "\n1,2.5,2026-11-27,,,,x\n\n",  # blank lines
    ],
    ids=["crlf", "bom-no-final-newline", "header-only", "blank-lines"],
)
def test_layouts_read_the_same(tmp_path: Path, content: str) -> None:
    ours = _agree(_table(TYPED), _files(tmp_path, {"a.csv": content}))
    assert isinstance(ours, pa.Table), ours


def test_one_column_file_keeps_blank_lines_as_nulls(tmp_path: Path) -> None:
    table = _table([Column("note", "VARCHAR")])
    ours = _agree(table, _files(tmp_path, {"a.csv": "note\na\n\nb\n"}))
    assert isinstance(ours, pa.Table), ours
    assert ours.column("note").to_pylist() == ["a", None, "b"]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("0x1F,1,2026-11-27,,,,x", "hexadecimal"),
        ("\t7,1,2026-11-27,,,,x", "tab"),
        ("1,1,2026-11-27,2026-11-27 10,,,x", "without minutes"),
        ('1,1,2026-11-27,,,,"ab"c', "RFC 4180"),
        ('1,1,2026-11-27,,,,"a,"b', "RFC 4180"),
        ('1,1,2026-11-27,,,,"never closed', "RFC 4180"),
    ],
)
def test_values_pyarrow_reads_otherwise_refuse_the_file(
    tmp_path: Path, line: str, reason: str
) -> None:
    ours = _agree(_table(TYPED), _files(tmp_path, {"a.csv": HEADER + line + "\n"}))
    assert isinstance(ours, str) and reason in ours


@pytest.mark.parametrize(
    "line",
    [
        "1.5,1,2026-11-27,,,,x",  # not an integer: the checked scan rejects the row
        "1,1.234,2026-11-27,,,,x",  # more digits than the scale
        "1,1,2026-11-27 10:00:00,,,,x",  # a timestamp in a DATE column
        "1,1,2026-11-27,,maybe,,x",
        "1,1,2026-11-27,,,nan,x",  # a null token in lower case only for Lakelet
        "1,1,2026-11-27,,,,x,extra",  # too many fields
        "1,1",  # too few
    ],
)
def test_rows_the_checked_scan_rejects_are_refused(tmp_path: Path, line: str) -> None:
    table = _table(TYPED)
    urls = _files(tmp_path, {"a.csv": HEADER + "2,1,2026-11-27,,,,ok\n" + line + "\n"})
    ours = _arrow(table, urls)
    rows, rejects = _checked(table, urls)
    if line.endswith(",nan,x"):  # "nan" is a null token: both read NULL, nothing rejected
        assert rejects == [] and isinstance(ours, pa.Table)
        assert ours.to_pylist() == rows.to_pylist()
        return
    assert len(rejects) == 1
    assert isinstance(ours, str) and ours.startswith("refused")


@pytest.mark.parametrize(
    "note",
    [
        b"\xff\xfe",  # never in UTF-8
        b"\xc3",  # a character cut short
        b"\xc0\xaf",  # an overlong "/"
        b"\xed\xa0\x80",  # a UTF-16 surrogate
        b"\xf4\x90\x80\x80",  # past U+10FFFF
        b'"\x80 quoted"',
    ],
)
def test_text_that_is_not_utf8_is_refused_before_it_is_parsed(tmp_path: Path, note: bytes) -> None:
    """pyarrow's own UTF-8 check is off (the byte check does it in its pass): every
    malformed spelling must still refuse the file."""
    from lakelet.catalog.rawscan.divergence import Divergences, divergence

    urls = _files(tmp_path, {"a.csv": HEADER.encode() + b"1,1,2026-11-27,,,," + note + b"\n"})
    assert str(_arrow(_table(TYPED), urls)).startswith("refused")
    found = divergence(Path(urls[0]), quote='"', delimiter=",", kinds=Divergences())
    assert found == "bytes that are not UTF-8 text"


def test_utf8_text_of_every_length_reads_the_same(tmp_path: Path) -> None:
    notes = ["caf\u00e9", "\u20ac 5", "\u4e2d\u6587", "\U0001f600", "\ud7ff\ue000\U0010ffff"]
    lines = [f'{i},1,2026-11-27,,,,"{n}, {n}"\n{i},1,,,,,{n}' for i, n in enumerate(notes)]
    urls = _files(tmp_path, {"a.csv": HEADER + "\n".join(lines) + "\n"})
    ours = _agree(_table(TYPED), urls)
    assert isinstance(ours, pa.Table), ours
    assert ours.column("note").to_pylist()[-2:] == [f"{notes[-1]}, {notes[-1]}", notes[-1]]


def test_null_tokens_and_booleans_in_any_case(tmp_path: Path) -> None:
    lines = ["1,NuLl,nUlL,N/a,TrUe,nAn,NULL", "2,-,--,#N/A,yEs,None,n/a"]
    ours = _agree(_table(TYPED), _files(tmp_path, {"a.csv": HEADER + "\n".join(lines) + "\n"}))
    assert isinstance(ours, pa.Table), ours
    assert ours.column("price").to_pylist() == [None, None]
    assert ours.column("ok").to_pylist() == [True, True]
    assert ours.column("note").to_pylist() == ["NULL", "n/a"]  # text stays text


# generated values: whatever pyarrow accepts in a file the check lets through must be
# what Lakelet's conversion makes of it
VALUES = [
    *("0", "-0", "+7", " 7 ", "007", "1,000", "1_000", "0x1f", "1.5", "1.0", "1.", ".5"),
    *("1.50", "1.500", "1e3", "1E-2", "+.5", "-.5", "inf", "-Infinity", "NaN", " nan"),
    *("9223372036854775807", "9223372036854775808", "99999999999999999.99", "1e400"),
    *("12345678901234567.5", "1234567890123456.5"),  # one digit past DECIMAL(18,2), and in
    *("2026-11-27", "2026-1-1", " 2026-11-27", "0000-01-01", "9999-12-31", "2026-02-30"),
    *("2026-11-27 10:00:00", "2026-11-27T10:00", "2026-11-27 10", "2026-11-27 10:00:00Z"),
    *("2026-11-27 10:00:00.123456", "2026-11-27 10:00:00.1234567", "2026-11-27 24:00:00"),
    *("true", "T", "yes", "Y", "false", "F", "no", "N", "1", "maybe", "tRuE"),
    *("", "null", "N/A", "-", "--", "none", "#n/a", "nil"),
]


def _one_value_csv(value: str, key: int) -> str:
    quoted = '"' + value.replace('"', '""') + '"'
    return f"v,k\n{quoted},{key}\n"


@pytest.mark.parametrize(
    "column",
    [Column("v", t) for t in ("BIGINT", "INTEGER", "DECIMAL(18,2)", "DOUBLE")]
    + [Column("v", t) for t in ("DATE", "TIMESTAMP", "BOOLEAN", "VARCHAR")],
    ids=lambda c: c.type,
)
def test_generated_values_agree_or_refuse(tmp_path: Path, column: Column) -> None:
    table = _table([column, Column("k", "BIGINT")])
    urls = [
        _files(tmp_path / str(k), {"a.csv": _one_value_csv(value, k)})[0]
        for k, value in enumerate(VALUES)
    ]
    scan = plan_raw_scan(table, urls, scan_id="s")  # one scan of every file, keyed by k
    con = duckdb.connect()
    checked = con.sql(scan.select_sql).to_arrow_table()
    assert scan.counts_sql is not None and scan.structural_sql is not None
    rejected = {str(f) for f, _, failed in con.sql(scan.counts_sql).fetchall() if failed}
    rejected |= {str(row[0]) for row in con.sql(scan.structural_sql).fetchall()}
    by_key = {row["k"]: i for i, row in enumerate(checked.select(["k"]).to_pylist())}
    agreed = 0
    for k, url in enumerate(urls):
        ours = _arrow(table, [url])
        if isinstance(ours, str):
            continue
        assert url not in rejected, f"{VALUES[k]!r}: the checked scan rejects it"
        theirs = checked.slice(by_key[k], 1)
        mine, expected = ours.column("v").combine_chunks(), theirs.column("v").combine_chunks()
        assert mine.equals(expected), (VALUES[k], mine, expected)
        agreed += 1
    assert agreed >= 10  # the check refuses the odd values, not the plain ones


def test_partition_values_and_missing_columns(tmp_path: Path) -> None:
    only_id = ["day=2026-11-27/region=eu/a.csv", "day=2026-11-28/region=us/b.csv"]
    table = _table(
        [Column("id", "BIGINT"), Column("extra", "VARCHAR")],
        {**DIALECT, "layouts": [{"files": only_id, "columns": ["id"]}]},
        partition_keys=[Column("day", "DATE"), Column("region", "VARCHAR")],
    )
    urls = _files(
        tmp_path,
        {
            "day=2026-11-27/region=eu/a.csv": "id\n1\n2\n",
            "day=2026-11-28/region=us/b.csv": "id\n3\n",
        },
    )
    ours = _agree(table, urls)
    assert isinstance(ours, pa.Table), ours
    assert ours.column("extra").null_count == 3
    assert [str(d) for d in ours.column("day").to_pylist()] == ["2026-11-27"] * 2 + ["2026-11-28"]


@pytest.mark.parametrize(
    ("dialect", "reason"),
    [
        ({**DIALECT, "comment": "#"}, "comment"),
        ({**DIALECT, "skip": 2}, "lines above the header"),
        ({**DIALECT, "escape": "\\"}, "escaped by another"),
        ({**DIALECT, "encoding": "latin-1"}, "latin-1"),
    ],
)
def test_dialects_only_duckdb_reads_are_declined(
    tmp_path: Path, dialect: dict[str, Any], reason: str
) -> None:
    read = plan_arrow_read(_table(TYPED, dialect), _files(tmp_path, {"a.csv": HEADER}))
    assert isinstance(read, str) and reason in read


def test_formats_only_duckdb_converts_are_declined(tmp_path: Path) -> None:
    dialect = {**DIALECT, "types": {"price": {"format": "currency", "currency": "$"}}}
    read = plan_arrow_read(_table(TYPED, dialect), _files(tmp_path, {"a.csv": HEADER}))
    assert isinstance(read, str) and "price" in read
    gz = plan_arrow_read(_table(TYPED), _files(tmp_path, {"a.csv.gz": b""}))
    assert gz == "compressed files"


@pytest.mark.parametrize(
    ("text", "refused"),
    [
        ("a,b\n1,2\n", False),
        ('a,b\n"x, y","say ""hi"""\n', False),
        ('a,b\n"multi\nline",2\r\n', False),
        ("a,b\n100,0\n00,0.5\n", False),
        ('a,b\nab"c,2\n', False),  # a quote inside an unquoted value: both read it as is
        ('a,b\n"ab"c,2\n', True),
        ('a,b\n"a,"b,2\n', True),  # the closing quote after a delimiter inside the value
        ('a,b\n"open,2\n', True),
        ("a,b\n0x1F,2\n", True),
        ("a,b\n00X1,2\n", True),
        ('a,b\n"0x",2\n', True),  # conservative: 0x in any text
        ('a,b\n"0""x",2\n', False),
        ("a,b\n1,\t2\n", True),
        ("\ufeffa,b\n1,2", False),
    ],
)
def test_the_byte_check_accepts_what_both_readers_read_alike(
    tmp_path: Path, text: str, refused: bool
) -> None:
    from lakelet.catalog.rawscan.divergence import Divergences, divergence

    (url,) = _files(tmp_path, {"a.csv": text})
    kinds = Divergences(integers=True, trimmed=True)
    found = divergence(Path(url), quote='"', delimiter=",", kinds=kinds)
    assert (found is not None) == refused, found


def test_small_pieces_read_the_same_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lakelet.catalog.rawscan import divergence

    monkeypatch.setattr(divergence, "PIECE_BYTES", 48)  # cuts inside quoted values too
    table = _table(TYPED)
    urls = _files(tmp_path, {"a.csv": CLEAN, "b.csv": CLEAN.replace("\n", "\r\n")})
    read = plan_arrow_read(table, urls)
    assert not isinstance(read, str)
    pieces = list(read.pieces())
    assert len(pieces) > 4 and pieces[0].start == 0
    for before, after in itertools.pairwise(pieces):
        assert after.start in (0, before.end)  # contiguous, each file from its start
    ours = _agree(table, urls)
    assert isinstance(ours, pa.Table) and ours.num_rows == 20


def test_first_and_last_pieces_are_cut_finer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lakelet.catalog.rawscan import divergence

    monkeypatch.setattr(divergence, "PIECE_BYTES", 800)
    line = b"12345,abcdefghij,2026-11-27\n"  # 28 bytes
    path = tmp_path / "a.csv"
    path.write_bytes(line * 1000)  # 28,000 bytes
    kinds = divergence.Divergences(integers=True)
    ranges = list(divergence.checked_ranges(path, quote='"', delimiter=",", kinds=kinds))
    sizes = [end - start for start, end in ranges]
    assert ranges[0][0] == 0 and ranges[-1][1] == 28_000
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))  # contiguous
    assert all(size % len(line) == 0 for size in sizes)  # whole lines
    assert sizes[0] <= 100 + len(line)  # an eighth: readers start at once
    tail = [s for (start, _), s in zip(ranges, sizes, strict=True) if start >= 28_000 - 4 * 800]
    assert len(tail) >= 4 * 800 // (100 + len(line)) and max(tail) <= 100 + len(line)
    middle = sizes[1 : len(sizes) - len(tail)]
    assert middle and min(middle) >= 800  # whole pieces in between
