"""Golden files for the header vote: a first data row with an odd cell stays data."""

from __future__ import annotations

import pytest

from lakelet.crawler.messy.reader import read_csv_bytes


@pytest.mark.parametrize(
    "text",
    [
        "id,amt\n1,1.5\n2,2\n3,3\n4,4\n",
        "id,amt\n1,n/a\n2,2\n3,3\n4,4\n",
        "id,amt\n1,abc\n2,2\n3,3\n4,4\n",
        "id,amt\n1,1.5\n2,2.25\n3,3\n4,4\n5,5\n",
        "name,amt\nx,1.5\ny,2\nz,3\nw,4\n",
        "day,amt\n2024-01-05T10:00,x\n2024-01-06,2\n2024-01-07,3\n2024-01-08,4\n",
    ],
)
def test_a_first_data_row_with_an_odd_cell_is_not_a_header(text: str) -> None:
    header, *rows = [line.split(",") for line in text.splitlines()]
    (table,) = read_csv_bytes(text.encode()).tables
    assert table.header == header
    assert table.rows == rows


def test_a_header_with_a_null_token_cell_is_still_a_header() -> None:
    (table,) = read_csv_bytes(b"id,-,amt\n1,2,3\n4,5,6\n7,8,9\n10,11,12\n").tables
    assert table.header == ["id", "-", "amt"]
    assert len(table.rows) == 4


def test_two_header_rows_are_still_joined() -> None:
    text = "id,price,price\n,min,max\n1,2.5,3\n2,3.5,4\n3,4.5,5\n4,5.5,6\n"
    (table,) = read_csv_bytes(text.encode()).tables
    assert table.header == ["id", "price min", "price max"]
    assert len(table.rows) == 4
