"""What a crawler has seen, so the next crawl reads only new or changed files.

Per crawler and object the manifest keeps the size, ETag, modification time and a
content hash, the file's header signature and what inference learnt from it (fields,
dialect, rows, or why it was skipped). A later crawl trusts an entry while the object's
size and ETag are unchanged; when they differ the content hash decides whether the
bytes really changed (a ``touch`` is not a change). Beside the files the manifest keeps
each crawler's state (last run, last object event consumed, the settings it ran with),
the last crawl's listing in one compressed row (a crawl that only finds new files diffs
against it instead of loading every entry) and the table versions each crawl created,
which ``lakelet crawl NAME --undo`` reverts.

Everything lives in the project's metadata database (SQLite or PostgreSQL).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa

from lakelet.config import CrawlerSection
from lakelet.crawler.schema import Field, FileSchema
from lakelet.metadata import ensure_tables

_meta = sa.MetaData()
crawler_files = sa.Table(
    "crawler_files",
    _meta,
    sa.Column("crawler", sa.String(128), primary_key=True),
    sa.Column("bucket", sa.String(63), primary_key=True),
    sa.Column("key", sa.String(1024), primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("etag", sa.String(128), nullable=False),
    sa.Column("modified", sa.Float, nullable=True),  # POSIX seconds: cheap to load
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("signature", sa.String(64), nullable=True),
    sa.Column("table_name", sa.String(256), nullable=True),
    sa.Column("schema", sa.Text, nullable=True),
    sa.Column("rows", sa.BigInteger, nullable=False, default=0),
    sa.Column("skip_reason", sa.Text, nullable=True),
)
crawler_state = sa.Table(
    "crawler_state",
    _meta,
    sa.Column("crawler", sa.String(128), primary_key=True),
    sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_event_id", sa.BigInteger, nullable=False, default=0),
    sa.Column("fingerprint", sa.String(64), nullable=False, default=""),
    sa.Column("dirty", sa.Boolean, nullable=False, default=False),
    sa.Column("listing", sa.String(64), nullable=False, default=""),
    sa.Column("summary", sa.Text, nullable=False, default="{}"),
)
crawler_listing = sa.Table(
    "crawler_listing",
    _meta,
    sa.Column("crawler", sa.String(128), primary_key=True),
    sa.Column("part", sa.Integer, primary_key=True),
    sa.Column("listing", sa.String(64), nullable=False),  # the hash after this part
    sa.Column("entries", sa.LargeBinary, nullable=False),  # lines, newline-separated
)
MAX_LISTING_PARTS = 64
"""Appended parts (one per crawl that only added files) before the listing is rewritten."""
crawler_changes = sa.Table(
    "crawler_changes",
    _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("crawler", sa.String(128), nullable=False, index=True),
    sa.Column("crawl_id", sa.String(40), nullable=False),
    sa.Column("crawled_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("database", sa.String(128), nullable=False),
    sa.Column("table_name", sa.String(128), nullable=False),
    sa.Column("before_version", sa.Integer, nullable=True),
    sa.Column("after_version", sa.Integer, nullable=False),
    sa.Column("undone", sa.Boolean, nullable=False, default=False),
)

T = TypeVar("T")
FileId = tuple[str, str]
"""``(bucket, key)`` of an object."""


@dataclass(frozen=True)
class SeenFile:
    """One object as the last crawl saw it; ``schema`` is ``None`` when it was skipped."""

    bucket: str
    key: str
    size: int
    etag: str
    modified: float | None  # POSIX seconds
    hash: str
    signature: str | None
    table: str | None
    schema: FileSchema | None
    skip_reason: str | None = None

    @property
    def id(self) -> FileId:
        return (self.bucket, self.key)


@dataclass(frozen=True)
class CrawlerState:
    crawler: str
    last_run_at: datetime | None = None
    last_event_id: int = 0
    fingerprint: str = ""
    dirty: bool = False
    """Set by an undo: the next crawl compares every table with the catalog again."""
    listing: str = ""
    """Hash of the last crawl's listing (keys, sizes, ETags): equal means nothing changed."""
    summary: dict[str, Any] = field(default_factory=dict)
    """The last crawl's tables (name → files) and skipped files, to report a no-op crawl."""


@dataclass(frozen=True)
class TableChange:
    """A table version a crawl created; ``before`` is ``None`` for a new table."""

    database: str
    table: str
    before: int | None
    after: int


@dataclass(frozen=True)
class CrawlChanges:
    crawl_id: str
    crawled_at: datetime
    changes: list[TableChange] = field(default_factory=list)


class Manifest:
    """The crawlers' memory, in the metadata database."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        ensure_tables(engine, _meta)

    # --- files -------------------------------------------------------------------

    def load(self, crawler: str) -> dict[FileId, SeenFile]:
        """Every object the crawler has seen (10,000 entries load in a few tens of ms)."""
        t = crawler_files
        query = sa.select(
            t.c.bucket,
            t.c.key,
            t.c.size,
            t.c.etag,
            t.c.modified,
            t.c.hash,
            t.c.signature,
            t.c.table_name,
            t.c.schema,
            t.c.rows,
            t.c.skip_reason,
        ).where(t.c.crawler == crawler)
        parsed: dict[str, tuple[list[Field], dict[str, Any]]] = {}
        seen: dict[FileId, SeenFile] = {}
        with self._engine.connect() as conn:
            for row in conn.execute(query):
                bucket, key, size, etag, mtime, digest, sig, table, text, rows, reason = row
                schema: FileSchema | None = None
                if text is not None:
                    if text not in parsed:
                        parsed[text] = _parse_schema(text)
                    fields, dialect = parsed[text]
                    schema = FileSchema(fields, int(rows), dialect)
                seen[(bucket, key)] = SeenFile(
                    bucket, key, int(size), etag, mtime, digest, sig, table, schema, reason
                )
        return seen

    def update(
        self,
        crawler: str,
        upserts: Iterable[SeenFile],
        deletes: Iterable[FileId] = (),
        *,
        replace_all: bool = False,
    ) -> None:
        """Store entries and forget others, in one transaction."""
        t = crawler_files
        rows = [_to_row(crawler, entry) for entry in upserts]
        forgotten = list(deletes) + [(r["bucket"], r["key"]) for r in rows]
        with self._engine.begin() as conn:
            if replace_all:
                conn.execute(t.delete().where(t.c.crawler == crawler))
            else:
                for bucket, keys in _by_bucket(forgotten).items():
                    for some in _chunks(keys, 500):
                        conn.execute(
                            t.delete().where(
                                t.c.crawler == crawler, t.c.bucket == bucket, t.c.key.in_(some)
                            )
                        )
            for batch in _chunks(rows, 2000):
                conn.execute(t.insert(), batch)

    def forget(self, crawler: str) -> None:
        """Drop everything known about a crawler (its next crawl reads every file)."""
        with self._engine.begin() as conn:
            conn.execute(crawler_files.delete().where(crawler_files.c.crawler == crawler))
            conn.execute(crawler_listing.delete().where(crawler_listing.c.crawler == crawler))

    def reference_schemas(
        self, crawler: str, signatures: Iterable[str]
    ) -> dict[str, FileSchema | None]:
        """Per CSV header signature, the one schema the crawler's files with it have
        (``None`` when they have several; left out when none has a schema)."""
        t = crawler_files
        found: dict[str, FileSchema | None] = {}
        with self._engine.connect() as conn:
            for signature in sorted(set(signatures)):
                query = sa.select(t.c.schema).where(
                    t.c.crawler == crawler, t.c.signature == signature, t.c.schema.is_not(None)
                )
                first = conn.execute(query.limit(1)).scalar()
                if first is None:
                    continue
                other = conn.execute(query.where(t.c.schema != first).limit(1)).scalar()
                found[signature] = _schema_of(first, 0) if other is None else None
        return found

    # --- listing -----------------------------------------------------------------

    def listing(self, crawler: str) -> tuple[str, set[str], int] | None:
        """The last crawl's listing: its hash, its lines and how many parts hold them."""
        t = crawler_listing
        query = sa.select(t.c.listing, t.c.entries).where(t.c.crawler == crawler)
        with self._engine.connect() as conn:
            rows = list(conn.execute(query.order_by(t.c.part)))
        if not rows:
            return None
        lines: set[str] = set()
        for _, data in rows:
            if data:
                lines.update(bytes(data).decode().split("\n"))
        return str(rows[-1][0]), lines, len(rows)

    def save_listing(self, crawler: str, digest: str, lines: list[str]) -> None:
        """Keep a crawl's whole listing (one line per object: location, size, ETag)."""
        with self._engine.begin() as conn:
            conn.execute(crawler_listing.delete().where(crawler_listing.c.crawler == crawler))
            self._add_listing_part(conn, crawler, 0, digest, lines)

    def append_listing(self, crawler: str, part: int, digest: str, lines: list[str]) -> None:
        """Add the lines of new files as one more part of the kept listing (cheaper than
        rewriting it); ``digest`` is the whole listing's hash now."""
        with self._engine.begin() as conn:
            self._add_listing_part(conn, crawler, part, digest, lines)

    def _add_listing_part(
        self, conn: sa.Connection, crawler: str, part: int, digest: str, lines: list[str]
    ) -> None:
        text = "\n".join(lines)
        if text.count("\n") != max(0, len(lines) - 1):  # a key with a newline: keep none,
            conn.execute(crawler_listing.delete().where(crawler_listing.c.crawler == crawler))
            return  # and the next crawl takes the full path
        values = {"crawler": crawler, "part": part, "listing": digest, "entries": text.encode()}
        conn.execute(crawler_listing.insert().values(**values))

    # --- state -------------------------------------------------------------------

    def state(self, crawler: str) -> CrawlerState:
        t = crawler_state
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(t).where(t.c.crawler == crawler)).mappings().first()
        if row is None:
            return CrawlerState(crawler)
        last = row["last_run_at"]
        if last is not None and last.tzinfo is None:
            last = last.replace(tzinfo=UTC)
        return CrawlerState(
            crawler,
            last,
            int(row["last_event_id"]),
            row["fingerprint"],
            bool(row["dirty"]),
            row["listing"],
            json.loads(row["summary"]),
        )

    def save_state(self, state: CrawlerState) -> None:
        t = crawler_state
        values = {
            "last_run_at": state.last_run_at,
            "last_event_id": state.last_event_id,
            "fingerprint": state.fingerprint,
            "dirty": state.dirty,
            "listing": state.listing,
            "summary": json.dumps(state.summary, sort_keys=True),
        }
        with self._engine.begin() as conn:
            updated = conn.execute(t.update().where(t.c.crawler == state.crawler).values(**values))
            if updated.rowcount == 0:
                conn.execute(t.insert().values(crawler=state.crawler, **values))

    # --- changes (for undo) ----------------------------------------------------------

    def record_changes(self, crawler: str, changes: CrawlChanges) -> None:
        if not changes.changes:
            return
        with self._engine.begin() as conn:
            conn.execute(
                crawler_changes.insert(),
                [
                    {
                        "crawler": crawler,
                        "crawl_id": changes.crawl_id,
                        "crawled_at": changes.crawled_at,
                        "database": c.database,
                        "table_name": c.table,
                        "before_version": c.before,
                        "after_version": c.after,
                        "undone": False,
                    }
                    for c in changes.changes
                ],
            )

    def last_changes(self, crawler: str) -> CrawlChanges | None:
        """The latest crawl of ``crawler`` that changed tables and is not undone yet."""
        t = crawler_changes
        query = (
            sa.select(t)
            .where(t.c.crawler == crawler, t.c.undone.is_(False))
            .order_by(t.c.id.desc())
        )
        with self._engine.connect() as conn:
            rows = list(conn.execute(query).mappings())
        if not rows:
            return None
        crawl_id = rows[0]["crawl_id"]
        mine = [r for r in rows if r["crawl_id"] == crawl_id]
        crawled_at = mine[0]["crawled_at"]
        if crawled_at.tzinfo is None:
            crawled_at = crawled_at.replace(tzinfo=UTC)
        changes = [
            TableChange(r["database"], r["table_name"], r["before_version"], r["after_version"])
            for r in reversed(mine)
        ]
        return CrawlChanges(crawl_id, crawled_at, changes)

    def mark_undone(self, crawler: str, crawl_id: str) -> None:
        t = crawler_changes
        with self._engine.begin() as conn:
            conn.execute(
                t.update()
                .where(t.c.crawler == crawler, t.c.crawl_id == crawl_id)
                .values(undone=True)
            )


def schema_text(schema: FileSchema) -> str:
    fields = [[f.name, f.type] for f in schema.fields]
    return json.dumps({"fields": fields, "dialect": schema.dialect}, sort_keys=True, default=str)


def _parse_schema(text: str) -> tuple[list[Field], dict[str, Any]]:
    data = json.loads(text)
    return [Field(n, t) for n, t in data["fields"]], data["dialect"]


def _schema_of(text: str, rows: int) -> FileSchema:
    fields, dialect = _parse_schema(text)
    return FileSchema(fields, rows, dialect)


def _to_row(crawler: str, entry: SeenFile) -> dict[str, Any]:
    return {
        "crawler": crawler,
        "bucket": entry.bucket,
        "key": entry.key,
        "size": entry.size,
        "etag": entry.etag,
        "modified": entry.modified,
        "hash": entry.hash,
        "signature": entry.signature,
        "table_name": entry.table,
        "schema": None if entry.schema is None else schema_text(entry.schema),
        "rows": 0 if entry.schema is None else entry.schema.rows,
        "skip_reason": entry.skip_reason,
    }


def _by_bucket(ids: Iterable[FileId]) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {}
    for bucket, key in ids:
        result.setdefault(bucket, []).append(key)
    return result


def _chunks(items: list[T], size: int) -> Iterable[list[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def fingerprint(spec: CrawlerSection) -> str:
    """The settings that shape tables: a change means every file is looked at again."""
    shaping = {
        k: v
        for k, v in asdict(spec).items()
        if k not in ("on_arrival", "schedule", "on_change", "on_delete")
        and k not in ("statistics", "statistics_sample_rows")  # how counts are made
    }
    text = json.dumps(shaping, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
