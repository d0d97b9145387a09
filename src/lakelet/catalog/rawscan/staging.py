"""Compressed text DuckDB cannot decompress here, decompressed into a staging folder.

DuckDB reads gzip and zstd CSV itself; bz2 CSV and every compressed JSON-lines or log
file (read as text lines) are decompressed once per scan into the caller's staging
folder, keeping their path below the table's location so partition values still come
from the path. Rejects name the original file (:meth:`Staged.original`).
"""

from __future__ import annotations

import bz2
import codecs
import gzip
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, cast

from lakelet.catalog.raw import RawTable
from lakelet.catalog.rawscan.binary import Opener
from lakelet.catalog.rawscan.core import relative_to_location

COMPRESSIONS = {".gz": "gzip", ".gzip": "gzip", ".bz2": "bz2", ".zst": "zstd", ".zstd": "zstd"}
DUCKDB_READS = {"csv": frozenset({"gzip", "zstd"})}
TRANSCODED = frozenset({"cp1252"})  # DuckDB reads utf-8, utf-16 and latin-1 only


@dataclass
class Staged:
    """Which staged copy stands for which original file."""

    originals: dict[str, str] = field(default_factory=dict)

    def original(self, path: str) -> str:
        return self.originals.get(path, path)


def compression_of(url: str) -> str | None:
    name = url.rsplit("/", 1)[-1].lower()
    dot = name.rfind(".")
    return COMPRESSIONS.get(name[dot:]) if dot >= 0 else None


def transcoded(table: RawTable) -> str | None:
    """The codec of a CSV table whose text DuckDB cannot decode (staged as UTF-8)."""
    encoding = table.dialect.get("encoding") if table.format == "csv" else None
    return str(encoding) if encoding in TRANSCODED else None


def needs_staging(table: RawTable, url: str) -> bool:
    if transcoded(table) is not None:
        return True
    compression = compression_of(url)
    if compression is None or table.format not in ("csv", "json", "log"):
        return False
    return compression not in DUCKDB_READS.get(table.format, frozenset())


def stage(
    table: RawTable, files: list[str], stage_dir: Path, opener: Opener
) -> tuple[list[str], Staged]:
    """``files`` with every file DuckDB cannot read replaced by a decompressed copy."""
    staged = Staged()
    out: list[str] = []
    for url in files:
        if not needs_staging(table, url):
            out.append(url)
            continue
        relative = relative_to_location(url, table.location)
        stem = relative[: relative.rfind(".")] if compression_of(url) else relative
        target = stage_dir / table.location.strip("/") / stem
        if not target.exists():
            decompress_to(url, target, opener, transcode_from=transcoded(table))
        staged.originals[str(target)] = url
        out.append(str(target))
    return out, staged


def decompress_to(
    url: str, target: Path, opener: Opener, *, transcode_from: str | None = None
) -> None:
    """Write a file's content to ``target``: decompressed when compressed, and
    re-encoded as UTF-8 from ``transcode_from`` when given."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with opener(url) as raw:
        data = _decompressed(raw, compression_of(url))
        if transcode_from is None:
            with target.open("wb") as copy:
                shutil.copyfileobj(data, copy, 1 << 20)
            return
        reader = codecs.getreader(transcode_from)(data, "replace")
        with target.open("w", encoding="utf-8", newline="") as copy:
            shutil.copyfileobj(reader, copy, 1 << 20)


def _decompressed(raw: IO[bytes], compression: str | None) -> IO[bytes]:
    if compression is None:
        return raw
    if compression == "gzip":
        return cast(IO[bytes], gzip.GzipFile(fileobj=raw))
    if compression == "bz2":
        return cast(IO[bytes], bz2.BZ2File(raw))
    import zstandard

    stream: IO[bytes] = zstandard.ZstdDecompressor().stream_reader(raw)
    return stream
