"""Parquet scans: typed by the file, no parse rejects."""

from __future__ import annotations

from lakelet.catalog.raw import RawTable
from lakelet.catalog.rawscan.core import (
    RawScan,
    assemble,
    empty_rejects,
    file_columns,
    sql_literal,
)


def plan_parquet(table: RawTable, files: list[str]) -> RawScan:
    parts = [
        f"SELECT {file_columns(table, url)} "
        f"FROM read_parquet({sql_literal(url)}, hive_partitioning=false)"
        for url in files
    ]
    return RawScan(assemble(table, parts), empty_rejects(), list(files))
