"""Type widening, the majority rule, partitions, grouping and diffs (no I/O)."""

from __future__ import annotations

import pytest

from lakelet.catalog.raw import Column, RawTable
from lakelet.crawler.diff import TypeChange, diff_tables
from lakelet.crawler.files import DataFile
from lakelet.crawler.grouping import group_files, split_by_format
from lakelet.crawler.partitions import partition_columns, path_partitions, value_type
from lakelet.crawler.schema import Field, majority_type, merge_fields, widen


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("BIGINT", "BIGINT", "BIGINT"),
        ("BIGINT", "DOUBLE", "DOUBLE"),
        ("INTEGER", "BIGINT", "BIGINT"),
        ("TINYINT", "SMALLINT", "SMALLINT"),
        ("UINTEGER", "INTEGER", "BIGINT"),
        ("DECIMAL(10,2)", "BIGINT", "DOUBLE"),
        ("DATE", "TIMESTAMP", "TIMESTAMP"),
        ("BIGINT", "VARCHAR", "VARCHAR"),
        ("DATE", "BIGINT", "VARCHAR"),
        ("BOOLEAN", "BIGINT", "VARCHAR"),
        (None, "DATE", "DATE"),
        ("DATE", None, "DATE"),
        (None, None, None),
    ],
)
def test_widen(a: str | None, b: str | None, expected: str | None) -> None:
    assert widen(a, b) == expected
    assert widen(b, a) == expected


def test_merge_fields_by_name_in_first_appearance_order() -> None:
    merged = merge_fields(
        [
            [Field("id", "BIGINT"), Field("price", "BIGINT"), Field("note", None)],
            [Field("ID", "BIGINT"), Field("price", "DOUBLE"), Field("qty", "BIGINT")],
            [Field("note", "VARCHAR")],
        ]
    )
    assert merged == [
        Field("id", "BIGINT"),
        Field("price", "DOUBLE"),
        Field("note", "VARCHAR"),
        Field("qty", "BIGINT"),
    ]


def test_majority_rule() -> None:
    # 1 % may fail in a large sample ...
    assert majority_type(1000, {"BIGINT": 990, "DOUBLE": 995}) == "BIGINT"
    assert majority_type(1000, {"BIGINT": 980, "DOUBLE": 995}) == "DOUBLE"
    # ... one stray value is tolerated in a small one, if 90 % still cast ...
    assert majority_type(10, {"DOUBLE": 9}) == "DOUBLE"
    assert majority_type(6, {"DOUBLE": 5}) is None
    # ... and a column without values has no type to give.
    assert majority_type(0, {"DOUBLE": 0}) is None


def test_path_partitions_are_decoded() -> None:
    assert path_partitions("date=2026-11-27/city=New%20York/f.csv") == [
        ("date", "2026-11-27"),
        ("city", "New York"),
    ]
    assert path_partitions("date=__HIVE_DEFAULT_PARTITION__/f.csv") == [("date", None)]
    # other folder levels are Glue's partition_N, N the level below the table
    assert path_partitions("2026/month=11/f.csv") == [("partition_0", "2026"), ("month", "11")]


def test_partition_types() -> None:
    assert value_type(["1", "02", "-3"]) == "BIGINT"
    assert value_type(["2026-11-27", None]) == "DATE"
    assert value_type(["2026-02-30"]) == "VARCHAR"
    assert value_type(["2026-11-27", "x"]) == "VARCHAR"
    assert partition_columns(
        ["date=2026-11-27/m=1/a.csv", "date=2026-11-28/m=2/b.csv", "date=2026-11-28/c.csv"]
    ) == [Column("date", "DATE"), Column("m", "BIGINT")]


def _file(relative: str, fmt: str = "csv") -> DataFile:
    key = f"sales/{relative}"
    return DataFile("raw", key, relative, f"/lake/raw/{key}", 10, fmt)


def test_grouping_by_sub_folder() -> None:
    files = [
        _file("a.csv"),
        _file("date=2026-11-27/b.csv"),
        _file("machines/m.csv"),
        _file("machines/2026/n.csv"),
        _file("Refunds-2026/r.jsonl", "json"),
    ]
    groups = group_files("raw", "sales/", files)
    summary = [(g.name, g.location, g.nested, [f.relative for f in g.files]) for g in groups]
    assert summary == [
        ("sales", "raw/sales/", False, ["a.csv", "date=2026-11-27/b.csv"]),
        ("refunds_2026", "raw/sales/Refunds-2026/", True, ["Refunds-2026/r.jsonl"]),
        ("machines", "raw/sales/machines/", True, ["machines/m.csv", "machines/2026/n.csv"]),
    ]


def test_bucket_root_table_is_named_after_the_bucket() -> None:
    files = [DataFile("raw", "x.csv", "x.csv", "/lake/raw/x.csv", 1, "csv")]
    assert [g.name for g in group_files("raw", "", files)] == ["raw"]


def test_mixed_formats_split_with_a_suffix() -> None:
    (group,) = group_files(
        "raw", "sales/", [_file("a.csv"), _file("b.csv"), _file("c.jsonl", "json")]
    )
    split = [(fmt, g.name, len(g.files)) for fmt, g in split_by_format(group, None)]
    assert split == [("csv", "sales", 2), ("json", "sales_json", 1)]
    # the format the table already has keeps the plain name, even when outnumbered
    kept = [(fmt, g.name) for fmt, g in split_by_format(group, "json")]
    assert kept == [("json", "sales"), ("csv", "sales_csv")]


def _table(columns: list[Column], partitions: list[Column], **dialect: object) -> RawTable:
    return RawTable("raw", "sales", "raw/sales/", "csv", columns, partitions, dialect=dialect)


def test_diff_of_two_versions() -> None:
    old = _table([Column("id", "BIGINT"), Column("price", "BIGINT"), Column("gone", "VARCHAR")], [])
    new = _table(
        [Column("id", "BIGINT"), Column("price", "DOUBLE"), Column("qty", "BIGINT")],
        [Column("date", "DATE")],
        delimiter=";",
    )
    diff = diff_tables(old, new)
    assert diff.columns.added == [Column("qty", "BIGINT")]
    assert diff.columns.removed == [Column("gone", "VARCHAR")]
    assert diff.columns.changed == [TypeChange("price", "BIGINT", "DOUBLE")]
    assert diff.partition_keys.added == [Column("date", "DATE")]
    assert diff.settings == ["dialect.delimiter"]
    assert diff.summary() == (
        "+qty BIGINT; -gone; price BIGINT→DOUBLE; partition +date DATE; dialect.delimiter changed"
    )
    assert diff_tables(new, new).is_empty
