"""Durable local queues with SQS's semantics, kept in the project's metadata database.

A message is delivered at least once: :meth:`QueueStore.receive` hides what it returns
for the visibility timeout and hands out a fresh receipt handle; a message that is not
deleted in time (its consumer crashed, or failed) becomes visible again with its
receive count raised. With a redrive policy, a message already received
``max_receive_count`` times goes to the dead-letter queue instead of being delivered
again. Every change is one database transaction (SQLite ``BEGIN IMMEDIATE``; row
locks with ``SKIP LOCKED`` on PostgreSQL), so several processes can share a queue and
nothing is lost when one is killed.
"""

from __future__ import annotations

import json
import re
import secrets
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from lakelet.errors import ConfigError, NotFoundError, UserError
from lakelet.metadata import ensure_tables

if TYPE_CHECKING:
    from lakelet.config import QueueSection

QUEUE_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,80}$")  # SQS's standard-queue names
ATTRIBUTE_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,256}$")
DEFAULT_VISIBILITY_TIMEOUT_S = 30.0
MAX_VISIBILITY_TIMEOUT_S = 43_200.0  # 12 hours
MAX_DELAY_S = 900.0  # 15 minutes
MAX_RECEIVE_BATCH = 10
MAX_RECEIVE_COUNT = 1000
MAX_ATTRIBUTES = 10
MAX_MESSAGE_BYTES = 1_048_576  # body plus attribute names and values, as SQS counts

_meta = sa.MetaData()
queues_table = sa.Table(
    "function_queues",
    _meta,
    sa.Column("name", sa.String(80), primary_key=True),
    sa.Column("visibility_timeout_s", sa.Float, nullable=False),
    sa.Column("max_receive_count", sa.Integer, nullable=True),
    sa.Column("dead_letter", sa.String(80), nullable=True),
    sa.Column("created_at_ms", sa.BigInteger, nullable=False),
)
messages_table = sa.Table(
    "function_queue_messages",
    _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("queue", sa.String(80), nullable=False),
    sa.Column("message_id", sa.String(36), nullable=False, unique=True),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("attributes", sa.Text, nullable=False),
    sa.Column("sent_at_ms", sa.BigInteger, nullable=False),
    sa.Column("visible_at_ms", sa.BigInteger, nullable=False),
    sa.Column("receive_count", sa.Integer, nullable=False),
    sa.Column("first_received_at_ms", sa.BigInteger, nullable=True),
    sa.Column("receipt_handle", sa.String(64), nullable=True, unique=True),
    sa.Column("dead_letter_source", sa.String(80), nullable=True),
    sa.Index("ix_function_queue_messages_ready", "queue", "visible_at_ms"),
)


@dataclass(frozen=True)
class QueueConfig:
    """A queue's settings; ``dead_letter`` with ``max_receive_count`` is its redrive."""

    name: str
    visibility_timeout_s: float = DEFAULT_VISIBILITY_TIMEOUT_S
    max_receive_count: int | None = None
    dead_letter: str | None = None


@dataclass(frozen=True)
class QueueMessage:
    """One received message. ``receipt_handle`` is new for every receive and is what
    :meth:`QueueStore.delete` and :meth:`QueueStore.change_visibility` take.
    ``dead_letter_source`` names the queue it was redriven from, if any."""

    message_id: str
    receipt_handle: str
    body: str
    attributes: dict[str, str]
    receive_count: int
    sent_at: datetime
    first_received_at: datetime
    queue: str = ""
    dead_letter_source: str | None = None


@dataclass(frozen=True)
class QueueDepth:
    """SQS's approximate counts: available now, received and hidden, not yet sent."""

    visible: int
    in_flight: int
    delayed: int

    @property
    def total(self) -> int:
        return self.visible + self.in_flight + self.delayed


@dataclass
class QueueStore:
    """All queues of a project, in its metadata database (``project.metadata``).

    ``clock`` (epoch seconds) is for tests; every process sharing the queues must
    agree on it, so anything but ``time.time`` is for one process only.
    """

    engine: sa.Engine
    clock: Callable[[], float] = time.time
    _sqlite: bool = field(init=False)

    def __post_init__(self) -> None:
        ensure_tables(self.engine, _meta)
        self._sqlite = self.engine.dialect.name == "sqlite"

    # --- queues ----------------------------------------------------------------------

    def ensure(
        self,
        name: str,
        *,
        visibility_timeout_s: float = DEFAULT_VISIBILITY_TIMEOUT_S,
        max_receive_count: int | None = None,
        dead_letter: str | None = None,
    ) -> QueueConfig:
        """Create ``name`` or update its settings (idempotent); a dead-letter queue
        that does not exist yet is created with default settings."""
        config = QueueConfig(name, float(visibility_timeout_s), max_receive_count, dead_letter)
        _check_config(config)
        with self._writing(defining=True) as conn:
            if dead_letter is not None:
                self._create_missing(conn, dead_letter)
            values = {
                "visibility_timeout_s": config.visibility_timeout_s,
                "max_receive_count": max_receive_count,
                "dead_letter": dead_letter,
            }
            if self._find(conn, name) is None:
                conn.execute(
                    queues_table.insert().values(name=name, created_at_ms=self._now_ms(), **values)
                )
            else:
                conn.execute(
                    queues_table.update().where(queues_table.c.name == name).values(**values)
                )
        return config

    def ensure_queues(
        self, sections: Mapping[str, QueueSection], referenced: Iterable[str] = ()
    ) -> None:
        """Apply ``[functions.queues.NAME]`` settings, and create every other queue the
        app refers to (triggers, dead-letter queues) with defaults if it is missing."""
        for name, section in sections.items():
            self.ensure(
                name,
                visibility_timeout_s=section.visibility_timeout_s,
                max_receive_count=section.max_receive_count,
                dead_letter=section.dead_letter,
            )
        missing = sorted(set(referenced) - set(sections))
        for name in missing:
            _check_name(name)
        if missing:
            with self._writing(defining=True) as conn:
                for name in missing:
                    self._create_missing(conn, name)

    def config(self, name: str) -> QueueConfig:
        with self.engine.connect() as conn:
            return self._require(conn, name)

    def names(self) -> list[str]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(queues_table.c.name).order_by(queues_table.c.name))
            return [r[0] for r in rows]

    # --- messages --------------------------------------------------------------------

    def send(
        self,
        queue: str,
        body: str,
        attributes: Mapping[str, str] | None = None,
        *,
        delay_s: float = 0.0,
    ) -> str:
        """Append a message; it becomes receivable after ``delay_s`` (0–900 s).
        Returns its message id."""
        attrs = dict(attributes or {})
        _check_message(queue, body, attrs)
        if not 0 <= delay_s <= MAX_DELAY_S:
            raise UserError(
                f"queue {queue!r}: delay_s is 0 to {MAX_DELAY_S:.0f} seconds, as in SQS"
            )
        message_id = str(uuid.uuid4())
        now = self._now_ms()
        with self._writing() as conn:
            self._require(conn, queue)
            conn.execute(
                messages_table.insert().values(
                    queue=queue,
                    message_id=message_id,
                    body=body,
                    attributes=json.dumps(attrs, sort_keys=True),
                    sent_at_ms=now,
                    visible_at_ms=now + round(delay_s * 1000),
                    receive_count=0,
                )
            )
        return message_id

    def receive(
        self,
        queue: str,
        max_messages: int = MAX_RECEIVE_BATCH,
        *,
        visibility_timeout_s: float | None = None,
    ) -> list[QueueMessage]:
        """Take up to ``max_messages`` (1–10) visible messages, oldest first, and hide
        them for the visibility timeout (the queue's unless given)."""
        if not 1 <= max_messages <= MAX_RECEIVE_BATCH:
            raise UserError(f"queue {queue!r}: max_messages is 1 to {MAX_RECEIVE_BATCH}, as in SQS")
        if visibility_timeout_s is not None:
            _check_visibility(queue, visibility_timeout_s)
        m = messages_table.c
        with self._writing() as conn:
            config = self._require(conn, queue)
            timeout_s = (
                config.visibility_timeout_s
                if visibility_timeout_s is None
                else visibility_timeout_s
            )
            now = self._now_ms()
            ready = sa.and_(m.queue == queue, m.visible_at_ms <= now)
            if config.max_receive_count is not None and config.dead_letter is not None:
                self._redrive(conn, ready, config.max_receive_count, config.dead_letter, queue, now)
            rows = (
                conn.execute(
                    sa.select(messages_table)
                    .where(ready)
                    .order_by(m.id)
                    .limit(max_messages)
                    .with_for_update(skip_locked=True)
                )
                .mappings()
                .all()
            )
            visible_at = now + round(timeout_s * 1000)
            received = []
            for row in rows:
                handle = secrets.token_urlsafe(32)
                first = row["first_received_at_ms"] or now
                count = row["receive_count"] + 1
                conn.execute(
                    messages_table.update()
                    .where(m.id == row["id"])
                    .values(
                        receipt_handle=handle,
                        visible_at_ms=visible_at,
                        receive_count=count,
                        first_received_at_ms=first,
                    )
                )
                received.append(
                    QueueMessage(
                        message_id=row["message_id"],
                        receipt_handle=handle,
                        body=row["body"],
                        attributes=json.loads(row["attributes"]),
                        receive_count=count,
                        sent_at=_datetime(row["sent_at_ms"]),
                        first_received_at=_datetime(first),
                        queue=queue,
                        dead_letter_source=row["dead_letter_source"],
                    )
                )
        return received

    def delete(self, queue: str, receipt_handle: str) -> bool:
        """Delete the message last received with ``receipt_handle``. A handle from an
        earlier receive deletes nothing (``False``), as on SQS, so a slow consumer cannot
        delete a message someone else is now processing."""
        m = messages_table.c
        with self._writing() as conn:
            self._require(conn, queue)
            result = conn.execute(
                messages_table.delete().where(m.queue == queue, m.receipt_handle == receipt_handle)
            )
            return result.rowcount > 0

    def change_visibility(self, queue: str, receipt_handle: str, timeout_s: float) -> bool:
        """Hide an in-flight message for ``timeout_s`` more seconds from now (0 makes it
        visible at once). ``False`` when the handle is stale or the message is no longer
        in flight."""
        _check_visibility(queue, timeout_s)
        m = messages_table.c
        with self._writing() as conn:
            self._require(conn, queue)
            now = self._now_ms()
            result = conn.execute(
                messages_table.update()
                .where(m.queue == queue, m.receipt_handle == receipt_handle, m.visible_at_ms > now)
                .values(visible_at_ms=now + round(timeout_s * 1000))
            )
            return result.rowcount > 0

    def depth(self, queue: str) -> QueueDepth:
        m = messages_table.c
        now = self._now_ms()
        hidden = m.visible_at_ms > now
        with self.engine.connect() as conn:
            self._require(conn, queue)
            row = conn.execute(
                sa.select(
                    sa.func.count().filter(sa.not_(hidden)),
                    sa.func.count().filter(hidden, m.receipt_handle.is_not(None)),
                    sa.func.count().filter(hidden, m.receipt_handle.is_(None)),
                ).where(m.queue == queue)
            ).one()
        return QueueDepth(visible=row[0] or 0, in_flight=row[1] or 0, delayed=row[2] or 0)

    def purge(self, queue: str) -> int:
        """Delete every message of ``queue``, in flight or not; returns how many."""
        with self._writing() as conn:
            self._require(conn, queue)
            result = conn.execute(messages_table.delete().where(messages_table.c.queue == queue))
            return result.rowcount

    # --- internals -------------------------------------------------------------------

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    @contextmanager
    def _writing(self, *, defining: bool = False) -> Iterator[sa.Connection]:
        """A write transaction that takes SQLite's write lock up front, so two
        processes never both read a message as visible and both claim it.
        ``defining`` serialises queue creation on PostgreSQL too (row locks cannot
        guard a row that does not exist yet)."""
        with self.engine.connect() as conn:
            if self._sqlite:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            elif defining:
                conn.exec_driver_sql(f"LOCK TABLE {queues_table.name} IN SHARE ROW EXCLUSIVE MODE")
            try:
                yield conn
            except BaseException:
                conn.rollback()
                raise
            conn.commit()

    def _redrive(
        self,
        conn: sa.Connection,
        ready: sa.ColumnElement[bool],
        max_receive_count: int,
        dead_letter: str,
        source: str,
        now: int,
    ) -> None:
        m = messages_table.c
        conn.execute(
            messages_table.update()
            .where(ready, m.receive_count >= max_receive_count)
            .values(
                queue=dead_letter,
                visible_at_ms=now,
                receive_count=0,
                first_received_at_ms=None,
                receipt_handle=None,
                dead_letter_source=source,
            )
        )

    def _find(self, conn: sa.Connection, name: str) -> QueueConfig | None:
        row = (
            conn.execute(sa.select(queues_table).where(queues_table.c.name == name))
            .mappings()
            .first()
        )
        if row is None:
            return None
        return QueueConfig(
            name=row["name"],
            visibility_timeout_s=row["visibility_timeout_s"],
            max_receive_count=row["max_receive_count"],
            dead_letter=row["dead_letter"],
        )

    def _require(self, conn: sa.Connection, name: str) -> QueueConfig:
        config = self._find(conn, name)
        if config is None:
            known = conn.execute(sa.select(queues_table.c.name).order_by(queues_table.c.name))
            names = ", ".join(r[0] for r in known) or "none"
            raise NotFoundError(
                f"no queue named {name!r} (known: {names}); declare it under "
                f"[functions.queues.{name}] or with @app.on_queue({name!r})"
            )
        return config

    def _create_missing(self, conn: sa.Connection, name: str) -> None:
        if self._find(conn, name) is None:
            conn.execute(
                queues_table.insert().values(
                    name=name,
                    visibility_timeout_s=DEFAULT_VISIBILITY_TIMEOUT_S,
                    created_at_ms=self._now_ms(),
                )
            )


def _check_name(name: str) -> None:
    if not QUEUE_NAME_RE.match(name):
        raise ConfigError(f"queue name {name!r}: use 1 to 80 letters, digits, '-' and '_'")


def _check_visibility(queue: str, timeout_s: float) -> None:
    if not 0 <= timeout_s <= MAX_VISIBILITY_TIMEOUT_S:
        raise UserError(
            f"queue {queue!r}: a visibility timeout is 0 to {MAX_VISIBILITY_TIMEOUT_S:.0f} "
            f"seconds, got {timeout_s}"
        )


def _check_config(config: QueueConfig) -> None:
    name = config.name
    _check_name(name)
    _check_visibility(name, config.visibility_timeout_s)
    if (config.max_receive_count is None) != (config.dead_letter is None):
        raise ConfigError(
            f"queue {name!r}: a redrive policy needs both max_receive_count and dead_letter"
        )
    if (
        config.max_receive_count is not None
        and not 1 <= config.max_receive_count <= MAX_RECEIVE_COUNT
    ):
        raise ConfigError(f"queue {name!r}: max_receive_count is 1 to {MAX_RECEIVE_COUNT}")
    if config.dead_letter is not None:
        _check_name(config.dead_letter)
        if config.dead_letter == name:
            raise ConfigError(f"queue {name!r} cannot be its own dead-letter queue")


def _check_message(queue: str, body: str, attributes: Mapping[str, Any]) -> None:
    if not isinstance(body, str):
        raise UserError(f"queue {queue!r}: a message body is a string, got {type(body).__name__}")
    if len(attributes) > MAX_ATTRIBUTES:
        raise UserError(f"queue {queue!r}: at most {MAX_ATTRIBUTES} message attributes, as in SQS")
    size = len(body.encode("utf-8"))
    for key, value in attributes.items():
        if (
            not ATTRIBUTE_NAME_RE.match(key)
            or key.lower().startswith(("aws.", "amazon."))
            or key.startswith(".")
            or key.endswith(".")
            or ".." in key
        ):
            raise UserError(
                f"queue {queue!r}: message attribute name {key!r} is not allowed; use "
                "letters, digits, '_', '-' and '.', not starting with 'AWS.' or 'Amazon.'"
            )
        if not isinstance(value, str):
            raise UserError(f"queue {queue!r}: message attribute {key!r} must be a string")
        size += len(key.encode("utf-8")) + len(value.encode("utf-8"))
    if size > MAX_MESSAGE_BYTES:
        raise UserError(
            f"queue {queue!r}: message of {size} bytes is over SQS's {MAX_MESSAGE_BYTES}-byte "
            "limit; put large payloads in the lake and send their key"
        )


def _datetime(epoch_ms: int) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC)
