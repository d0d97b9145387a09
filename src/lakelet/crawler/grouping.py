"""Which files make one table, and its name.

Crawling ``raw/sales/``: each immediate sub-folder that is not a ``key=value`` folder is
a table named after it (``raw/sales/machines/`` → ``machines``), holding every file
below it; files directly in the path or in its ``key=value`` folders make the path's
own table, named after the path's last folder (``raw/sales/`` → ``sales``).

One table holds one format. When a folder mixes formats, the format the table already
has in the catalog keeps the plain name, else the format with the most files (ties:
csv, json, parquet); every other format becomes a table of its own named with a
``_<format>`` suffix (``sales_json``). Splitting keeps every file readable instead of
failing the crawl or dropping files.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from lakelet.catalog.names import to_identifier
from lakelet.catalog.rawscan import FORMAT_SUFFIXES, partition_segment
from lakelet.crawler.files import DataFile

FORMAT_ORDER = list(FORMAT_SUFFIXES)


@dataclass(frozen=True)
class TableGroup:
    """Files of one table candidate; ``prefix`` is the table's key prefix in the bucket.

    ``nested`` is False for the crawl path's own table, whose non-partition sub-folders
    are other tables.
    """

    name: str
    bucket: str
    prefix: str
    nested: bool
    files: list[DataFile]

    @property
    def location(self) -> str:
        return f"{self.bucket}/{self.prefix}"

    def relative(self, file: DataFile) -> str:
        return file.key[len(self.prefix) :]


def group_files(bucket: str, prefix: str, files: list[DataFile]) -> list[TableGroup]:
    """Table candidates under a crawl path: the path's own table first, then its
    sub-folders in key order (formats are not split yet)."""
    own: list[DataFile] = []
    folders: dict[str, list[DataFile]] = {}
    for file in files:
        first, sep, _rest = file.relative.partition("/")
        if not sep or partition_segment(first) is not None:
            own.append(file)
        else:
            folders.setdefault(first, []).append(file)
    groups: list[TableGroup] = []
    if own:
        folder = prefix.rstrip("/").rsplit("/", 1)[-1] if prefix else bucket
        groups.append(TableGroup(to_identifier(folder), bucket, prefix, False, own))
    for folder, members in sorted(folders.items()):
        groups.append(
            TableGroup(to_identifier(folder), bucket, f"{prefix}{folder}/", True, members)
        )
    return _unique_names(groups)


def _unique_names(groups: list[TableGroup]) -> list[TableGroup]:
    """Folders whose names clash as identifiers (``Sales``, ``sales``) get ``_2``, …"""
    seen: Counter[str] = Counter()
    result = []
    for group in groups:
        seen[group.name] += 1
        if seen[group.name] > 1:
            group = TableGroup(
                f"{group.name}_{seen[group.name]}",
                group.bucket,
                group.prefix,
                group.nested,
                group.files,
            )
        result.append(group)
    return result


def split_by_format(group: TableGroup, existing_format: str | None) -> list[tuple[str, TableGroup]]:
    """``(format, group)`` pairs: one table per format, as the module docstring says."""
    counts = Counter(f.format for f in group.files)
    if len(counts) == 1:
        return [(group.files[0].format, group)]
    if existing_format in counts:
        main = existing_format
    else:
        main = max(counts, key=lambda fmt: (counts[fmt], -FORMAT_ORDER.index(fmt)))
    result = []
    for fmt in sorted(counts, key=lambda f: (f != main, FORMAT_ORDER.index(f))):
        name = group.name if fmt == main else f"{group.name}_{fmt}"
        files = [f for f in group.files if f.format == fmt]
        result.append((fmt, TableGroup(name, group.bucket, group.prefix, group.nested, files)))
    return result
