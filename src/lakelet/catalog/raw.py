"""Crawled raw tables: schema on read over files in the lake, with a version history.

Iceberg tables describe data they own; a raw table describes files it does not own
(Glue's crawled tables). Each crawl that changes a table's definition stores a new
version, so ``lakelet show`` can list the history and later crawls can diff or undo.
Column types are DuckDB SQL types, the engine that reads the files.

History is append-only. A version's ``status`` (in its properties) is ``active``,
``deprecated`` (its files are gone; still readable and listed) or ``deleted`` (a
tombstone: the table is gone from the catalog, its history kept, so an undo can bring
it back). Statistics are recorded per crawl beside the versions, because data can
change without the definition changing.
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
raw_table_stats = sa.Table(
    "lakelet_raw_table_stats",
    _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("database", sa.String(128), nullable=False),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("stats", sa.Text, nullable=False),
    sa.Index("ix_lakelet_raw_table_stats_table", "database", "name"),
)
ACTIVE, DEPRECATED, DELETED = "active", "deprecated", "deleted"


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

    @property
    def status(self) -> str:
        """``active``, ``deprecated`` or ``deleted`` (see the module docstring)."""
        return str(self.properties.get("status", ACTIVE))

    def with_status(self, status: str, **properties: Any) -> RawTable:
        """This definition with another status (and extra properties), as a new version."""
        props = {k: v for k, v in self.properties.items() if k not in ("status", "restored_from")}
        if status != ACTIVE:
            props["status"] = status
        props.update(properties)
        return replace(self, properties=props, crawled_at=datetime.now(UTC))

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
        """A version, or the current one; a deleted table is not found (its versions are)."""
        table = self.latest(name, version)
        if table is None:
            raise TableNotFoundError(
                f"no raw table {name}" + (f" version {version}" if version else "")
            )
        if version is None and table.status == DELETED:
            raise TableNotFoundError(
                f"raw table {name} was deleted (version {table.version}); its crawler can "
                "restore it with: lakelet crawl NAME --undo"
            )
        return table

    def latest(self, name: TableName, version: int | None = None) -> RawTable | None:
        """The newest version (or ``version``), tombstones included."""
        t = raw_table_versions
        query = sa.select(t).where(t.c.database == name.database, t.c.name == name.name)
        if version is not None:
            query = query.where(t.c.version == version)
        query = query.order_by(t.c.version.desc()).limit(1)
        with self._engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else _from_row(row)

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
        """Tables whose current version is not deleted."""
        t = raw_table_versions
        newest = sa.select(
            t.c.database, t.c.name, sa.func.max(t.c.version).label("version")
        ).group_by(t.c.database, t.c.name)
        if database is not None:
            newest = newest.where(t.c.database == database)
        current = newest.subquery()
        query = sa.select(t.c.database, t.c.name, t.c.properties).join(
            current,
            sa.and_(
                t.c.database == current.c.database,
                t.c.name == current.c.name,
                t.c.version == current.c.version,
            ),
        )
        with self._engine.connect() as conn:
            rows = list(conn.execute(query))
        return sorted(
            TableName(d, n) for d, n, props in rows if json.loads(props).get("status") != DELETED
        )

    def record_stats(self, name: TableName, version: int, stats: dict[str, Any]) -> None:
        """Keep a crawl's statistics of a table (the latest are shown)."""
        with self._engine.begin() as conn:
            conn.execute(
                raw_table_stats.insert().values(
                    database=name.database,
                    name=name.name,
                    version=version,
                    computed_at=datetime.now(UTC),
                    stats=json.dumps(stats, sort_keys=True, default=str),
                )
            )

    def stats(self, name: TableName) -> dict[str, Any] | None:
        """The latest statistics recorded for a table, or ``None``."""
        t = raw_table_stats
        query = (
            sa.select(t.c.stats)
            .where(t.c.database == name.database, t.c.name == name.name)
            .order_by(t.c.id.desc())
            .limit(1)
        )
        with self._engine.connect() as conn:
            text = conn.execute(query).scalar()
        return None if text is None else dict(json.loads(text))

    def drop(self, name: TableName) -> None:
        t = raw_table_versions
        with self._engine.begin() as conn:
            conn.execute(t.delete().where(t.c.database == name.database, t.c.name == name.name))
            s = raw_table_stats
            conn.execute(s.delete().where(s.c.database == name.database, s.c.name == name.name))


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
