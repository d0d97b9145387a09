"""Parquet inference: the schema and row count are in the file's footer; no data is read."""

from __future__ import annotations

from typing import Any

from lakelet.catalog.rawscan import sql_literal
from lakelet.crawler.schema import Field, FileSchema
from lakelet.errors import CrawlError


class ParquetInferenceError(CrawlError):
    """DuckDB could not read a file's Parquet footer; the crawl skips it and says why."""


def infer_parquet(con: Any, url: str) -> FileSchema:
    source = f"read_parquet({sql_literal(url)}, hive_partitioning=false)"
    try:
        described = con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
        (rows,) = con.execute(
            f"SELECT coalesce(sum(num_rows), 0) FROM parquet_file_metadata({sql_literal(url)})"
        ).fetchone()
    except Exception as exc:  # duckdb.Error: not a Parquet file, truncated footer, …
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ParquetInferenceError(message) from exc
    return FileSchema([Field(str(name), str(type_)) for name, type_, *_ in described], int(rows))
