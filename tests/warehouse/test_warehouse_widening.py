"""Which incoming types an existing column accepts: only conversions that keep values."""

from __future__ import annotations

import pytest

from lakelet.warehouse.widening import widens

ACCEPTED = [
    ("BIGINT", "BIGINT"),
    ("INTEGER", "BIGINT"),
    ("TINYINT", "HUGEINT"),
    ("UINTEGER", "BIGINT"),
    ("UTINYINT", "USMALLINT"),
    ("INTEGER", "DOUBLE"),
    ("INTEGER", "DECIMAL(12,2)"),
    ("BIGINT", "DECIMAL(19,0)"),
    ("FLOAT", "DOUBLE"),
    ("DECIMAL(5,1)", "DECIMAL(10,2)"),
    ("decimal(10,2)", "DECIMAL(10,2)"),
    ("TIMESTAMP_S", "TIMESTAMP"),
    ("TIMESTAMP_MS", "TIMESTAMP_NS"),
    ("TIME", "TIME_NS"),
    ("VARCHAR[]", "VARCHAR[]"),
]
REFUSED = [
    ("BIGINT", "INTEGER"),
    ("INTEGER", "UINTEGER"),  # negative values
    ("UBIGINT", "BIGINT"),  # large values
    ("UINTEGER", "INTEGER"),
    ("BIGINT", "DOUBLE"),  # above 2**53
    ("BIGINT", "DECIMAL(18,0)"),
    ("INTEGER", "DECIMAL(10,2)"),
    ("DOUBLE", "FLOAT"),
    ("DOUBLE", "BIGINT"),
    ("DOUBLE", "DECIMAL(38,10)"),
    ("DECIMAL(10,3)", "DECIMAL(10,2)"),  # scale
    ("DECIMAL(10,2)", "DECIMAL(10,4)"),  # integer digits
    ("DECIMAL(10,2)", "DOUBLE"),
    ("VARCHAR", "BIGINT"),
    ("BIGINT", "VARCHAR"),
    ("TIMESTAMP", "DATE"),
    ("DATE", "TIMESTAMP"),
    ("TIMESTAMP_NS", "TIMESTAMP"),
    ("TIMESTAMP", "TIMESTAMP WITH TIME ZONE"),
    ("TIME_NS", "TIME"),
    ("BIGINT[]", "VARCHAR[]"),
]


@pytest.mark.parametrize(("source", "target"), ACCEPTED)
def test_accepted(source: str, target: str) -> None:
    assert widens(source, target)


@pytest.mark.parametrize(("source", "target"), REFUSED)
def test_refused(source: str, target: str) -> None:
    assert not widens(source, target)
