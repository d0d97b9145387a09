"""Writing Iceberg tables: schema changes, clashing names, failed first writes."""

from __future__ import annotations

import pyarrow as pa
import pytest

from lakelet.catalog import TableName
from lakelet.errors import TableSchemaError
from lakelet.jobs import query
from lakelet.project import Project

T = TableName("curated", "t")


def test_overwrite_drops_columns_the_data_no_longer_has(tmp_project: Project) -> None:
    tmp_project.catalog.write(T, pa.table({"a": [1], "b": ["x"]}), "overwrite")
    tmp_project.catalog.write(T, pa.table({"a": [2]}), "overwrite")
    assert query(tmp_project, "SELECT * FROM curated.t").to_pylist() == [{"a": 2}]
    tmp_project.catalog.write(T, pa.table({"a": [3], "c": [1.5]}), "append")
    rows = query(tmp_project, "SELECT * FROM curated.t ORDER BY a").to_pylist()
    assert rows == [{"a": 2, "c": None}, {"a": 3, "c": 1.5}]


def test_names_equal_but_for_case_are_refused(tmp_project: Project) -> None:
    with pytest.raises(TableSchemaError, match="differ only in case"):
        tmp_project.catalog.write(T, pa.table({"a": [1], "A": [2]}), "overwrite")
    assert tmp_project.catalog.kind(T) is None


def test_a_failed_first_write_leaves_no_table(tmp_project: Project) -> None:
    bad = pa.table({"u": pa.array([2**64 - 1], pa.uint64())})
    with pytest.raises(TableSchemaError):
        tmp_project.catalog.write(T, bad, "overwrite")
    assert tmp_project.catalog.kind(T) is None
    tmp_project.catalog.write(T, pa.table({"u": [5]}), "overwrite")  # not stuck
    assert query(tmp_project, "SELECT u FROM curated.t").to_pylist() == [{"u": 5}]


def test_names_that_need_escaping_read_back(tmp_project: Project) -> None:
    data = pa.table({"my col": [1], "count_star()": [2], "1st": [3]})
    tmp_project.catalog.write(T, data, "overwrite")
    rows = query(tmp_project, 'SELECT "my col", "count_star()", "1st" FROM curated.t').to_pylist()
    assert rows == [{"my col": 1, "count_star()": 2, "1st": 3}]
    assert query(tmp_project, 'SELECT "my col" AS c FROM CURATED.T').to_pylist() == [{"c": 1}]
