"""Which files belong to a raw table: the crawler and every reader must agree on it."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from lakelet.catalog.raw import RawTable
from lakelet.storage.base import ObjectStore, iter_objects, split_location

FORMAT_SUFFIXES: dict[str, tuple[str, ...]] = {
    "csv": (".csv", ".tsv", ".csv.gz", ".tsv.gz"),
    "json": (".jsonl", ".ndjson", ".json"),
    "parquet": (".parquet", ".pq"),
    "avro": (".avro",),
    "orc": (".orc",),
}
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"

# --- which files belong to a table ---------------------------------------------------


_BY_SUFFIX = {suffix: fmt for fmt, suffixes in FORMAT_SUFFIXES.items() for suffix in suffixes}


def format_of(key: str) -> str | None:
    """The format a key's suffix names (``csv``, ``json``, ``parquet``), or ``None``."""
    name = key[key.rfind("/") + 1 :].lower()
    dot = name.rfind(".")
    if dot < 0:
        return None
    found = _BY_SUFFIX.get(name[dot:])
    if found is None and name.endswith(".gz"):  # .csv.gz: a compressed known suffix
        inner = name.rfind(".", 0, dot)
        found = _BY_SUFFIX.get(name[inner:]) if inner >= 0 else None
    return found


def is_hidden(relative_key: str) -> bool:
    """Hidden and marker files (``.lakelet-bucket``, ``_SUCCESS``, ``_temporary/…``)."""
    path = "/" + relative_key
    return "/." in path or "/_" in path


def partition_segment(segment: str) -> tuple[str, str] | None:
    """``"date=2026-11-27"`` → ``("date", "2026-11-27")``; other segments → ``None``."""
    key, sep, value = segment.partition("=")
    if not sep or not key:
        return None
    return unquote(key), unquote(value)


def glob_regex(glob: str) -> re.Pattern[str]:
    """A glob as a regex: ``**`` crosses folders, ``*`` and ``?`` do not."""
    out = []
    i = 0
    while i < len(glob):
        if glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif glob[i] == "*":
            out.append("[^/]*")
            i += 1
        elif glob[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(glob[i]))
            i += 1
    return re.compile("".join(out).rstrip("/"))


def is_excluded(key: str, relative_key: str, globs: list[str]) -> bool:
    """Whether an exclusion glob drops a file.

    A glob without ``/`` matches any folder or file name below the crawled location
    (``*.tmp``, ``archive``); a glob with ``/`` matches the bucket-relative key or one of
    its folders (the crawler stores them prefixed with the crawl path).
    """
    parts = key.split("/")
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    names = relative_key.split("/")
    for glob in globs:
        pattern = glob_regex(glob)
        candidates = prefixes if "/" in glob.rstrip("/") else names
        if any(pattern.fullmatch(c) for c in candidates):
            return True
    return False


def belongs_to(relative_key: str, *, nested: bool) -> bool:
    """A non-nested table holds files at its location or in ``key=value`` folders only."""
    if nested:
        return True
    folders = relative_key.split("/")[:-1]
    return all(partition_segment(f) is not None for f in folders)


def raw_files(store: ObjectStore, table: RawTable) -> list[str]:
    """URLs of the data files currently under the table's location, in key order."""
    bucket, prefix = split_location(table.location)
    nested = bool(table.dialect.get("nested", True))
    exclude = [str(g) for g in table.dialect.get("exclude", [])]
    urls = []
    for info in iter_objects(store, bucket, prefix):
        relative = info.key[len(prefix) :]
        if (
            info.size > 0
            and not is_hidden(relative)
            and _of_format(info.key, table)
            and belongs_to(relative, nested=nested)
            and not is_excluded(info.key, relative, exclude)
        ):
            urls.append(store.url(bucket, info.key))
    return urls


def suffix_of(key: str) -> str:
    """``"a/b.log.1"`` → ``".1"``; ``"a/README"`` → ``""``."""
    name = key.rsplit("/", 1)[-1]
    return name[name.rfind(".") :].lower() if "." in name else ""


def _of_format(key: str, table: RawTable) -> bool:
    """A file of the table's format: by its suffix, or, for files the crawler classified
    by content, by one of the suffixes those files had (``.txt``, ``.log``, none)."""
    fmt = format_of(key)
    if fmt is not None:
        return fmt == table.format
    return suffix_of(key) in table.dialect.get("suffixes", [])


def attach_store(con: Any, store: ObjectStore) -> None:
    """Let a DuckDB connection read the store's URLs (S3 through fsspec, not httpfs)."""
    if store.root.startswith("s3://"):
        con.register_filesystem(store.filesystem())
