"""The lake: object stores by URI scheme, and their object-created events."""

from __future__ import annotations

from pathlib import Path

from lakelet.config import S3Section
from lakelet.storage.base import ListPage, ObjectInfo, ObjectStore, iter_objects, split_location

__all__ = ["ListPage", "ObjectInfo", "ObjectStore", "iter_objects", "open_store", "split_location"]


def open_store(root: str, *, base: Path, s3: S3Section | None = None) -> ObjectStore:
    """The backend for a lake root: a folder (relative to ``base``) or ``s3://bucket/prefix``."""
    if root.startswith("s3://"):
        from lakelet.storage.s3 import S3Store

        return S3Store(root, s3 or S3Section())
    if "://" in root and not root.startswith("file://"):
        from lakelet.errors import ConfigError

        raise ConfigError(f"lake.root = {root!r}: use a folder path or s3://bucket/prefix")
    from lakelet.storage.local import LocalStore

    path = Path(root.removeprefix("file://"))
    return LocalStore(path if path.is_absolute() else base / path)
