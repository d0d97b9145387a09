"""Golden tests for JSON lines and Parquet inference."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakelet.crawler.jsonl import count_lines, infer_jsonl, structure_type
from lakelet.crawler.parquet import ParquetInferenceError, infer_parquet
from lakelet.crawler.schema import Field


def test_structure_types() -> None:
    assert structure_type("UBIGINT") == "BIGINT"
    assert structure_type("DOUBLE") == "DOUBLE"
    assert structure_type("NULL") is None
    assert structure_type(["VARCHAR"]) == "VARCHAR[]"
    assert structure_type(["NULL"]) == "VARCHAR[]"
    assert structure_type({"x": "UBIGINT", "y": ["DOUBLE"]}) == 'STRUCT("x" BIGINT, "y" DOUBLE[])'
    assert structure_type({}) == "VARCHAR"


def test_jsonl_schema_with_nesting_and_malformed_lines(tmp_path: Path, duck: Any) -> None:
    path = tmp_path / "sales.jsonl"
    path.write_text(
        '{"id": 1, "machine": "m1", "price": 1.5, "at": "2026-11-27 10:00:00", '
        '"day": "2026-11-27", "tags": ["a"], "loc": {"x": 1, "y": 2.5}, "code": "007"}\n'
        '{"id": 2, "machine": "m2", "price": 2, "at": "2026-11-27 11:00:00", '
        '"day": "2026-11-28", "tags": [], "loc": {"x": 3, "y": 4.0}, "code": "010"}\n'
        '{"id": 3, "machine": "m3", broken\n'
        "[1, 2, 3]\n"
        "\n"
        '{"id": 4, "machine": null, "price": null, "paid": true}\n'
    )
    schema = infer_jsonl(duck, [str(path)])
    assert schema.fields == [
        Field("id", "BIGINT"),
        Field("machine", "VARCHAR"),
        Field("price", "DOUBLE"),
        Field("at", "TIMESTAMP"),
        Field("day", "DATE"),
        Field("tags", "VARCHAR[]"),
        Field("loc", 'STRUCT("x" BIGINT, "y" DOUBLE)'),
        Field("code", "VARCHAR"),
        Field("paid", "BOOLEAN"),
    ]
    assert schema.rows == 3  # objects
    assert count_lines(duck, [str(path)]) == {str(path): (5, 3)}


def test_jsonl_mixed_values_follow_the_majority(tmp_path: Path, duck: Any) -> None:
    lines = [f'{{"n": {i}, "price": {i}.5}}' for i in range(120)]
    lines.append('{"n": 120, "price": "abc"}')
    path = tmp_path / "a.jsonl"
    path.write_text("\n".join(lines) + "\n")
    assert infer_jsonl(duck, [str(path)]).fields == [Field("n", "BIGINT"), Field("price", "DOUBLE")]


def test_parquet_schema_from_footer(tmp_path: Path, duck: Any) -> None:
    table = pa.table(
        {
            "id": pa.array([1, 2, 3], pa.int32()),
            "machine": ["a", "b", "c"],
            "price": pa.array([1.5, 2.5, None], pa.float64()),
            "tags": [["x"], [], None],
        }
    )
    path = tmp_path / "p.parquet"
    pq.write_table(table, path)
    schema = infer_parquet(duck, str(path))
    assert schema.fields == [
        Field("id", "INTEGER"),
        Field("machine", "VARCHAR"),
        Field("price", "DOUBLE"),
        Field("tags", "VARCHAR[]"),
    ]
    assert schema.rows == 3


def test_not_parquet_is_an_inference_error(tmp_path: Path, duck: Any) -> None:
    path = tmp_path / "bad.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(ParquetInferenceError):
        infer_parquet(duck, str(path))
