"""The project's metadata database: runs, object events, rejects, crawl state.

Only the connection lives here. Each room declares its own tables on its own
``sqlalchemy.MetaData`` and creates them through :func:`ensure_tables`, so rooms never
reach into each other's tables. SQLite (the default) is put in WAL mode with a busy
timeout because the CLI, ``lakelet up`` and workers share the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa

from lakelet.errors import ConfigError

SQLITE_BUSY_TIMEOUT_S = 30


def resolve_sqlalchemy_uri(uri: str, base: Path) -> str:
    """Make ``sqlite:///relative.db`` relative to the project folder, not the cwd."""
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        relative = uri[len("sqlite:///") :]
        if relative and relative != ":memory:":
            path = (base / relative).resolve()
            path.parent.mkdir(parents=True, exist_ok=True)
            return f"sqlite:///{path}"
    if uri.startswith("postgresql://"):
        return "postgresql+psycopg://" + uri[len("postgresql://") :]
    if not uri.startswith(("sqlite:", "postgresql+psycopg:")):
        raise ConfigError(
            f"unsupported database URI {uri!r}: use sqlite:///path.db or postgresql://..."
        )
    return uri


def open_engine(uri: str, base: Path) -> sa.Engine:
    """An engine for a metadata or catalog database, tuned for several processes."""
    url = resolve_sqlalchemy_uri(uri, base)
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})

        @sa.event.listens_for(engine, "connect")
        def _pragma(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
            cursor.close()

        return engine
    if url.startswith("postgresql"):
        try:
            import psycopg  # noqa: F401
        except ImportError as exc:
            from lakelet.errors import MissingExtraError

            raise MissingExtraError("psycopg", "postgres", "a PostgreSQL database") from exc
    return sa.create_engine(url, pool_pre_ping=True)


def ensure_tables(engine: sa.Engine, metadata: sa.MetaData) -> None:
    """Create a room's tables if they do not exist yet (idempotent)."""
    try:
        metadata.create_all(engine, checkfirst=True)
    except sa.exc.OperationalError as exc:
        url = engine.url.render_as_string(hide_password=True)
        reason = str(exc.orig).strip() if exc.orig is not None else str(exc)
        raise ConfigError(f"cannot open the database {url}: {reason}") from exc
