"""The files a crawl looks at, listed through the object store (so S3 works the same).

Hidden and marker files (a path segment starting with ``.`` or ``_``, such as
``.lakelet-bucket`` or ``_SUCCESS``) and the crawler's ``exclude`` globs are left out
silently; empty objects are listed as skipped, with the reason, so the report says what
was not crawled. So is an Iceberg table's folder (one holding
``metadata/*.metadata.json``): its Parquet files are the table's own, not raw data, and
the catalog already knows the table. A file whose suffix names no format is listed with
an empty format: the classifier chain (:mod:`lakelet.crawler.classify`) decides what it
is from its content.

A local lake is listed in one page, because each page walks the folder tree again; S3
in its own pages of 1,000 keys.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from lakelet.catalog.rawscan import format_of, is_excluded, is_hidden
from lakelet.storage.base import ObjectStore, iter_objects

UNCLASSIFIED = ""
"""The format of a file whose suffix names none: the classifier chain reads it."""
LOCAL_PAGE = 1_000_000
S3_PAGE = 1000


class DataFile(NamedTuple):
    """An object to crawl; ``relative`` is its key below the crawl path.

    ``etag`` and ``modified`` are what the store says of the object; with ``size`` they
    tell an incremental crawl whether the object may have changed since the last one.
    A named tuple, as :class:`~lakelet.storage.base.ObjectInfo`: a listing builds one
    per object, and an incremental crawl of 10,000 files has milliseconds for all.
    """

    bucket: str
    key: str
    relative: str
    url: str
    size: int
    format: str
    etag: str = ""
    modified: datetime | None = None

    @property
    def location(self) -> str:
        return f"{self.bucket}/{self.key}"


@dataclass(frozen=True)
class SkippedFile:
    key: str
    reason: str


@dataclass(frozen=True)
class Listing:
    files: list[DataFile]
    skipped: list[SkippedFile]
    lines: list[str]
    """One line per file: its location, size and ETag (see :func:`listing_digest`)."""


def bucket_globs(prefix: str, exclude: list[str]) -> list[str]:
    """Exclusion globs as stored with a table: a glob with ``/`` gets the crawl prefix."""
    return [f"{prefix}{g.lstrip('/')}" if "/" in g.rstrip("/") else g for g in exclude]


def iceberg_roots(keys: list[str]) -> list[str]:
    """Key prefixes of Iceberg tables (``a/t/`` for ``a/t/metadata/v1.metadata.json``)."""
    roots = set()
    for key in keys:
        folder, _, name = key.rpartition("/")
        if name.endswith(".metadata.json") and (
            folder == "metadata" or folder.endswith("/metadata")
        ):
            roots.add(folder[: -len("metadata")])
    return sorted(roots)


def list_files(store: ObjectStore, bucket: str, prefix: str, exclude: list[str]) -> Listing:
    """Data files under ``bucket/prefix`` in key order, and the ones skipped."""
    globs = bucket_globs(prefix, exclude)
    page = S3_PAGE if store.root.startswith("s3://") else LOCAL_PAGE
    objects = list(iter_objects(store, bucket, prefix, page_size=page))
    cut = len(prefix)
    roots = iceberg_roots(
        [
            info.key
            for info in objects
            if info.key.endswith(".metadata.json") and not is_hidden(info.key[cut:])
        ]
    )
    files: list[DataFile] = []
    skipped = [
        SkippedFile(f"{bucket}/{root}", "an Iceberg table's folder (read it as that table)")
        for root in roots
    ]
    base_url = store.url(bucket).rstrip("/") + "/"
    formats: dict[str, str] = {}  # by the name's suffixes: format_of costs µs per call
    lines: list[str] = []
    for info in objects:  # one pass, no per-object function calls on the common path
        key = info.key
        relative = key[cut:]
        if "/." in (path := "/" + relative) or "/_" in path:  # is_hidden, inlined
            continue
        if globs and is_excluded(key, relative, globs):
            continue
        if roots and any(key.startswith(root) for root in roots):
            continue
        if info.size == 0:
            skipped.append(SkippedFile(f"{bucket}/{key}", "empty file"))
            continue
        name = key[key.rfind("/") + 1 :]
        suffix = name[name.find(".") :] if "." in name else ""
        fmt = formats.get(suffix)
        if fmt is None:
            fmt = formats[suffix] = format_of(key) or UNCLASSIFIED
        size, etag = info.size, info.etag
        files.append(
            DataFile(bucket, key, relative, base_url + key, size, fmt, etag, info.last_modified)
        )
        lines.append(f"{bucket}/{key}\0{size}\0{etag}")
    return Listing(files, skipped, lines)


def listing_hash(listing: Listing) -> str:
    """A fingerprint of what was listed: equal hashes mean no file was added, changed or
    removed, and the crawl can stop without reading its manifest."""
    return listing_digest(listing.lines)


def listing_digest(lines: list[str]) -> str:
    """The hash of listing lines (see :func:`listing_hash`)."""
    text = "\n".join(lines) + "\n" if lines else ""
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
