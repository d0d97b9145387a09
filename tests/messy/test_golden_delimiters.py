"""Golden files where a candidate delimiter also occurs inside values (times, timestamps,
decimal commas): the delimiter that keeps the values whole must win, and a file really
delimited by that character must still be read with it."""

from __future__ import annotations

from lakelet.crawler.messy.dialect import score
from lakelet.crawler.messy.parse import Dialect
from lakelet.crawler.messy.reader import ReadResult, read_csv_bytes

SALES_HEADER = ["id", "machine", "price", "sold_at"]
SALES_GOOD = [[str(i), f"m{i}", f"{i}.5", "2026-11-27 10:00:00"] for i in range(1, 21)]
SALES = (
    "id,machine,price,sold_at\n"
    + "".join(",".join(row) + "\n" for row in SALES_GOOD)
    + "21,m21,1.0,2026-11-27 10:00:00,extra\n"  # line 22: too many fields
    + "22,m22\n"  # line 23: too few fields
    + "23,m23,abc,2026-11-27 10:00:00\n"  # line 24: a bad value, but 4 fields
    + "24,m24,2.0,2026-11-27 10:00:00\n"
    + '25,"m25,1.0,2026-11-27 10:00:00\n'  # line 26: unterminated quote
    + "26,m26,3.0,2026-11-27 10:00:00\n"
)


def read(text: str) -> ReadResult:
    return read_csv_bytes(text.encode())


def test_timestamps_with_a_few_bad_rows_are_comma_delimited() -> None:
    result = read(SALES)
    assert result.dialect.delimiter == ","
    assert result.detection.width == 4
    [table] = result.tables
    assert table.header == SALES_HEADER
    assert table.preamble == []
    assert table.rows[:20] == SALES_GOOD
    assert [row[0] for row in table.rows[20:]] == ["23", "24", "25", "26"]
    assert table.rows[22] == ["25", '"m25', "1.0", "2026-11-27 10:00:00"]
    assert [(r.line, r.reason) for r in table.rejects] == [
        (22, "5 fields where the table has 4"),
        (23, "2 fields where the table has 4"),
    ]
    assert result.repaired_lines == [26]


def test_cutting_a_timestamp_apart_does_not_make_it_value_like() -> None:
    comma = score(SALES, Dialect(","))
    colon = score(SALES, Dialect(":"))
    assert colon.pattern > comma.pattern  # ':' alone gives more regular rows here …
    assert comma.score > colon.score  # … but ',' keeps the timestamps whole


def test_times_only_with_a_header_and_stray_rows() -> None:
    rows = [[f"{h:02d}:15", f"{h + 1:02d}:30"] for h in range(8, 18)]
    lines = [",".join(r) for r in rows]
    lines[5:5] = ["18:00", "19:00,20:00,21:00"]  # lines 7 and 8
    text = "start,end\n" + "".join(line + "\n" for line in lines)
    result = read(text)
    assert result.dialect.delimiter == ","
    [table] = result.tables
    assert table.header == ["start", "end"]
    assert table.rows == rows
    assert [r.line for r in table.rejects] == [7, 8]


def test_times_without_a_header_keep_their_colons() -> None:
    # read with ':' the rows are more regular (09 | 15,10 | 30) and look like numbers
    rows = [["09:15", "10:30:05"], ["11:00", "12:45:10"], ["13:05", "14:20:00"]]
    result = read("".join(",".join(r) + "\n" for r in rows))
    assert result.dialect.delimiter == ","
    assert "part of the values" in result.detection.dialect.reason
    assert (result.tables[0].has_header, result.tables[0].rows) == (False, rows)


def test_colons_of_urls_are_not_delimiters() -> None:
    rows = [[f"https://example.com:8080/p{i}", f"ftp://files.example.com/{i}"] for i in range(5)]
    result = read("".join(",".join(r) + "\n" for r in rows))
    assert result.dialect.delimiter == ","
    assert result.tables[0].rows == rows


PASSWD = [
    ["root", "x", "0", "0", "root", "/root", "/bin/bash"],
    ["daemon", "x", "1", "1", "daemon", "/usr/sbin", "/usr/sbin/nologin"],
    ["bin", "x", "2", "2", "bin", "/bin", "/usr/sbin/nologin"],
    ["john", "x", "1000", "1000", "John Doe,,,", "/home/john", "/bin/bash"],
    ["mary", "x", "1001", "1001", "Mary Roe,Room 12,,", "/home/mary", "/bin/zsh"],
    ["www", "x", "33", "33", "www-data", "/var/www", "/usr/sbin/nologin"],
]


def test_colon_delimited_file_stays_colon_delimited() -> None:
    lines = [":".join(r) for r in PASSWD]
    lines.insert(3, "broken:x:1002")  # line 4
    text = "".join(line + "\n" for line in lines)
    result = read(text)
    assert result.dialect.delimiter == ":"
    [table] = result.tables
    assert not table.has_header
    assert table.rows == PASSWD
    assert [(r.line, r.reason) for r in table.rejects] == [(4, "3 fields where the table has 7")]


def test_colon_delimited_with_a_header_and_decimal_numbers() -> None:
    rows = [[str(i), f"{i}.25", f"1{i}.5"] for i in range(1, 9)]
    text = "id:low:high\n" + "".join(":".join(r) + "\n" for r in rows)
    result = read(text)
    assert result.dialect.delimiter == ":"
    assert (result.tables[0].header, result.tables[0].rows) == (["id", "low", "high"], rows)


def test_semicolons_with_decimal_commas_times_and_timestamps() -> None:
    rows = [
        [
            str(i),
            f"{i},{i * 7 % 100:02d}",
            f"{8 + i % 9:02d}:{i * 5 % 60:02d}",
            f"2026-11-{i:02d} 10:{i:02d}:00",
        ]
        for i in range(1, 15)
    ]
    lines = [";".join(r) for r in rows]
    lines[7:7] = ["15;2,5", "16;1,0;09:00;2026-11-27 10:00:00;x"]  # lines 9 and 10
    text = "id;price;opened;sold_at\n" + "".join(line + "\n" for line in lines)
    result = read(text)
    assert result.dialect.delimiter == ";"
    [table] = result.tables
    assert table.header == ["id", "price", "opened", "sold_at"]
    assert table.rows == rows
    assert [r.line for r in table.rejects] == [9, 10]
