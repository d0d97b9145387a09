"""Object-created events, recorded durably in the metadata database.

Every put through :class:`RecordingStore` appends an event after the object is
written, so a consumer reading events in id order (crawlers on arrival, functions) sees
every object at least once. Shapes follow S3's ``ObjectCreated:Put`` notification.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

import sqlalchemy as sa

from lakelet.metadata import ensure_tables
from lakelet.storage.base import ListPage, ObjectInfo, ObjectStore

_meta = sa.MetaData()
object_events = sa.Table(
    "object_events",
    _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("event_name", sa.String(64), nullable=False),
    sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("bucket", sa.String(63), nullable=False),
    sa.Column("key", sa.String(1024), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("etag", sa.String(128), nullable=False),
    sa.Index("ix_object_events_bucket_key", "bucket", "key"),
)

OBJECT_CREATED_PUT = "ObjectCreated:Put"


@dataclass(frozen=True)
class ObjectEvent:
    id: int
    event_name: str
    event_time: datetime
    bucket: str
    key: str
    size: int
    etag: str


class EventLog:
    """Append-only log of object events, readable from any id onwards."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        ensure_tables(engine, _meta)

    def record(self, info: ObjectInfo, event_name: str = OBJECT_CREATED_PUT) -> int:
        with self._engine.begin() as conn:
            result = conn.execute(
                object_events.insert().values(
                    event_name=event_name,
                    event_time=datetime.now(UTC),
                    bucket=info.bucket,
                    key=info.key,
                    size=info.size,
                    etag=info.etag,
                )
            )
            (event_id,) = result.inserted_primary_key or (0,)
            return int(event_id)

    def since(
        self, after_id: int = 0, *, bucket: str | None = None, prefix: str = "", limit: int = 1000
    ) -> list[ObjectEvent]:
        """Events with ``id > after_id`` in order, optionally under bucket/prefix."""
        query = sa.select(object_events).where(object_events.c.id > after_id)
        if bucket is not None:
            query = query.where(object_events.c.bucket == bucket)
        if prefix:
            escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            query = query.where(object_events.c.key.like(f"{escaped}%", escape="\\"))
        query = query.order_by(object_events.c.id).limit(limit)
        with self._engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            ObjectEvent(
                id=r["id"],
                event_name=r["event_name"],
                event_time=_aware(r["event_time"]),
                bucket=r["bucket"],
                key=r["key"],
                size=r["size"],
                etag=r["etag"],
            )
            for r in rows
        ]

    def iter_all(self, **filters: Any) -> Iterator[ObjectEvent]:
        after = 0
        while batch := self.since(after, **filters):
            yield from batch
            after = batch[-1].id


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class RecordingStore:
    """An object store that records an ``ObjectCreated:Put`` event for every put."""

    def __init__(self, inner: ObjectStore, events: EventLog) -> None:
        self._inner = inner
        self.events = events

    @property
    def inner(self) -> ObjectStore:
        return self._inner

    @property
    def root(self) -> str:
        return self._inner.root

    def put(self, bucket: str, key: str, data: bytes | IO[bytes]) -> ObjectInfo:
        info = self._inner.put(bucket, key, data)
        self.events.record(info)
        return info

    def get(self, bucket: str, key: str) -> bytes:
        return self._inner.get(bucket, key)

    def open(self, bucket: str, key: str) -> IO[bytes]:
        return self._inner.open(bucket, key)

    def head(self, bucket: str, key: str) -> ObjectInfo:
        return self._inner.head(bucket, key)

    def list_page(
        self, bucket: str, prefix: str = "", *, token: str | None = None, limit: int = 1000
    ) -> ListPage:
        return self._inner.list_page(bucket, prefix, token=token, limit=limit)

    def delete(self, bucket: str, key: str) -> None:
        self._inner.delete(bucket, key)

    def buckets(self) -> list[str]:
        return self._inner.buckets()

    def create_bucket(self, bucket: str) -> None:
        self._inner.create_bucket(bucket)

    def url(self, bucket: str, key: str = "") -> str:
        return self._inner.url(bucket, key)

    def filesystem(self) -> Any:
        return self._inner.filesystem()
