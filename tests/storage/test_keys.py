"""The key and bucket rules every backend shares (no store needed)."""

from __future__ import annotations

import pytest

from lakelet.errors import InvalidKeyError
from lakelet.storage.base import split_location, validate_bucket, validate_key, validate_prefix

VALID_KEYS = [
    "a",
    "sales/2026/x.csv",
    "sales/date=2026-11-27/part-0.parquet",
    "with space/and+plus&amp.csv",
    "ünïcødé/名前.json",
    ".hidden",
    "a..b",
    "..a",
    "/".join(["k" * 200] * 5) + "/" + "k" * 19,  # 1024 bytes, segments fit a file name
]

INVALID_KEYS = {
    "../x": "'..'",
    "a/../b": "'..'",
    "a/./b": "'.'",
    "./a": "'.'",
    "/abs": "absolute",
    "\\abs": "absolute",
    "C:/x": "absolute",
    "a//b": "empty",
    "a\x00b": "control character",
    "a\nb": "control character",
    "a\tb": "control character",
    "a\x7fb": "control character",
    "a\\b": "'/'",
    "dir/": "end with '/'",
}


@pytest.mark.parametrize("key", VALID_KEYS)
def test_valid_keys(key: str) -> None:
    assert validate_key(key) == key


@pytest.mark.parametrize(("key", "reason"), INVALID_KEYS.items())
def test_invalid_keys_name_the_key_and_the_reason(key: str, reason: str) -> None:
    with pytest.raises(InvalidKeyError) as raised:
        validate_key(key)
    message = str(raised.value)
    assert repr(key) in message
    assert reason in message


def test_empty_and_too_long_keys() -> None:
    with pytest.raises(InvalidKeyError, match="empty"):
        validate_key("")
    with pytest.raises(InvalidKeyError, match="1024 bytes"):
        validate_key("k" * 1025)
    with pytest.raises(InvalidKeyError, match="1024 bytes"):
        validate_key("é" * 513)  # 1026 UTF-8 bytes in 513 characters


@pytest.mark.parametrize("prefix", ["", "sales", "sales/", "sales/2026/", "sales/x."])
def test_valid_prefixes(prefix: str) -> None:
    assert validate_prefix(prefix) == prefix


@pytest.mark.parametrize("prefix", ["../", "/sales", "a//b/", "a\nb/"])
def test_invalid_prefixes(prefix: str) -> None:
    with pytest.raises(InvalidKeyError):
        validate_prefix(prefix)


@pytest.mark.parametrize("bucket", ["raw", "curated", "a-b", "a.b", "abc", "x" * 63, "0day"])
def test_valid_buckets(bucket: str) -> None:
    assert validate_bucket(bucket) == bucket


@pytest.mark.parametrize("bucket", ["", "ab", "x" * 64, "Raw", "raw_zone", "-raw", "raw-", "a..b"])
def test_invalid_buckets(bucket: str) -> None:
    with pytest.raises(InvalidKeyError, match=repr(bucket).replace(".", r"\.")):
        validate_bucket(bucket)


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("raw/sales/2026.csv", ("raw", "sales/2026.csv")),
        ("/raw/sales/", ("raw", "sales/")),
        ("raw", ("raw", "")),
        (" raw/x ", ("raw", "x")),
    ],
)
def test_split_location(location: str, expected: tuple[str, str]) -> None:
    assert split_location(location) == expected


@pytest.mark.parametrize("location", ["", "/", "Bad_Bucket/x"])
def test_split_location_rejects_bad_buckets(location: str) -> None:
    with pytest.raises(InvalidKeyError):
        split_location(location)


def test_a_segment_longer_than_a_file_name_is_refused() -> None:
    with pytest.raises(InvalidKeyError, match="longer than 255 bytes"):
        validate_key("sales/" + "x" * 256 + ".csv")
    assert validate_key("sales/" + "x" * 255) == "sales/" + "x" * 255
