"""Streaming a query's rows into an Iceberg table: Parquet files plus one commit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from lakelet.catalog import Column, RawTable, TableName
from lakelet.catalog.bulk import DEFAULT_FILE_BYTES, BulkUnsupported, write_query
from lakelet.catalog.catalog import WriteMode, WriteResult
from lakelet.errors import ConflictError, TableSchemaError
from lakelet.jobs import query
from lakelet.project import Project

T = TableName("curated", "t")
TYPED = """
SELECT range AS id, 'n' || range AS name, CAST(range AS TINYINT) AS small,
       CAST(range * 1.25 AS DECIMAL(18,2)) AS price, range / 3 AS ratio,
       DATE '2026-11-27' + CAST(range AS INTEGER) AS day,
       TIMESTAMP '2026-11-27 10:00:00' AS at, range % 2 = 0 AS even,
       CAST(range AS HUGEINT) AS big, [range, range + 1] AS pair,
       {'k': range, 'v': 'x'} AS rec, MAP {'a': range} AS m, '\\x01'::BLOB AS raw
FROM range(5)
"""


def _write(
    project: Project,
    sql: str,
    mode: WriteMode = "append",
    *,
    properties: dict[str, str] | None = None,
    file_bytes: int = DEFAULT_FILE_BYTES,
) -> WriteResult:
    con = duckdb.connect()
    return write_query(
        project.catalog,
        project.store,
        T,
        con,
        sql,
        mode,
        properties=properties,
        file_bytes=file_bytes,
    )


def _rows(project: Project, sql: str = "SELECT * FROM curated.t ORDER BY ALL") -> list[Any]:
    return list(query(project, sql).to_pylist())


def _data_files(project: Project) -> list[Path]:
    return sorted((Path(project.store.root) / "curated" / "t" / "data").rglob("*.parquet"))


def test_rows_and_types_are_what_catalog_write_makes(tmp_project: Project) -> None:
    result = _write(tmp_project, TYPED, "overwrite", properties={"lakelet.run": "r1"})
    relation = duckdb.connect().sql(TYPED)
    assert relation is not None
    expected = relation.to_arrow_table()
    other = TableName("curated", "via_arrow")
    tmp_project.catalog.write(other, expected, "overwrite")

    assert result.rows == 5 and result.created
    assert _rows(tmp_project) == _rows(tmp_project, "SELECT * FROM curated.via_arrow ORDER BY ALL")
    ours = tmp_project.catalog.load_iceberg(T)
    theirs = tmp_project.catalog.load_iceberg(other)
    assert [(f.name, str(f.field_type)) for f in ours.schema().fields] == [
        (f.name, str(f.field_type)) for f in theirs.schema().fields
    ]
    assert tmp_project.catalog.read_arrow(T).sort_by("id").to_pylist() == (
        expected.sort_by("id").to_pylist()
    )
    snapshot = ours.current_snapshot()
    assert snapshot.snapshot_id == result.snapshot_id
    assert snapshot.summary["lakelet.run"] == "r1"
    assert all(str(p).startswith(ours.location()) for p in _data_files(tmp_project))


def test_append_adds_columns_and_overwrite_drops_them(tmp_project: Project) -> None:
    _write(tmp_project, "SELECT 1 AS a, 'x' AS b")
    _write(tmp_project, "SELECT 2 AS a, 1.5 AS c")
    assert _rows(tmp_project) == [
        {"a": 1, "b": "x", "c": None},
        {"a": 2, "b": None, "c": 1.5},
    ]
    _write(tmp_project, "SELECT 3 AS a", "overwrite")
    assert _rows(tmp_project) == [{"a": 3}]
    assert [f.name for f in tmp_project.catalog.load_iceberg(T).schema().fields] == ["a"]
    assert len(tmp_project.catalog.read_arrow(T)) == 1


def test_a_large_result_is_split_into_files(tmp_project: Project) -> None:
    sql = "SELECT range AS id, md5(CAST(range AS VARCHAR)) AS h FROM range(200000)"
    result = _write(tmp_project, sql, "overwrite", file_bytes=1_000_000)
    assert result.rows == 200_000
    assert len(_data_files(tmp_project)) > 1
    counted = _rows(tmp_project, "SELECT count(*) AS n, count(DISTINCT id) AS d FROM curated.t")
    assert counted == [{"n": 200_000, "d": 200_000}]
    tables = tmp_project.catalog.load_iceberg(T).scan().plan_files()
    assert sum(task.file.record_count for task in tables) == 200_000


def test_an_empty_result_commits_no_files(tmp_project: Project) -> None:
    _write(tmp_project, "SELECT 1 AS a")
    result = _write(tmp_project, "SELECT 2 AS a WHERE false")
    assert result.rows == 0 and _rows(tmp_project) == [{"a": 1}]
    _write(tmp_project, "SELECT 2 AS a WHERE false", "overwrite")
    assert _rows(tmp_project) == []
    assert len(_data_files(tmp_project)) == 1  # the first file, no longer in the table


def test_a_query_failing_midway_writes_nothing(tmp_project: Project) -> None:
    failing = "SELECT CAST(x AS INTEGER) AS a FROM (VALUES ('1'), ('2'), ('x')) AS v(x)"
    with pytest.raises(duckdb.ConversionException):
        _write(tmp_project, failing)
    assert tmp_project.catalog.kind(T) is None
    _write(tmp_project, "SELECT 1 AS a")
    with pytest.raises(duckdb.ConversionException):
        _write(tmp_project, failing, "overwrite")
    assert _rows(tmp_project) == [{"a": 1}]
    assert len(_data_files(tmp_project)) == 1


def test_a_type_iceberg_cannot_widen_fails_and_leaves_the_table(tmp_project: Project) -> None:
    _write(tmp_project, "SELECT 1 AS a")
    with pytest.raises(TableSchemaError, match=r"cannot write to curated\.t"):
        _write(tmp_project, "SELECT 'x' AS a")
    assert _rows(tmp_project) == [{"a": 1}]
    assert len(_data_files(tmp_project)) == 1


def test_names_equal_but_for_case_are_refused(tmp_project: Project) -> None:
    with pytest.raises(TableSchemaError, match="differ only in case"):
        _write(tmp_project, 'SELECT 1 AS a, 2 AS "A"')
    assert tmp_project.catalog.kind(T) is None


@pytest.mark.parametrize(
    "sql",
    [
        'SELECT 1 AS "my col"',
        "SELECT CAST(1 AS UTINYINT) AS u",
        "SELECT INTERVAL 1 DAY AS i",
        "SELECT {'a b': 1} AS s",
        "SELECT CAST(now() AS TIMESTAMP_NS) AS t",
    ],
)
def test_results_plain_parquet_cannot_hold_are_left_to_catalog_write(
    tmp_project: Project, sql: str
) -> None:
    with pytest.raises(BulkUnsupported):
        _write(tmp_project, sql)
    assert tmp_project.catalog.kind(T) is None
    assert not (Path(tmp_project.store.root) / "curated" / "t").exists()


def test_a_raw_table_is_not_written(tmp_project: Project) -> None:
    raw = RawTable("curated", "t", "raw/t/", "csv", [Column("a", "BIGINT")])
    tmp_project.catalog.register_raw(raw)
    with pytest.raises(ConflictError):
        _write(tmp_project, "SELECT 1 AS a")


def test_appends_to_a_table_catalog_write_made(tmp_project: Project) -> None:
    tmp_project.catalog.write(T, pa.table({"a": [1], "weird name": ["x"]}), "overwrite")
    with pytest.raises(BulkUnsupported):
        _write(tmp_project, "SELECT 2 AS a, 'y' AS \"weird name\"")
    _write(tmp_project, "SELECT 2 AS a")
    rows = query(tmp_project, 'SELECT a, "weird name" AS w FROM curated.t ORDER BY a')
    assert rows.to_pylist() == [{"a": 1, "w": "x"}, {"a": 2, "w": None}]
    assert sorted(tmp_project.catalog.read_arrow(T).column("a").to_pylist()) == [1, 2]


def test_a_name_given_twice_is_refused(tmp_project: Project) -> None:
    with pytest.raises(TableSchemaError, match="two columns are named 'a'"):
        _write(tmp_project, "SELECT 1 AS a, 2 AS a")
    assert tmp_project.catalog.kind(T) is None


def test_a_check_failing_before_the_commit_leaves_nothing(tmp_project: Project) -> None:
    def late(rows: int) -> None:
        raise TimeoutError("past the deadline")

    with pytest.raises(TimeoutError):
        write_query(
            tmp_project.catalog,
            tmp_project.store,
            T,
            duckdb.connect(),
            "SELECT 1 AS a",
            "append",
            before_commit=late,
        )
    assert tmp_project.catalog.kind(T) is None
    assert _data_files(tmp_project) == []


def test_parallel_writers_make_full_row_groups(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyarrow.parquet as pq

    from lakelet.catalog import writers

    monkeypatch.setattr(writers, "ROW_GROUP_ROWS", 100)
    schema = pa.schema([("task", pa.int64()), ("n", pa.int64())])

    def batches(task: int) -> list[pa.RecordBatch]:  # 3 batches of 70 rows per task
        return [
            pa.record_batch(
                [pa.array([task] * 70), pa.array(range(i * 70, i * 70 + 70))], schema=schema
            )
            for i in range(3)
        ]

    options = writers.ParquetOptions("snappy", 1 << 30, None)
    rows, files = writers.write_parallel(range(5), batches, schema, str(tmp_path), options, 2)
    assert rows == 5 * 210
    sizes = []
    for file in files:
        metadata = pq.ParquetFile(file).metadata
        groups = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
        assert all(g == 100 for g in groups[:-1]) and 0 < groups[-1] <= 100, groups
        sizes.append(sum(groups))
        table = pq.read_table(file)
        for task in set(table.column("task").to_pylist()):  # a task's rows stay in order
            mine = table.filter(pa.compute.equal(table.column("task"), task))
            assert mine.column("n").to_pylist() == list(range(210))
    assert sum(sizes) == rows
