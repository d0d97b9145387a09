"""A cheap first look at every new or changed file: its head, header signature and hash.

Sniffing a file with DuckDB costs milliseconds; reading its first bytes costs
microseconds. Files of one table nearly always share their first line, so the crawler
sniffs one file per distinct header signature (and a sample of the others) and checks
the rest in one batched read. The head also catches binary garbage before it reaches
the sniffer, and a file that vanished since the listing.

The content hash (BLAKE2b) tells a rewritten file from a touched one when its size or
ETag changed. Files above :data:`HASH_LIMIT` are not hashed: for them size and ETag
decide, so a crawl never reads a large file just to fingerprint it.
"""

from __future__ import annotations

import codecs
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace

from lakelet.crawler.classify import (
    Classification,
    Classifier,
    classify_file,
    compression_of,
    decompress_head,
    unclassified_reason,
)
from lakelet.crawler.csv import HEAD_BYTES
from lakelet.crawler.files import DataFile
from lakelet.crawler.schema import FileSchema
from lakelet.errors import LakeletError
from lakelet.storage.base import ObjectStore

HASH_LIMIT = 64 << 20
BINARY_FORMATS = frozenset({"parquet", "orc", "avro"})  # compressed inside, never as a whole
CHUNK = 1 << 20


@dataclass(frozen=True)
class Probe:
    """What the first look found; ``problem`` says why the file cannot be crawled."""

    head: bytes
    hash: str
    signature: str | None
    problem: str | None = None


def probe_file(store: ObjectStore, file: DataFile) -> Probe:
    """Read the head (decompressed when gzip, bz2 or zstd) and hash a file, never raising."""
    try:
        raw, digest = _read(store, file)
    except LakeletError as exc:
        return Probe(
            b"", "", None, f"could not be read ({exc}); did it disappear during the crawl?"
        )
    except FileNotFoundError:
        return Probe(b"", "", None, "could not be read: it disappeared during the crawl")
    except OSError as exc:
        return Probe(b"", "", None, f"could not be read: {exc.strerror or exc}")
    head = raw
    compression = compression_of(file.key, raw)
    if compression is not None and file.format not in BINARY_FORMATS:
        head = decompress_head(raw, compression, HEAD_BYTES)
        if raw and not head:
            return Probe(b"", digest, None, f"not a readable {compression} file")
    if file.format in ("csv", "json") and _is_binary(head):
        return Probe(b"", digest, None, "binary data, not text: not a CSV or JSON file")
    return Probe(head, digest, signature_of(file.format, head))


def signature_of(fmt: str, head: bytes) -> str | None:
    """Files of one format whose first line is the same share a signature (CSV only)."""
    if fmt != "csv":
        return None
    first = head.split(b"\n", 1)[0].rstrip(b"\r")
    return hashlib.blake2b(first, digest_size=16).hexdigest()


def _read(store: ObjectStore, file: DataFile) -> tuple[bytes, str]:
    hasher = hashlib.blake2b(digest_size=16)
    # A local lake's URL is the file's path: opening it directly skips the store's key
    # checks, which the listing already passed (a tenth of a millisecond per file).
    local = "://" not in file.url
    with open(file.url, "rb") if local else store.open(file.bucket, file.key) as stream:
        head = stream.read(HEAD_BYTES)
        if file.size > HASH_LIMIT:
            return head, ""
        hasher.update(head)
        while chunk := stream.read(CHUNK):
            hasher.update(chunk)
    return head, hasher.hexdigest()


def _is_binary(head: bytes) -> bool:
    """NUL bytes outside UTF-16 text mean binary data (images, archives, garbage)."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return False
    return b"\x00" in head[:8192]


# --- classification of probed files ------------------------------------------------

MIN_CONTENT_CERTAINTY = 0.5
"""A file without a known suffix is crawled only when a classifier is at least this sure."""


def classify_probed(
    files: list[DataFile], probes: dict[str, Probe], custom: Sequence[Classifier]
) -> dict[str, Classification]:
    """The classifier chain's winner per readable file; unrecognised files are skipped
    (their probe gets the reason)."""
    classes: dict[str, Classification] = {}
    for file in files:
        probe = probes.get(file.key)
        if probe is None or probe.problem is not None:
            continue
        result = classify_file(file.key, file.format or None, probe.head, custom)
        winner = result.winner
        if winner is None or (not file.format and winner.certainty < MIN_CONTENT_CERTAINTY):
            probes[file.key] = replace(probe, problem=unclassified_reason(result))
            continue
        classes[file.key] = winner
        if winner.format != file.format:
            signature = signature_of(winner.format, probe.head)
            probes[file.key] = replace(probe, signature=signature)
    return classes


def as_classified(file: DataFile, classes: dict[str, Classification]) -> DataFile:
    found = classes.get(file.key)
    if found is None or found.format == file.format:
        return file
    return file._replace(format=found.format)


def with_format(file: DataFile, schema: FileSchema) -> DataFile:
    """A file classified by content keeps that format on later, incremental crawls."""
    fmt = schema.dialect.get("format")
    return file._replace(format=str(fmt)) if fmt and fmt != file.format else file
