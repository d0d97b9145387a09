"""Crawled raw tables: schema on read over files in the lake, with a version history.

Iceberg tables describe data they own; a raw table describes files it does not own
(Glue's crawled tables). Each crawl that changes a table's definition stores a new
version, so ``lakelet show`` can list the history and later crawls can diff or undo.
Column types are DuckDB SQL types, the engine that reads the files.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from lakelet.catalog.names import TableName
from lakelet.errors import TableNotFoundError
from lakelet.metadata import ensure_tables

_meta = sa.MetaData()
raw_table_versions = sa.Table(
    "lakelet_raw_table_versions",
    _meta,
    sa.Column("database", sa.String(128), primary_key=True),
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("location", sa.Text, nullable=False),
    sa.Column("format", sa.String(32), nullable=False),
    sa.Column("classification", sa.String(64), nullable=False),
    sa.Column("dialect", sa.Text, nullable=False),
    sa.Column("columns", sa.Text, nullable=False),
    sa.Column("partition_keys", sa.Text, nullable=False),
    sa.Column("properties", sa.Text, nullable=False),
    sa.Column("crawled_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("crawler", sa.String(128), nullable=True),
)


@dataclass(frozen=True)
class Column:
    """A column and its DuckDB SQL type (``BIGINT``, ``DECIMAL(10,2)``, ``DATE``, …)."""

    name: str
    type: str
    nullable: bool = True


@dataclass(frozen=True)
class RawTable:
    """One version of a crawled table.

    ``location`` is ``BUCKET/PREFIX/`` in the lake; ``format`` is ``csv``, ``json`` or
    ``parquet``; ``dialect`` holds the reader options the crawler detected (delimiter,
    quote, escape, header, date formats, …); ``partition_keys`` are Hive ``key=value``
    folder levels, read from the paths, not the files.
    """

    database: str
    name: str
    location: str
    format: str
    columns: list[Column]
    partition_keys: list[Column] = field(default_factory=list)
    classification: str = ""
    dialect: dict[str, Any] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)
    crawled_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    crawler: str | None = None
    version: int = 0

    @property
    def table_name(self) -> TableName:
        return TableName(self.database, self.name)

    @property
    def all_columns(self) -> list[Column]:
        return [*self.columns, *self.partition_keys]

    def same_definition(self, other: RawTable) -> bool:
        """True when a crawl found nothing to change (ignores time and version)."""
        keys = ("location", "format", "columns", "partition_keys", "classification", "dialect")
        return all(getattr(self, k) == getattr(other, k) for k in keys)


class RawTableRegistry:
    """Raw tables and their versions, stored beside the Iceberg catalog's own tables."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        ensure_tables(engine, _meta)

    def register(self, table: RawTable) -> RawTable:
        """Store ``table`` as the next version and return it with its version number."""
        t = raw_table_versions
        with self._engine.begin() as conn:
            current = conn.execute(
                sa.select(sa.func.max(t.c.version)).where(
                    t.c.database == table.database, t.c.name == table.name
                )
            ).scalar()
            stored = replace(table, version=(current or 0) + 1)
            conn.execute(t.insert().values(**_to_row(stored)))
        return stored

    def get(self, name: TableName, version: int | None = None) -> RawTable:
        t = raw_table_versions
        query = sa.select(t).where(t.c.database == name.database, t.c.name == name.name)
        if version is not None:
            query = query.where(t.c.version == version)
        query = query.order_by(t.c.version.desc()).limit(1)
        with self._engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        if row is None:
            raise TableNotFoundError(
                f"no raw table {name}" + (f" version {version}" if version else "")
            )
        return _from_row(row)

    def find(self, name: TableName) -> RawTable | None:
        try:
            return self.get(name)
        except TableNotFoundError:
            return None

    def versions(self, name: TableName) -> list[RawTable]:
        t = raw_table_versions
        query = (
            sa.select(t)
            .where(t.c.database == name.database, t.c.name == name.name)
            .order_by(t.c.version)
        )
        with self._engine.connect() as conn:
            return [_from_row(r) for r in conn.execute(query).mappings()]

    def names(self, database: str | None = None) -> list[TableName]:
        t = raw_table_versions
        query = sa.select(t.c.database, t.c.name).distinct()
        if database is not None:
            query = query.where(t.c.database == database)
        with self._engine.connect() as conn:
            return sorted(TableName(d, n) for d, n in conn.execute(query))

    def drop(self, name: TableName) -> None:
        t = raw_table_versions
        with self._engine.begin() as conn:
            conn.execute(t.delete().where(t.c.database == name.database, t.c.name == name.name))


def _to_row(table: RawTable) -> dict[str, Any]:
    return {
        "database": table.database,
        "name": table.name,
        "version": table.version,
        "location": table.location,
        "format": table.format,
        "classification": table.classification,
        "dialect": json.dumps(table.dialect, sort_keys=True),
        "columns": json.dumps([asdict(c) for c in table.columns]),
        "partition_keys": json.dumps([asdict(c) for c in table.partition_keys]),
        "properties": json.dumps(table.properties, sort_keys=True, default=str),
        "crawled_at": table.crawled_at,
        "crawler": table.crawler,
    }


def _from_row(row: Any) -> RawTable:
    crawled_at = row["crawled_at"]
    if crawled_at.tzinfo is None:
        crawled_at = crawled_at.replace(tzinfo=UTC)
    return RawTable(
        database=row["database"],
        name=row["name"],
        version=row["version"],
        location=row["location"],
        format=row["format"],
        classification=row["classification"],
        dialect=json.loads(row["dialect"]),
        columns=[Column(**c) for c in json.loads(row["columns"])],
        partition_keys=[Column(**c) for c in json.loads(row["partition_keys"])],
        properties=json.loads(row["properties"]),
        crawled_at=crawled_at,
        crawler=row["crawler"],
    )
