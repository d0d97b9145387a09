"""Job bookmarks: what a job has already processed, so a run reads only what is new.

A raw input is bookmarked file by file with a content hash (BLAKE2b), not a modification
time: a touched but identical file is not read again, a rewritten one is. An Iceberg
input is bookmarked by the snapshot read; the next run reads only the data files added
since, as long as that snapshot is still the table's history and nothing was deleted
(otherwise it reads the whole table and says so).

The bookmark is stored in the summary of the snapshots the run writes
(``lakelet.bookmark``), so it is committed in the same atomic Iceberg commit as the
output: a crash never records progress without the rows, or rows without progress.

A bookmarked run sees each raw row with the lake key of its file (``_lakelet_file``,
e.g. ``raw/sales/date=2026-11-27/a.csv``). An output that keeps that column lets a run
replace the rows of a file read again (changed, or re-read after a rewind) instead of
adding them twice; :mod:`lakelet.jobs.commit` decides how the run writes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from lakelet.catalog.names import TableName
from lakelet.catalog.rawscan.core import relative_to_location

if TYPE_CHECKING:
    from lakelet.catalog import Catalog

BOOKMARK_PROPERTY = "lakelet.bookmark"
PROVENANCE_COLUMN = "_lakelet_file"
CHUNK = 1 << 20

Opener = Callable[[str], IO[bytes]]


@dataclass
class Bookmark:
    """Processed raw files (table → file → hash) and Iceberg snapshots read."""

    files: dict[str, dict[str, str]] = field(default_factory=dict)
    snapshots: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps({"files": self.files, "snapshots": self.snapshots}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> Bookmark:
        if not text:
            return cls()
        data: dict[str, Any] = json.loads(text)
        return cls(
            dict(data.get("files", {})), {k: int(v) for k, v in data.get("snapshots", {}).items()}
        )


@dataclass
class BookmarkedRead:
    """One run's view of its bookmark: what it skips, and the bookmark it will commit.

    ``previous`` decides what is skipped; ``committed`` (the output's latest bookmark,
    when a rewind starts from an older one) decides which files the output already
    holds rows of. ``rebuild`` (a reset) rewrites the output in full.
    """

    previous: Bookmark
    next: Bookmark = field(default_factory=Bookmark)
    committed: Bookmark | None = None
    rebuild: bool = False
    reread: list[str] = field(default_factory=list)
    """Lake keys of raw files read whose rows the output already holds."""

    def new_raw_files(
        self, table: str, location: str, files: list[str], opener: Opener
    ) -> list[str]:
        """The files of ``table`` not processed before (new, or changed content)."""
        seen = self.previous.files.get(table, {})
        holds = (self.committed or self.previous).files.get(table, {})
        current: dict[str, str] = {}
        fresh = []
        for url in files:
            key = relative_to_location(url, location)
            digest = content_hash(opener, url)
            current[key] = digest
            if seen.get(key) != digest:
                fresh.append(url)
                if key in holds:
                    self.reread.append(lake_key(url, location))
        self.next.files[table] = {**seen, **current}
        return fresh

    def new_iceberg_files(
        self, table: str, catalog: Catalog, snapshot_id: int, files: list[str]
    ) -> list[str]:
        """Data files added since the bookmarked snapshot (all of them when the table
        was rewritten or the snapshot is gone)."""
        self.next.snapshots[table] = snapshot_id
        last = self.previous.snapshots.get(table)
        if last is None:
            return files
        if last == snapshot_id:
            return []
        name = TableName.parse(table)
        try:
            before = catalog.data_files(name, last)
        except Exception:  # pyiceberg: the snapshot was expired
            before = None
        if before is None or not set(before) <= set(files):
            self.next.notes.append(f"{table}: rewritten since snapshot {last}; read in full")
            return files
        old = set(before)
        return [f for f in files if f not in old]


def content_hash(opener: Opener, url: str) -> str:
    hasher = hashlib.blake2b(digest_size=16)
    with opener(url) as stream:
        while chunk := stream.read(CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest()


def lake_key(url: str, location: str) -> str:
    """A raw file's key in the lake (``BUCKET/PREFIX/…``), whatever the lake's root."""
    return f"{location.strip('/')}/{relative_to_location(url, location)}"


def bookmark_at(catalog: Catalog, output: TableName, snapshot_id: int | None = None) -> Bookmark:
    """The bookmark committed with a snapshot of the job's output (default: current).

    A run's commit may hold several snapshots (a delete, then the append) and another
    writer may commit after it, so this is the bookmark of the latest snapshot, from
    ``snapshot_id`` back through its ancestors, that has one.
    """
    from pyiceberg.table.snapshots import ancestors_of

    if catalog.kind(output) != "iceberg":
        return Bookmark()
    table = catalog.load_iceberg(output)
    start = table.current_snapshot() if snapshot_id is None else table.snapshot_by_id(snapshot_id)
    for snapshot in ancestors_of(start, table.metadata):
        if snapshot.summary is None:
            continue
        text = snapshot.summary.additional_properties.get(BOOKMARK_PROPERTY)
        if text is not None:
            return Bookmark.from_json(text)
    return Bookmark()
