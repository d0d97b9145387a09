"""Iceberg tables on an S3 lake: data in the lake bucket, readable by DuckDB through fsspec."""

from __future__ import annotations

import duckdb
import pyarrow as pa

from lakelet.catalog import TableEntry
from lakelet.catalog.names import TableName
from lakelet.project import Project

TABLE = TableName("curated", "t")


def sales(machines: list[str], amounts: list[int]) -> pa.Table:
    return pa.table({"machine": machines, "amount": pa.array(amounts, pa.int64())})


def duckdb_rows(project: Project, files: list[str]) -> list[tuple[str, int]]:
    con = duckdb.connect()
    try:
        con.register_filesystem(project.store.filesystem())
        query = "SELECT machine, amount FROM read_parquet($files) ORDER BY machine, amount"
        return [(str(m), int(a)) for m, a in con.execute(query, {"files": files}).fetchall()]
    finally:
        con.close()


def test_write_puts_data_files_under_the_table_location(s3_project: Project) -> None:
    result = s3_project.catalog.write(TABLE, sales(["m1", "m2", "m3"], [3, 1, 2]), "overwrite")

    assert result.created and result.rows == 3 and result.snapshot_id is not None
    location = s3_project.store.url("curated", "t")
    assert location.startswith(f"{s3_project.store.root}/curated/")
    files = s3_project.catalog.data_files(TABLE)
    assert files, "the table has no data files"
    assert all(f.startswith(f"{location}/") and f.endswith(".parquet") for f in files)
    listed = {o.key for o in s3_project.store.list_page("curated", "t/").objects}
    for f in files:
        assert f.removeprefix(f"{s3_project.store.url('curated')}/") in listed


def test_duckdb_reads_the_data_files_through_the_store_filesystem(s3_project: Project) -> None:
    s3_project.catalog.write(TABLE, sales(["m1", "m2"], [5, 7]), "overwrite")
    files = s3_project.catalog.data_files(TABLE)
    assert files is not None

    assert duckdb_rows(s3_project, files) == [("m1", 5), ("m2", 7)]


def test_append_adds_rows_and_overwrite_replaces_them(s3_project: Project) -> None:
    catalog = s3_project.catalog
    first = catalog.write(TABLE, sales(["m1"], [1]), "overwrite")
    second = catalog.write(TABLE, sales(["m2", "m3"], [2, 3]), "append")

    assert not second.created and second.snapshot_id != first.snapshot_id
    files = catalog.data_files(TABLE)
    assert files is not None
    assert duckdb_rows(s3_project, files) == [("m1", 1), ("m2", 2), ("m3", 3)]
    assert catalog.read_arrow(TABLE).num_rows == 3

    catalog.write(TABLE, sales(["m9"], [9]), "overwrite")
    files = catalog.data_files(TABLE)
    assert files is not None
    assert duckdb_rows(s3_project, files) == [("m9", 9)]
    # The earlier snapshot is still readable (time travel).
    old = catalog.data_files(TABLE, second.snapshot_id)
    assert old is not None
    assert duckdb_rows(s3_project, old) == [("m1", 1), ("m2", 2), ("m3", 3)]


def test_tables_lists_the_table_in_a_reopened_project(s3_project: Project) -> None:
    s3_project.catalog.write(TABLE, sales(["m1"], [1]), "overwrite")

    reopened = Project.open(s3_project.root)
    assert TableEntry(TABLE, "iceberg") in reopened.catalog.tables()
    assert reopened.catalog.read_arrow(TABLE).to_pylist() == [{"machine": "m1", "amount": 1}]
