"""The default lake: a folder on disk, one sub-folder per bucket.

Writes go to a temporary file in the target folder and are renamed into place, so a
reader (or a crash) never sees half an object.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from lakelet.errors import InvalidKeyError, ObjectNotFoundError, StorageError
from lakelet.storage.base import (
    DEFAULT_PAGE_SIZE,
    ListPage,
    ObjectInfo,
    validate_bucket,
    validate_key,
    validate_prefix,
)

TMP_PREFIX = ".lakelet-tmp-"
COPY_CHUNK = 1 << 20


NS = 1_000_000_000


class LocalStore:
    """An :class:`~lakelet.storage.base.ObjectStore` over a local folder."""

    def __init__(self, root: Path) -> None:
        self._root = root.resolve()

    @property
    def root(self) -> str:
        return str(self._root)

    def _path(self, bucket: str, key: str) -> Path:
        validate_bucket(bucket)
        validate_key(key)
        path = self._root / bucket / key
        # Defence in depth: validation already forbids '..', but never leave the bucket.
        if not path.resolve().is_relative_to((self._root / bucket).resolve()):
            raise InvalidKeyError(f"invalid key {key!r}: resolves outside bucket {bucket!r}")
        return path

    def _bucket_dir(self, bucket: str) -> Path:
        path = self._root / validate_bucket(bucket)
        if not path.is_dir():
            raise ObjectNotFoundError(
                f"no bucket {bucket!r} in the lake at {self._root}; "
                f"existing buckets: {', '.join(self.buckets()) or 'none'}"
            )
        return path

    def put(self, bucket: str, key: str, data: bytes | IO[bytes]) -> ObjectInfo:
        target = self._path(bucket, key)
        self._bucket_dir(bucket)
        if target.is_dir():
            raise InvalidKeyError(f"cannot write {bucket}/{key}: a folder of that name exists")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=target.parent)
            try:
                with os.fdopen(fd, "wb") as out:
                    if isinstance(data, bytes | bytearray | memoryview):
                        out.write(data)
                    else:
                        shutil.copyfileobj(data, out, COPY_CHUNK)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise StorageError(f"cannot write {bucket}/{key}: {exc.strerror or exc}") from exc
        return self._info(bucket, key, target)

    def get(self, bucket: str, key: str) -> bytes:
        with self.open(bucket, key) as stream:
            return stream.read()

    def open(self, bucket: str, key: str) -> IO[bytes]:
        path = self._path(bucket, key)
        try:
            return path.open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise ObjectNotFoundError(f"no object {bucket}/{key}") from exc

    def head(self, bucket: str, key: str) -> ObjectInfo:
        path = self._path(bucket, key)
        if not path.is_file():
            raise ObjectNotFoundError(f"no object {bucket}/{key}")
        return self._info(bucket, key, path)

    def list_page(
        self,
        bucket: str,
        prefix: str = "",
        *,
        token: str | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
    ) -> ListPage:
        validate_prefix(prefix)
        base = self._bucket_dir(bucket)
        # Walk only the deepest folder the prefix names, then filter by the full prefix.
        # os.scandir and plain strings: listing 10,000 files must cost milliseconds.
        folder = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = base / folder if folder else base
        found: list[ObjectInfo] = []
        stamps: dict[int, datetime] = {}  # files written together share their second
        skip = len(str(base)) + 1
        pending = [str(start)] if start.is_dir() else []
        while pending:
            with os.scandir(pending.pop()) as entries:
                for entry in entries:
                    if entry.name.startswith(TMP_PREFIX):
                        continue
                    if entry.is_dir():
                        if not entry.is_symlink():  # as os.walk: no symlinked folders
                            pending.append(entry.path)
                        continue
                    key = entry.path[skip:]
                    if os.sep != "/":
                        key = key.replace(os.sep, "/")
                    if key.startswith(prefix) and (token is None or key > token):
                        try:
                            stat = entry.stat()
                        except FileNotFoundError:
                            continue  # deleted since the folder was read
                        # as _object_info, inlined: this loop runs once per object
                        size, nanos = stat.st_size, stat.st_mtime_ns
                        second = nanos // NS
                        modified = stamps.get(second)
                        if modified is None:
                            modified = stamps[second] = datetime.fromtimestamp(second, UTC)
                        found.append(ObjectInfo(bucket, key, size, f"{size:x}-{nanos:x}", modified))
        found.sort(key=_by_key)
        more = len(found) > limit
        page = found[:limit] if more else found
        return ListPage(page, page[-1].key if more else None)

    def delete(self, bucket: str, key: str) -> None:
        path = self._path(bucket, key)
        try:
            path.unlink(missing_ok=True)
        except IsADirectoryError as exc:
            raise InvalidKeyError(f"{bucket}/{key} is a folder, not an object") from exc
        # Remove folders the delete left empty, as S3 has no folders to leave behind.
        base = (self._root / bucket).resolve()
        parent = path.parent
        while parent.resolve() != base and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent

    def buckets(self) -> list[str]:
        if not self._root.is_dir():
            return []
        return sorted(p.name for p in self._root.iterdir() if p.is_dir())

    def create_bucket(self, bucket: str) -> None:
        (self._root / validate_bucket(bucket)).mkdir(parents=True, exist_ok=True)

    def url(self, bucket: str, key: str = "") -> str:
        validate_bucket(bucket)
        return str(self._root / bucket / key) if key else str(self._root / bucket)

    def filesystem(self) -> Any:
        from fsspec.implementations.local import LocalFileSystem

        return LocalFileSystem()

    @staticmethod
    def _info(bucket: str, key: str, path: Path | str) -> ObjectInfo:
        try:
            stat = os.stat(path)
        except FileNotFoundError as exc:
            raise ObjectNotFoundError(f"no object {bucket}/{key}") from exc
        return _object_info(bucket, key, stat)


def _by_key(info: ObjectInfo) -> str:
    return info.key


def _object_info(bucket: str, key: str, stat: os.stat_result) -> ObjectInfo:
    """A local object's size, weak ETag (size and mtime in nanoseconds) and modification
    time in whole seconds, as S3 reports ``LastModified``."""
    return ObjectInfo(
        bucket=bucket,
        key=key,
        size=stat.st_size,
        etag=f"{stat.st_size:x}-{stat.st_mtime_ns:x}",
        last_modified=datetime.fromtimestamp(stat.st_mtime_ns // NS, tz=UTC),
    )
