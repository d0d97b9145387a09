"""One behaviour suite for every ObjectStore backend (local folder and S3)."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from lakelet.errors import InvalidKeyError, ObjectNotFoundError, StorageError
from lakelet.storage.base import ObjectStore, iter_objects
from lakelet.storage.local import TMP_PREFIX, LocalStore
from lakelet.storage.s3 import MIN_PART_SIZE


def keys(store: ObjectStore, prefix: str = "", bucket: str = "raw") -> list[str]:
    return [o.key for o in iter_objects(store, bucket, prefix)]


class FailingStream(io.RawIOBase):
    """Yields ``good`` bytes, then fails as a dropped network source would."""

    def __init__(self, good: int) -> None:
        self._left = good

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._left <= 0:
            raise OSError("source connection reset")
        n = min(len(buffer), self._left)
        buffer[:n] = b"x" * n
        self._left -= n
        return n


def test_store_follows_the_protocol(store: ObjectStore) -> None:
    assert isinstance(store, ObjectStore)


# --- put, get, head, open -------------------------------------------------------------


def test_bytes_round_trip(store: ObjectStore) -> None:
    data = b"machine,amount\nm1,3\n"

    info = store.put("raw", "sales/2026/a.csv", data)

    assert (info.bucket, info.key, info.size) == ("raw", "sales/2026/a.csv", len(data))
    assert info.etag and '"' not in info.etag
    assert store.head("raw", "sales/2026/a.csv") == info
    assert store.get("raw", "sales/2026/a.csv") == data
    with store.open("raw", "sales/2026/a.csv") as stream:
        assert stream.read() == data


def test_stream_round_trip_larger_than_a_part(store: ObjectStore) -> None:
    # Bigger than S3's multipart part, so S3 streams it in parts.
    data = os.urandom(1024) * ((2 * MIN_PART_SIZE + 12345) // 1024)

    info = store.put("raw", "big/blob.bin", io.BufferedReader(io.BytesIO(data)))

    assert info.size == len(data)
    assert store.head("raw", "big/blob.bin").etag == info.etag
    got = store.get("raw", "big/blob.bin")
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    with store.open("raw", "big/blob.bin") as stream:
        stream.seek(MIN_PART_SIZE - 10)
        assert stream.read(20) == data[MIN_PART_SIZE - 10 : MIN_PART_SIZE + 10]


def test_empty_object(store: ObjectStore) -> None:
    assert store.put("raw", "empty", io.BytesIO(b"")).size == 0
    assert store.get("raw", "empty") == b""


def test_overwrite_replaces_the_object(store: ObjectStore) -> None:
    first = store.put("raw", "x.csv", b"old contents")
    second = store.put("raw", "x.csv", b"new")

    assert store.get("raw", "x.csv") == b"new"
    assert store.head("raw", "x.csv").size == 3
    assert second.etag != first.etag
    assert keys(store) == ["x.csv"]


def test_missing_object(store: ObjectStore) -> None:
    store.put("raw", "there.csv", b"1")
    for call in (store.head, store.get, store.open):
        with pytest.raises(ObjectNotFoundError, match=r"raw/missing\.csv"):
            call("raw", "missing.csv")


def test_a_folder_is_not_an_object(store: ObjectStore) -> None:
    store.put("raw", "sales/a.csv", b"1")
    with pytest.raises(ObjectNotFoundError):
        store.head("raw", "sales")
    with pytest.raises(ObjectNotFoundError):
        store.open("raw", "sales")


# --- listing ------------------------------------------------------------------------


def test_list_by_prefix_in_key_order(store: ObjectStore) -> None:
    written = ["sales/2026/b.csv", "sales/2026/a.csv", "sales/2025/z.csv", "salesman.txt", "x/1"]
    infos = {k: store.put("raw", k, k.encode()) for k in written}

    page = store.list_page("raw", "sales/")

    assert [o.key for o in page.objects] == [
        "sales/2025/z.csv",
        "sales/2026/a.csv",
        "sales/2026/b.csv",
    ]
    assert page.next_token is None
    assert keys(store, "sales") == [
        *sorted(k for k in written if k.startswith("sales/")),
        "salesman.txt",
    ]
    assert keys(store) == sorted(written)
    for listed in page.objects:
        expected = infos[listed.key]
        assert (listed.bucket, listed.size, listed.etag) == ("raw", expected.size, expected.etag)


@pytest.mark.parametrize("prefix", ["", "p/"])
def test_pagination_neither_skips_nor_repeats(store: ObjectStore, prefix: str) -> None:
    written = [f"p/{i:02d}.csv" for i in range(7)]
    for key in reversed(written):
        store.put("raw", key, b"-")

    pages = []
    token = None
    while True:
        page = store.list_page("raw", prefix, token=token, limit=3)
        pages.append(page)
        if page.next_token is None:
            break
        assert page.next_token != token
        token = page.next_token

    assert [len(p.objects) for p in pages] == [3, 3, 1]
    assert [o.key for p in pages for o in p.objects] == written


def test_a_full_last_page_has_no_token(store: ObjectStore) -> None:
    for i in range(4):
        store.put("raw", f"k{i}", b"-")
    page = store.list_page("raw", limit=4)
    assert len(page.objects) == 4 and page.next_token is None


def test_list_of_an_empty_prefix(store: ObjectStore) -> None:
    store.put("raw", "sales/a.csv", b"1")
    page = store.list_page("raw", "nothing/here/")
    assert page.objects == [] and page.next_token is None
    assert keys(store, "sales/a.csv.") == []


def test_list_of_an_unknown_bucket(store: ObjectStore) -> None:
    with pytest.raises(ObjectNotFoundError, match="nosuchbucket"):
        store.list_page("nosuchbucket")


# --- delete -------------------------------------------------------------------------


def test_delete(store: ObjectStore) -> None:
    store.put("raw", "sales/a.csv", b"1")
    store.put("raw", "sales/b.csv", b"2")

    store.delete("raw", "sales/a.csv")

    assert keys(store) == ["sales/b.csv"]
    with pytest.raises(ObjectNotFoundError):
        store.head("raw", "sales/a.csv")


def test_delete_missing_is_not_an_error(store: ObjectStore) -> None:
    store.delete("raw", "never/was.csv")
    store.put("raw", "once.csv", b"1")
    store.delete("raw", "once.csv")
    store.delete("raw", "once.csv")
    assert keys(store) == []


# --- invalid names ------------------------------------------------------------------

INVALID_KEYS = ["../x", "/abs", "a//b", "a\x00b", "a\nb", "a/./b", "a/../b", "dir/", ""]


@pytest.mark.parametrize("key", INVALID_KEYS)
def test_invalid_keys_are_refused_before_anything_is_written(store: ObjectStore, key: str) -> None:
    with pytest.raises(InvalidKeyError) as raised:
        store.put("raw", key, b"data")
    assert repr(key) in str(raised.value) or (key == "" and "empty" in str(raised.value))
    with pytest.raises(InvalidKeyError):
        store.put("raw", key, io.BytesIO(b"data"))
    for call in (store.head, store.get, store.delete):
        with pytest.raises(InvalidKeyError):
            call("raw", key)
    assert keys(store) == []


def test_too_long_key_is_refused(store: ObjectStore) -> None:
    segment = "k" * 99 + "/"  # 100-byte segments, which any file system takes
    with pytest.raises(InvalidKeyError, match="1024"):
        store.put("raw", segment * 10 + "k" * 25, b"data")
    assert keys(store) == []
    long_key = segment * 9 + "k" * 99  # 999 bytes: within S3's limit with a short lake prefix
    assert store.put("raw", long_key, b"ok").size == 2
    assert keys(store) == [long_key]


@pytest.mark.parametrize("bucket", ["Raw", "r", "raw_zone", "../raw", "a..b", ""])
def test_invalid_bucket_names(store: ObjectStore, bucket: str) -> None:
    with pytest.raises(InvalidKeyError, match="bucket"):
        store.create_bucket(bucket)
    with pytest.raises(InvalidKeyError, match="bucket"):
        store.put(bucket, "x.csv", b"1")
    assert store.buckets() == ["raw"]


# --- buckets and urls ---------------------------------------------------------------


def test_buckets_and_create_bucket(store: ObjectStore) -> None:
    assert store.buckets() == ["raw"]

    store.create_bucket("curated")
    store.create_bucket("curated")  # idempotent

    assert store.buckets() == ["curated", "raw"]
    assert keys(store, bucket="curated") == []
    store.put("curated", "t/x", b"1")
    assert keys(store, bucket="curated") == ["t/x"]


def test_put_into_an_unknown_bucket(store: ObjectStore) -> None:
    with pytest.raises(ObjectNotFoundError, match="nosuchbucket"):
        store.put("nosuchbucket", "x.csv", b"1")
    assert "nosuchbucket" not in store.buckets()


def test_url_is_readable_through_the_filesystem(store: ObjectStore) -> None:
    store.put("raw", "sales/x.csv", b"a,b\n1,2\n")

    url = store.url("raw", "sales/x.csv")

    assert url == f"{store.root}/raw/sales/x.csv"
    assert store.url("raw") == f"{store.root}/raw"
    assert store.filesystem().cat_file(url) == b"a,b\n1,2\n"


# --- atomicity ----------------------------------------------------------------------


@pytest.mark.parametrize("good_bytes", [10, MIN_PART_SIZE + 10])
def test_a_failing_stream_leaves_the_old_object(store: ObjectStore, good_bytes: int) -> None:
    store.put("raw", "x.csv", b"old")

    with pytest.raises(StorageError, match=r"x\.csv"):
        store.put("raw", "x.csv", io.BufferedReader(FailingStream(good_bytes)))
    with pytest.raises(StorageError):
        store.put("raw", "new.csv", io.BufferedReader(FailingStream(good_bytes)))

    assert store.get("raw", "x.csv") == b"old"
    assert keys(store) == ["x.csv"]


def local_leftovers(store: LocalStore) -> Iterator[str]:
    for _folder, dirnames, filenames in os.walk(store.root):
        yield from (n for n in [*dirnames, *filenames] if n.startswith(TMP_PREFIX))


def test_local_writes_leave_no_temporary_files(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "lake")
    store.create_bucket("raw")
    store.put("raw", "a/b.csv", b"1")
    store.put("raw", "a/b.csv", io.BytesIO(b"2"))
    with pytest.raises(StorageError):
        store.put("raw", "a/c.csv", io.BufferedReader(FailingStream(100)))

    assert list(local_leftovers(store)) == []
    assert keys(store) == ["a/b.csv"]
