"""The lake on S3 or any S3 API (MinIO, SeaweedFS): one real bucket, a prefix per lake bucket.

A lake rooted at ``s3://BUCKET/PREFIX`` keeps its ``raw`` bucket under
``s3://BUCKET/PREFIX/raw/``. S3 has no folders, so :meth:`S3Store.create_bucket` writes
a zero-byte marker object that :meth:`S3Store.list_page` hides. Puts are atomic because
S3's are: a single ``PutObject``, or a multipart upload that only appears when it is
completed (and is aborted if the source fails). ``s3fs`` is imported on first use.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import IO, Any

from lakelet.config import S3Section
from lakelet.errors import (
    ConfigError,
    InvalidKeyError,
    LakeletError,
    MissingExtraError,
    ObjectNotFoundError,
    StorageError,
    UserError,
)
from lakelet.storage.base import (
    BUCKET_RE,
    DEFAULT_PAGE_SIZE,
    MAX_KEY_BYTES,
    ListPage,
    ObjectInfo,
    validate_bucket,
    validate_key,
    validate_prefix,
)

BUCKET_MARKER = ".lakelet-bucket"
MIN_PART_SIZE = 5 << 20  # S3's smallest multipart part (except the last)
DEFAULT_PART_SIZE = 8 << 20
PARTS_PER_SIZE_STEP = 1000  # part size grows every 1000 parts to stay under S3's 10,000
DEFAULT_REGION = "us-east-1"


def resolved_s3_settings(s3: S3Section, env: Mapping[str, str] | None = None) -> S3Section:
    """``s3`` with unset values taken from the usual ``AWS_*`` environment variables.

    Credentials come as a group: an access key set in ``lakelet.toml`` is never paired
    with a secret or session token from the environment. A custom endpoint without a
    region gets ``us-east-1``, which S3-compatible servers accept and clients need.
    """
    env = os.environ if env is None else env

    def pick(value: str | None, *names: str) -> str | None:
        return value or next((env[n] for n in names if env.get(n)), None)

    endpoint = pick(s3.endpoint_url, "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
    region = pick(s3.region, "AWS_REGION", "AWS_DEFAULT_REGION")
    key: str | None = s3.access_key_id
    secret, token = s3.secret_access_key, s3.session_token
    if not key:
        key = pick(None, "AWS_ACCESS_KEY_ID")
        secret = pick(s3.secret_access_key, "AWS_SECRET_ACCESS_KEY")
        token = pick(s3.session_token, "AWS_SESSION_TOKEN")
    return dataclasses.replace(
        s3,
        endpoint_url=endpoint,
        region=region or (DEFAULT_REGION if endpoint else None),
        access_key_id=key,
        secret_access_key=secret,
        session_token=token,
    )


def parse_root(root: str) -> tuple[str, str]:
    """``s3://bucket/a/b/`` → ``("bucket", "a/b")``; a bad root is a configuration error."""
    if not root.startswith("s3://"):
        raise ConfigError(f"lake.root = {root!r}: an S3 lake root starts with s3://")
    bucket, _, prefix = root[len("s3://") :].partition("/")
    prefix = prefix.strip("/")
    try:
        validate_bucket(bucket)
        if prefix:
            validate_key(prefix)
    except InvalidKeyError as exc:
        raise ConfigError(
            f"lake.root = {root!r}: {exc}; use s3://BUCKET or s3://BUCKET/PREFIX"
        ) from exc
    return bucket, prefix


class S3Store:
    """An :class:`~lakelet.storage.base.ObjectStore` over a prefix of one S3 bucket.

    Listing order is the server's: UTF-8 byte order on AWS S3 and MinIO; SeaweedFS lists
    folder by folder (``a/b`` before ``a-b``). Pages never skip or repeat an object either
    way, because the next page starts after the last key the server returned.
    """

    def __init__(self, root: str, s3: S3Section, *, part_size: int = DEFAULT_PART_SIZE) -> None:
        self._s3_bucket, self._prefix = parse_root(root)
        self._settings = resolved_s3_settings(s3)
        self._part_size = max(part_size, MIN_PART_SIZE)
        # Lake buckets seen to exist, so a put costs one request, not two.
        self._known_buckets: set[str] = set()
        self._fs_for_pid: tuple[int, Any] | None = None
        self._inherited: list[Any] = []

    @property
    def _fs(self) -> Any:
        """The s3fs filesystem, rebuilt in a forked child (its event loop stays behind)."""
        pid = os.getpid()
        if self._fs_for_pid is None or self._fs_for_pid[0] != pid:
            if self._fs_for_pid is not None:
                # Never let the child finalize the parent's client: its sockets are in the
                # parent's epoll set, and closing them here would silence them there.
                self._inherited.append(self._fs_for_pid[1])
            self._fs_for_pid = (pid, self._new_filesystem())
        return self._fs_for_pid[1]

    def _new_filesystem(self) -> Any:
        try:
            import s3fs
        except ImportError as exc:
            raise MissingExtraError("s3fs", "s3", "an S3 lake") from exc
        settings = self._settings
        config: dict[str, Any] = {"retries": {"max_attempts": 3, "mode": "standard"}}
        if settings.endpoint_url:
            # S3-compatible servers (MinIO, SeaweedFS) rarely resolve bucket host names.
            config["s3"] = {"addressing_style": "path"}
        return s3fs.S3FileSystem(
            key=settings.access_key_id,
            secret=settings.secret_access_key,
            token=settings.session_token,
            endpoint_url=settings.endpoint_url,
            client_kwargs={"region_name": settings.region} if settings.region else {},
            config_kwargs=config,
            # Other processes write the lake too: never answer from a stale listing.
            use_listings_cache=False,
        )

    # --- where things are --------------------------------------------------------

    @property
    def root(self) -> str:
        suffix = f"/{self._prefix}" if self._prefix else ""
        return f"s3://{self._s3_bucket}{suffix}"

    @property
    def _lake_prefix(self) -> str:
        """The S3 key prefix of the whole lake: ``""`` or ending with '/'."""
        return f"{self._prefix}/" if self._prefix else ""

    def _base(self, bucket: str) -> str:
        """The S3 key prefix of a lake bucket, ending with '/'."""
        return f"{self._lake_prefix}{bucket}/"

    def _s3_key(self, bucket: str, key: str) -> str:
        validate_bucket(bucket)
        validate_key(key)
        if key == BUCKET_MARKER:
            raise InvalidKeyError(f"invalid key {key!r}: the name is reserved by Lakelet")
        s3_key = self._base(bucket) + key
        if len(s3_key.encode("utf-8")) > MAX_KEY_BYTES:
            raise InvalidKeyError(
                f"invalid key {key[:40]!r}… ({len(key.encode('utf-8'))} bytes): with the lake's "
                f"prefix {self._base(bucket)!r} it exceeds S3's limit of {MAX_KEY_BYTES} bytes"
            )
        return s3_key

    def url(self, bucket: str, key: str = "") -> str:
        validate_bucket(bucket)
        base = f"s3://{self._s3_bucket}/{self._base(bucket)}"
        return base + key if key else base.rstrip("/")

    def filesystem(self) -> Any:
        return self._fs

    def _where(self) -> str:
        endpoint = self._settings.endpoint_url or "AWS S3"
        return f"{self.root} ({endpoint})"

    @contextmanager
    def _errors(self, action: str, bucket: str, key: str = "") -> Iterator[None]:
        """Turn s3fs/botocore failures into Lakelet errors naming the object and endpoint."""
        what = f"{bucket}/{key}" if key else bucket
        try:
            yield
        except LakeletError:
            raise
        except FileNotFoundError as exc:
            raise ObjectNotFoundError(f"no object {what} in the lake at {self.root}") from exc
        except PermissionError as exc:
            raise StorageError(
                f"cannot {action} {what} in {self._where()}: access denied ({exc}); "
                "check [s3] access_key_id/secret_access_key or AWS_ACCESS_KEY_ID"
            ) from exc
        except Exception as exc:  # botocore, aiohttp and OSError alike
            raise StorageError(f"cannot {action} {what} in {self._where()}: {exc}") from exc

    # --- objects -----------------------------------------------------------------

    def put(self, bucket: str, key: str, data: bytes | IO[bytes]) -> ObjectInfo:
        s3_key = self._s3_key(bucket, key)
        self._require_bucket(bucket)
        if isinstance(data, bytes | bytearray | memoryview):
            with self._errors("write", bucket, key):
                self._fs.call_s3("put_object", Bucket=self._s3_bucket, Key=s3_key, Body=bytes(data))
        else:
            self._put_stream(bucket, key, s3_key, data)
        return self.head(bucket, key)

    def _put_stream(self, bucket: str, key: str, s3_key: str, stream: IO[bytes]) -> None:
        """One ``PutObject`` for a small stream, else a multipart upload, one part in memory."""
        part_size = self._part_size
        chunk = self._read_part(stream, part_size, bucket, key)
        if len(chunk) < part_size:
            with self._errors("write", bucket, key):
                self._fs.call_s3("put_object", Bucket=self._s3_bucket, Key=s3_key, Body=chunk)
            return
        with self._errors("start an upload of", bucket, key):
            upload = self._fs.call_s3("create_multipart_upload", Bucket=self._s3_bucket, Key=s3_key)
        upload_id = upload["UploadId"]
        parts: list[dict[str, Any]] = []
        try:
            while chunk:
                number = len(parts) + 1
                with self._errors(f"upload part {number} of", bucket, key):
                    response = self._fs.call_s3(
                        "upload_part",
                        Bucket=self._s3_bucket,
                        Key=s3_key,
                        UploadId=upload_id,
                        PartNumber=number,
                        Body=chunk,
                    )
                parts.append({"PartNumber": number, "ETag": response["ETag"]})
                size = part_size * (1 + len(parts) // PARTS_PER_SIZE_STEP)
                chunk = self._read_part(stream, size, bucket, key)
            with self._errors("complete the upload of", bucket, key):
                self._fs.call_s3(
                    "complete_multipart_upload",
                    Bucket=self._s3_bucket,
                    Key=s3_key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},
                )
        except BaseException:
            with suppress(Exception):
                self._fs.call_s3(
                    "abort_multipart_upload", Bucket=self._s3_bucket, Key=s3_key, UploadId=upload_id
                )
            raise

    @staticmethod
    def _read_part(stream: IO[bytes], size: int, bucket: str, key: str) -> bytes:
        """Up to ``size`` bytes; short only at the end of the stream."""
        buffer = bytearray()
        try:
            while len(buffer) < size:
                block = stream.read(size - len(buffer))
                if not block:
                    break
                buffer += block
        except OSError as exc:
            raise StorageError(
                f"cannot write {bucket}/{key}: reading the source failed: {exc}"
            ) from exc
        return bytes(buffer)

    def get(self, bucket: str, key: str) -> bytes:
        s3_key = self._s3_key(bucket, key)
        with self._errors("read", bucket, key):
            data: bytes = self._fs.cat_file(f"{self._s3_bucket}/{s3_key}")
        return data

    def open(self, bucket: str, key: str) -> IO[bytes]:
        # head first: s3fs would open a "folder" (a prefix of other keys) as an empty file.
        self.head(bucket, key)
        with self._errors("open", bucket, key):
            stream: IO[bytes] = self._fs.open(
                f"{self._s3_bucket}/{self._s3_key(bucket, key)}", "rb"
            )
        return stream

    def head(self, bucket: str, key: str) -> ObjectInfo:
        s3_key = self._s3_key(bucket, key)
        with self._errors("read", bucket, key):
            response = self._fs.call_s3("head_object", Bucket=self._s3_bucket, Key=s3_key)
        return ObjectInfo(
            bucket=bucket,
            key=key,
            size=int(response["ContentLength"]),
            etag=_etag(response["ETag"]),
            last_modified=_utc(response["LastModified"]),
        )

    def list_page(
        self,
        bucket: str,
        prefix: str = "",
        *,
        token: str | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
    ) -> ListPage:
        validate_bucket(bucket)
        validate_prefix(prefix)
        if limit < 1:
            raise UserError(f"listing limit must be at least 1, got {limit}")
        base = self._base(bucket)
        # One extra key: the bucket marker may be among them and is dropped.
        request: dict[str, Any] = {
            "Bucket": self._s3_bucket,
            "Prefix": base + prefix,
            "MaxKeys": limit + 1,
        }
        if token is not None:
            request["StartAfter"] = base + token
        try:
            with self._errors("list", bucket, prefix):
                response = self._fs.call_s3("list_objects_v2", **request)
        except ObjectNotFoundError:  # the S3 bucket does not exist
            self._known_buckets.discard(bucket)
            self._require_bucket(bucket)
            raise
        objects = [
            ObjectInfo(
                bucket=bucket,
                key=item["Key"][len(base) :],
                size=int(item["Size"]),
                etag=_etag(item.get("ETag", "")),
                last_modified=_utc(item["LastModified"]),
            )
            for item in response.get("Contents", [])
            if item["Key"] != base + BUCKET_MARKER and not item["Key"].endswith("/")
        ]
        more = bool(response.get("IsTruncated"))
        if len(objects) > limit:
            objects, more = objects[:limit], True
        if not objects and token is None:
            self._require_bucket(bucket)
        return ListPage(objects, objects[-1].key if more and objects else None)

    def delete(self, bucket: str, key: str) -> None:
        s3_key = self._s3_key(bucket, key)
        with suppress(ObjectNotFoundError), self._errors("delete", bucket, key):
            self._fs.call_s3("delete_object", Bucket=self._s3_bucket, Key=s3_key)

    # --- buckets -----------------------------------------------------------------

    def buckets(self) -> list[str]:
        names: set[str] = set()
        request: dict[str, Any] = {
            "Bucket": self._s3_bucket,
            "Prefix": self._lake_prefix,
            "Delimiter": "/",
        }
        try:
            with self._errors("list the buckets of", self._s3_bucket):
                while True:
                    response = self._fs.call_s3("list_objects_v2", **request)
                    for common in response.get("CommonPrefixes", []):
                        name = common["Prefix"][len(request["Prefix"]) :].rstrip("/")
                        if BUCKET_RE.match(name):
                            names.add(name)
                    if not response.get("IsTruncated"):
                        break
                    request["ContinuationToken"] = response["NextContinuationToken"]
        except ObjectNotFoundError:  # the S3 bucket itself does not exist yet
            return []
        return sorted(names)

    def create_bucket(self, bucket: str) -> None:
        """Create the S3 bucket if needed and mark ``bucket`` so :meth:`buckets` lists it."""
        validate_bucket(bucket)
        self._ensure_s3_bucket()
        marker = self._base(bucket) + BUCKET_MARKER
        with self._errors("create bucket", bucket):
            self._fs.call_s3("put_object", Bucket=self._s3_bucket, Key=marker, Body=b"")
        self._known_buckets.add(bucket)

    def _ensure_s3_bucket(self) -> None:
        try:
            with self._errors("find the S3 bucket", self._s3_bucket):
                self._fs.call_s3("head_bucket", Bucket=self._s3_bucket)
            return
        except ObjectNotFoundError:
            pass
        request: dict[str, Any] = {"Bucket": self._s3_bucket}
        region = self._settings.region
        if region and region != DEFAULT_REGION:
            request["CreateBucketConfiguration"] = {"LocationConstraint": region}
        with self._errors("create the S3 bucket", self._s3_bucket):
            try:
                self._fs.call_s3("create_bucket", **request)
            except FileExistsError as exc:
                # Another process may have created it in between: that is success.
                if _error_code(exc) != "BucketAlreadyOwnedByYou":
                    raise ConfigError(
                        f"lake.root = {self.root!r}: the S3 bucket {self._s3_bucket!r} "
                        "belongs to another account; choose another bucket name"
                    ) from exc

    def _require_bucket(self, bucket: str) -> None:
        if bucket in self._known_buckets:
            return
        request = {"Bucket": self._s3_bucket, "Prefix": self._base(bucket), "MaxKeys": 1}
        try:
            with self._errors("find the bucket", bucket):
                found = bool(self._fs.call_s3("list_objects_v2", **request).get("Contents"))
        except ObjectNotFoundError:
            found = False
        if not found:
            raise ObjectNotFoundError(
                f"no bucket {bucket!r} in the lake at {self.root}; "
                f"existing buckets: {', '.join(self.buckets()) or 'none'}"
            )
        self._known_buckets.add(bucket)


def _error_code(exc: BaseException) -> str | None:
    """The S3 error code behind an s3fs-translated exception."""
    response = getattr(exc.__cause__, "response", None) or {}
    code = response.get("Error", {}).get("Code")
    return str(code) if code else None


def _etag(value: str) -> str:
    return value.strip('"')


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
