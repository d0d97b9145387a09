"""The ``store`` fixture: every behaviour test runs on a local folder and on S3."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lakelet.storage.base import ObjectStore
from lakelet.storage.local import LocalStore
from lakelet.storage.s3 import MIN_PART_SIZE, S3Store

SMALL_PART = MIN_PART_SIZE  # so a test-sized stream takes the multipart path on S3


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.integration)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    """An empty lake with one bucket, ``raw``."""
    lake: ObjectStore
    if request.param == "local":
        lake = LocalStore(tmp_path / "lake")
    else:
        server: Any = request.getfixturevalue("s3_server")
        lake = S3Store(server.new_root(), server.settings(), part_size=SMALL_PART)
    lake.create_bucket("raw")
    return lake
