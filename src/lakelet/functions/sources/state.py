"""What the event sources of ``lakelet up`` remember across restarts.

Kept in the project's metadata database, so killing ``lakelet up`` loses nothing:
each schedule's last fire time (a restart neither fires a tick twice nor skips one
silently), the position of each reader of the object-event log (events are handed on
before the position moves, so a kill re-reads rather than drops), and what the lake
watcher has already seen (objects written by other programs while ``lakelet up`` was
down are found on the next start).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import sqlalchemy as sa

from lakelet.metadata import ensure_tables
from lakelet.storage.base import ObjectInfo

_meta = sa.MetaData()
schedules_table = sa.Table(
    "source_schedules",
    _meta,
    sa.Column("key", sa.String(512), primary_key=True),
    sa.Column("last_fire_ms", sa.BigInteger, nullable=True),  # None: never fired, due now
)
cursors_table = sa.Table(
    "source_cursors",
    _meta,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
)
watched_objects_table = sa.Table(
    "source_watched_objects",
    _meta,
    sa.Column("bucket", sa.String(63), primary_key=True),
    sa.Column("key", sa.String(1024), primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("etag", sa.String(128), nullable=False),
)
watched_locations_table = sa.Table(
    "source_watched_locations",
    _meta,
    sa.Column("bucket", sa.String(63), primary_key=True),
    sa.Column("prefix", sa.String(1024), primary_key=True),
    sa.Column("since_ms", sa.BigInteger, nullable=False),
)

ObjectKey = tuple[str, str]  # (bucket, key)


class SourceState:
    """Read and write the sources' state; every write is one transaction."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        ensure_tables(engine, _meta)

    # --- schedules -------------------------------------------------------------------

    def schedules(self) -> dict[str, datetime | None]:
        """Every known schedule's last fire time (``None``: registered, never fired)."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(schedules_table)).all()
        return {row.key: _from_ms(row.last_fire_ms) for row in rows}

    def set_schedule(self, key: str, fired_at: datetime | None) -> None:
        t = schedules_table
        with self.engine.begin() as conn:
            conn.execute(t.delete().where(t.c.key == key))
            conn.execute(t.insert().values(key=key, last_fire_ms=_to_ms(fired_at)))

    # --- cursors ---------------------------------------------------------------------

    def cursor(self, name: str) -> int | None:
        """Where the reader ``name`` stopped in the object-event log; ``None`` when it
        never read."""
        t = cursors_table
        with self.engine.connect() as conn:
            value = conn.execute(sa.select(t.c.position).where(t.c.name == name)).scalar()
        return None if value is None else int(value)

    def set_cursor(self, name: str, position: int) -> None:
        with self.engine.begin() as conn:
            _put_cursor(conn, name, position)

    # --- the lake watcher ------------------------------------------------------------

    def locations(self) -> set[tuple[str, str]]:
        """The ``(bucket, prefix)`` locations watched before (their objects are known)."""
        t = watched_locations_table
        with self.engine.connect() as conn:
            return {(r.bucket, r.prefix) for r in conn.execute(sa.select(t.c.bucket, t.c.prefix))}

    def watched(self, buckets: Iterable[str]) -> dict[ObjectKey, str]:
        """The ETag last seen of every known object in ``buckets``."""
        t = watched_objects_table
        query = sa.select(t.c.bucket, t.c.key, t.c.etag).where(t.c.bucket.in_(sorted(buckets)))
        with self.engine.connect() as conn:
            return {(r.bucket, r.key): r.etag for r in conn.execute(query)}

    def save_watched(
        self,
        seen: Iterable[ObjectInfo] = (),
        gone: Iterable[ObjectKey] = (),
        *,
        cursor: tuple[str, int] | None = None,
        location: tuple[str, str] | None = None,
    ) -> None:
        """Remember objects as seen (and forget deleted ones), moving the watcher's
        event cursor and adding a baselined location in the same transaction."""
        t = watched_objects_table
        rows = {(i.bucket, i.key): i for i in seen}
        with self.engine.begin() as conn:
            forget = [{"b": bucket, "k": key} for bucket, key in [*rows, *gone]]
            if forget:
                conn.execute(
                    t.delete().where(t.c.bucket == sa.bindparam("b"), t.c.key == sa.bindparam("k")),
                    forget,
                )
            if rows:
                conn.execute(
                    t.insert(),
                    [
                        {"bucket": i.bucket, "key": i.key, "size": i.size, "etag": i.etag}
                        for i in rows.values()
                    ],
                )
            if cursor is not None:
                _put_cursor(conn, *cursor)
            if location is not None:
                conn.execute(
                    watched_locations_table.insert().values(
                        bucket=location[0], prefix=location[1], since_ms=_to_ms(datetime.now(UTC))
                    )
                )


def _put_cursor(conn: sa.Connection, name: str, position: int) -> None:
    t = cursors_table
    conn.execute(t.delete().where(t.c.name == name))
    conn.execute(t.insert().values(name=name, position=position))


def _to_ms(when: datetime | None) -> int | None:
    return None if when is None else round(when.timestamp() * 1000)


def _from_ms(value: int | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value / 1000, UTC)
