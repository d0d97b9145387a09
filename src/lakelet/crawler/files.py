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

from lakelet.catalog.rawscan import format_of, is_excluded, is_hidden
from lakelet.storage.base import ObjectStore, iter_objects

UNCLASSIFIED = ""
"""The format of a file whose suffix names none: the classifier chain reads it."""
LOCAL_PAGE = 1_000_000
S3_PAGE = 1000


@dataclass(frozen=True)
class DataFile:
    """An object to crawl; ``relative`` is its key below the crawl path.

    ``etag`` and ``modified`` are what the store says of the object; with ``size`` they
    tell an incremental crawl whether the object may have changed since the last one.
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
    objects = [
        info
        for info in iter_objects(store, bucket, prefix, page_size=page)
        if not is_hidden(info.key[len(prefix) :])
        and (not globs or not is_excluded(info.key, info.key[len(prefix) :], globs))
    ]
    roots = iceberg_roots([info.key for info in objects if info.key.endswith(".metadata.json")])
    files: list[DataFile] = []
    skipped = [
        SkippedFile(f"{bucket}/{root}", "an Iceberg table's folder (read it as that table)")
        for root in roots
    ]
    base_url = store.url(bucket).rstrip("/") + "/"
    for info in objects:
        if roots and any(info.key.startswith(root) for root in roots):
            continue
        relative = info.key[len(prefix) :]
        location = f"{bucket}/{info.key}"
        fmt = format_of(info.key) or UNCLASSIFIED
        if info.size == 0:
            skipped.append(SkippedFile(location, "empty file"))
        else:
            url = base_url + info.key
            files.append(
                DataFile(
                    bucket, info.key, relative, url, info.size, fmt, info.etag, info.last_modified
                )
            )
    return Listing(files, skipped)


def listing_hash(listing: Listing) -> str:
    """A fingerprint of what was listed: equal hashes mean no file was added, changed or
    removed, and the crawl can stop without reading its manifest."""
    return listing_digest(listing_lines(listing))


def listing_lines(listing: Listing) -> list[str]:
    """One line per listed file: its location, size and ETag."""
    return [f"{f.bucket}/{f.key}\0{f.size}\0{f.etag}" for f in listing.files]


def listing_digest(lines: list[str]) -> str:
    """The hash of listing lines (see :func:`listing_hash`)."""
    text = "".join(f"{line}\n" for line in lines)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
