"""What only the S3 backend does: layout in the real bucket, settings, failures, uploads."""

from __future__ import annotations

import gc
import io
import multiprocessing
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from lakelet.catalog.catalog import iceberg_s3_properties
from lakelet.config import S3Section
from lakelet.errors import (
    ConfigError,
    InvalidKeyError,
    MissingExtraError,
    ObjectNotFoundError,
    StorageError,
)
from lakelet.storage import open_store
from lakelet.storage.base import iter_objects
from lakelet.storage.s3 import (
    BUCKET_MARKER,
    MIN_PART_SIZE,
    S3Store,
    parse_root,
    resolved_s3_settings,
)


def new_store(server: Any, root: str | None = None, **settings: str) -> S3Store:
    s3 = server.settings()
    if settings:
        s3 = S3Section(**{**vars(s3), **settings})
    return S3Store(root or server.new_root(), s3, part_size=MIN_PART_SIZE)


def s3_bucket(store: S3Store) -> str:
    return store.root.removeprefix("s3://").split("/")[0]


# --- layout in the real bucket --------------------------------------------------------


def test_a_lake_bucket_is_a_prefix_of_the_s3_bucket(s3_server: Any) -> None:
    store = new_store(s3_server)
    fs = store.filesystem()
    real = s3_bucket(store)
    assert not fs.exists(real)
    assert store.buckets() == []

    store.create_bucket("raw")
    store.put("raw", "sales/x.csv", b"1,2\n")

    assert fs.exists(real), "create_bucket must create the S3 bucket"
    assert fs.cat_file(f"{real}/lake/raw/sales/x.csv") == b"1,2\n"
    assert store.url("raw", "sales/x.csv") == f"s3://{real}/lake/raw/sales/x.csv"
    assert fs.exists(f"{real}/lake/raw/{BUCKET_MARKER}")
    assert [o.key for o in iter_objects(store, "raw")] == ["sales/x.csv"]


def test_a_lake_at_the_top_of_the_bucket(s3_server: Any) -> None:
    real = s3_server.new_root().removeprefix("s3://").split("/")[0]
    store = new_store(s3_server, f"s3://{real}/")
    store.create_bucket("raw")
    store.create_bucket("curated")
    store.put("curated", "t/x", b"1")

    assert store.root == f"s3://{real}"
    assert store.buckets() == ["curated", "raw"]
    assert store.url("curated", "t/x") == f"s3://{real}/curated/t/x"
    assert store.filesystem().cat_file(f"{real}/curated/t/x") == b"1"


def test_buckets_lists_folders_written_by_others(s3_server: Any) -> None:
    store = new_store(s3_server)
    store.create_bucket("raw")
    store.filesystem().pipe_file(f"{s3_bucket(store)}/lake/landing/a.csv", b"1")

    assert store.buckets() == ["landing", "raw"]
    assert [o.key for o in iter_objects(store, "landing")] == ["a.csv"]


def test_the_marker_name_is_reserved(s3_server: Any) -> None:
    store = new_store(s3_server)
    store.create_bucket("raw")
    with pytest.raises(InvalidKeyError, match="reserved"):
        store.put("raw", BUCKET_MARKER, b"")
    with pytest.raises(InvalidKeyError, match="reserved"):
        store.delete("raw", BUCKET_MARKER)
    assert store.buckets() == ["raw"]


def test_key_limit_counts_the_lake_prefix(s3_server: Any) -> None:
    segments = "/".join(["p" * 99] * 5)  # 499 bytes of lake prefix
    store = new_store(s3_server, f"{s3_server.new_root()}/{segments}")
    store.create_bucket("raw")
    too_long = "/".join(["k" * 99] * 6)  # 599 bytes: a valid key, but not under this prefix
    with pytest.raises(InvalidKeyError, match="1024") as raised:
        store.put("raw", too_long, b"1")
    assert "kkkk" in str(raised.value) and segments in str(raised.value)
    assert store.put("raw", too_long[:499], b"1").size == 1


def test_objects_written_by_another_client_are_seen_at_once(s3_server: Any) -> None:
    store = new_store(s3_server)
    store.create_bucket("raw")
    fs = store.filesystem()
    path = f"{s3_bucket(store)}/lake/raw/outside.csv"
    fs.ls(f"{s3_bucket(store)}/lake/raw")  # would fill a listings cache, if there were one

    fs.pipe_file(path, b"abc")
    assert store.head("raw", "outside.csv").size == 3
    assert fs.exists(path)
    store.delete("raw", "outside.csv")
    assert not fs.exists(path)
    assert [o.key for o in iter_objects(store, "raw")] == []


def test_server_listing_order_pages_without_gaps(s3_server: Any) -> None:
    """Whatever order the server lists in, pages must add up to the one-page listing."""
    store = new_store(s3_server)
    store.create_bucket("raw")
    written = ["a-b", "a/b", "a/c/d", "a.txt", "a0", "a_x", "A", "z", "é", "a/b-c"]
    for key in written:
        store.put("raw", key, b"-")

    whole = [o.key for o in store.list_page("raw").objects]
    paged = [o.key for o in iter_objects(store, "raw", page_size=2)]

    assert sorted(whole) == sorted(written)
    assert paged == whole


def _put_from_child(store: S3Store) -> None:
    store.put("raw", "from-child.csv", b"child")
    gc.collect()  # finalize whatever the child dropped, as a long-lived worker would


def test_a_store_used_before_a_fork_works_in_both_processes(s3_server: Any) -> None:
    store = new_store(s3_server)
    store.create_bucket("raw")
    store.put("raw", "from-parent.csv", b"parent")  # the parent's s3fs client is now live

    child = multiprocessing.get_context("fork").Process(target=_put_from_child, args=(store,))
    child.start()
    child.join(timeout=60)

    assert child.exitcode == 0
    started = time.monotonic()
    assert store.get("raw", "from-child.csv") == b"child"
    # A child closing the parent's pooled connections stalls this until the read timeout.
    assert time.monotonic() - started < 5


# --- uploads ------------------------------------------------------------------------


def test_large_streams_are_uploaded_in_parts(s3_server: Any) -> None:
    store = new_store(s3_server)
    store.create_bucket("raw")
    data = b"0123456789abcdef" * ((2 * MIN_PART_SIZE + 100) // 16)

    info = store.put("raw", "big.bin", io.BytesIO(data))

    assert info.etag.endswith("-3"), "S3 marks a 3-part upload's ETag with -3"
    assert store.get("raw", "big.bin") == data
    small = store.put("raw", "small.bin", io.BytesIO(b"abc"))
    assert "-" not in small.etag


def test_a_failed_multipart_upload_is_aborted(s3_server: Any) -> None:
    store = new_store(s3_server)
    store.create_bucket("raw")

    class Source(io.RawIOBase):
        """One full part, then a failure that is not an I/O error."""

        sent = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            if self.sent >= MIN_PART_SIZE:
                raise RuntimeError("source died")
            n = min(len(buffer), MIN_PART_SIZE - self.sent)
            buffer[:n] = b"x" * n
            self.sent += n
            return n

    with pytest.raises(RuntimeError, match="source died"):
        store.put("raw", "partial.bin", io.BufferedReader(Source()))

    uploads = store.filesystem().call_s3("list_multipart_uploads", Bucket=s3_bucket(store))
    assert not uploads.get("Uploads")
    with pytest.raises(ObjectNotFoundError):
        store.head("raw", "partial.bin")


# --- failures -----------------------------------------------------------------------


def test_wrong_credentials_name_the_endpoint(s3_server: Any) -> None:
    good = new_store(s3_server)
    good.create_bucket("raw")
    bad = new_store(s3_server, good.root, secret_access_key="not-the-secret")

    with pytest.raises(StorageError) as raised:
        bad.put("raw", "x.csv", b"1")
    message = str(raised.value)
    assert s3_server.endpoint_url in message and "access_key_id" in message
    assert "raw" in message


@pytest.mark.slow  # botocore retries a refused connection with back-off
def test_unreachable_endpoint_fails_with_a_clear_message() -> None:
    store = S3Store(
        "s3://lake-bucket/lake",
        S3Section(endpoint_url="http://127.0.0.1:9", access_key_id="k", secret_access_key="s"),
    )
    started = time.monotonic()
    with pytest.raises(StorageError, match=r"http://127\.0\.0\.1:9") as raised:
        store.get("raw", "x.csv")
    assert "raw/x.csv" in str(raised.value)
    assert time.monotonic() - started < 20


def test_a_missing_s3_bucket_is_an_empty_lake(s3_server: Any) -> None:
    store = new_store(s3_server)
    assert store.buckets() == []
    with pytest.raises(ObjectNotFoundError, match="no bucket 'raw'"):
        store.list_page("raw")
    with pytest.raises(ObjectNotFoundError):
        store.head("raw", "x")
    store.delete("raw", "x")  # nothing to delete is not an error


# --- settings (no server) -----------------------------------------------------------


def test_open_store_picks_s3_for_s3_roots(tmp_path: Path) -> None:
    store = open_store("s3://lake-bucket/team/lake/", base=tmp_path, s3=S3Section())
    assert isinstance(store, S3Store)
    assert store.root == "s3://lake-bucket/team/lake"


@pytest.mark.parametrize(
    ("root", "expected"),
    [
        ("s3://bucket", ("bucket", "")),
        ("s3://bucket/", ("bucket", "")),
        ("s3://bucket/a/b/", ("bucket", "a/b")),
    ],
)
def test_parse_root(root: str, expected: tuple[str, str]) -> None:
    assert parse_root(root) == expected


@pytest.mark.parametrize("root", ["s3://", "s3://Bad_Bucket/x", "s3://bucket/../x", "s3://b/x"])
def test_bad_roots_are_configuration_errors(root: str) -> None:
    with pytest.raises(ConfigError, match=r"lake\.root") as raised:
        S3Store(root, S3Section())
    assert repr(root) in str(raised.value)


def test_settings_fall_back_to_the_aws_environment() -> None:
    env = {
        "AWS_ENDPOINT_URL": "http://env:9000",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "env-key",
        "AWS_SECRET_ACCESS_KEY": "env-secret",
        "AWS_SESSION_TOKEN": "env-token",
    }
    resolved = resolved_s3_settings(S3Section(), env)
    assert resolved == S3Section(
        "http://env:9000", "eu-west-1", "env-key", "env-secret", "env-token"
    )

    assert resolved_s3_settings(
        S3Section(region="us-west-2"), {**env, "AWS_REGION": "x"}
    ).region == ("us-west-2")
    assert resolved_s3_settings(S3Section(), {**env, "AWS_REGION": "ap-south-1"}).region == (
        "ap-south-1"
    )


def test_settings_take_credentials_as_a_group() -> None:
    env = {"AWS_ACCESS_KEY_ID": "env-key", "AWS_SECRET_ACCESS_KEY": "env-secret"}
    env["AWS_SESSION_TOKEN"] = "env-token"
    mine = S3Section(access_key_id="my-key", secret_access_key="my-secret")

    resolved = resolved_s3_settings(mine, env)

    assert (resolved.access_key_id, resolved.secret_access_key) == ("my-key", "my-secret")
    assert resolved.session_token is None


def test_a_custom_endpoint_gets_a_default_region() -> None:
    assert resolved_s3_settings(S3Section(endpoint_url="http://m:9000"), {}).region == "us-east-1"
    assert resolved_s3_settings(S3Section(), {}) == S3Section()


def test_iceberg_properties_from_resolved_settings() -> None:
    env = {"AWS_ENDPOINT_URL": "http://env:9000", "AWS_ACCESS_KEY_ID": "k"}
    env["AWS_SECRET_ACCESS_KEY"] = "s"
    props = iceberg_s3_properties(resolved_s3_settings(S3Section(), env))
    assert props == {
        "s3.endpoint": "http://env:9000",
        "s3.region": "us-east-1",
        "s3.access-key-id": "k",
        "s3.secret-access-key": "s",
    }


def test_missing_s3fs_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    store = S3Store("s3://lake-bucket/lake", S3Section())  # s3fs is imported on first use
    monkeypatch.setitem(sys.modules, "s3fs", None)
    with pytest.raises(MissingExtraError, match=r"lakelet\[s3\]"):
        store.filesystem()
