"""Fixtures shared by the functions tests."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from lakelet.metadata import open_engine


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> sa.Engine:
    """A metadata database on SQLite, and on a real PostgreSQL server (integration)."""
    if request.param == "sqlite":
        return open_engine("sqlite:///metadata.db", tmp_path)
    server = request.getfixturevalue("postgres_server")
    return open_engine(server.create_database(f"fn_{uuid.uuid4().hex[:8]}"), tmp_path)
