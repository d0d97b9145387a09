"""Fixtures of the crawler tests: a DuckDB connection and files to infer from."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from lakelet.crawler.csv import HEAD_BYTES, infer_csv
from lakelet.crawler.schema import FileSchema


@pytest.fixture
def duck() -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect()
    yield con
    con.close()


@pytest.fixture
def csv_schema(tmp_path: Path, duck: Any) -> Callable[..., FileSchema]:
    """Infer a CSV file written from the given text."""

    def infer(content: bytes | str, name: str = "data.csv") -> FileSchema:
        data = content.encode() if isinstance(content, str) else content
        path = tmp_path / name
        path.write_bytes(data)
        return infer_csv(duck, str(path), data[:HEAD_BYTES], len(data))

    return infer
