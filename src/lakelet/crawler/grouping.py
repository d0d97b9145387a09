"""Which files make one table, and its name.

Two rules, chosen per crawler (``grouping``):

* ``schema`` (the default, Glue's rule made predictable): a folder whose files have
  compatible schemas is one table, its sub-folders partitions (``key=value`` folders
  give named keys, other levels ``partition_N``); a folder whose sub-folders disagree is
  split, each sub-folder recursively a table of its own, while the folder's own files
  (directly in it or in its ``key=value`` folders) make the folder's table. Schemas are
  compatible when they have one format and one column set holds the other or they share
  70 % of their columns (Jaccard). A folder is judged by the schemas most of its files
  have, so a stray file (foreign, empty, unreadable or odd) never splits a table. At the
  crawl path a single sub-folder is a table of its own (``raw/incoming/refunds/`` is
  ``refunds``), as one folder is no evidence of partitioning.
* ``folder``: one table per folder at a fixed level. By default each immediate
  sub-folder of the crawl path that is not a ``key=value`` folder is a table named after
  it, holding every file below it; files directly in the path or in its ``key=value``
  folders make the path's own table, named after the path's last folder. With
  ``table_level`` (counted as Glue does: the bucket is level 1) tables sit at that
  level.

One table holds one format. When a folder mixes formats, the format the table already
has in the catalog keeps the plain name, else the format with the most files (ties:
csv, json, parquet); every other format becomes a table of its own named with a
``_<format>`` suffix (``sales_json``). Splitting keeps every file readable instead of
failing the crawl or dropping files.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from lakelet.catalog.names import to_identifier
from lakelet.catalog.rawscan import FORMAT_SUFFIXES, partition_segment
from lakelet.crawler.files import DataFile
from lakelet.errors import UserError

FORMAT_ORDER = list(FORMAT_SUFFIXES)
SIMILARITY = 0.7

Profile = tuple[str, frozenset[str]]
"""A file's format and its lower-cased column names: what grouping compares."""


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
    return group_by_folder(bucket, prefix, files, 1)


def levels_below(prefix: str, table_level: int) -> int:
    """Glue's absolute ``table_level`` (bucket = 1) as folder levels below the crawl path."""
    depth = len([p for p in prefix.split("/") if p])
    below = table_level - 1 - depth
    if below < 0:
        raise UserError(
            f"table_level = {table_level} is above the crawl path (its folders are at level "
            f"{depth + 1}; the bucket is level 1): use table_level >= {depth + 1}"
        )
    return below


def group_by_folder(
    bucket: str, prefix: str, files: list[DataFile], levels: int
) -> list[TableGroup]:
    """One table per folder ``levels`` below the crawl path (0: the path is one table).

    A file reaching a ``key=value`` folder before that level belongs to the table of the
    folder above it, which then holds only its own files and ``key=value`` folders.
    """
    tables: dict[str, tuple[bool, list[DataFile]]] = {}
    for file in files:
        folders = file.relative.split("/")[:-1]
        taken: list[str] = []
        for segment in folders[:levels]:
            if partition_segment(segment) is not None:
                break
            taken.append(segment)
        path = "".join(f"{s}/" for s in taken)
        nested = len(taken) == levels
        tables.setdefault(path, (nested, []))[1].append(file)
    groups = [
        TableGroup(_folder_name(bucket, prefix, path), bucket, prefix + path, nested, members)
        for path, (nested, members) in sorted(tables.items(), key=lambda kv: (kv[0] != "", kv[0]))
    ]
    return _unique_names(groups)


def _folder_name(bucket: str, prefix: str, path: str) -> str:
    folder = (prefix + path).rstrip("/").rsplit("/", 1)[-1] if prefix + path else bucket
    return to_identifier(folder)


# --- grouping by schema ----------------------------------------------------------------


@dataclass
class _Node:
    """A folder below the crawl path: its own files and its non-partition sub-folders."""

    path: str
    own: list[DataFile] = field(default_factory=list)
    children: dict[str, _Node] = field(default_factory=dict)

    def files(self) -> list[DataFile]:
        result = list(self.own)
        for child in self.children.values():
            result.extend(child.files())
        return result


def similar(a: Profile, b: Profile) -> bool:
    """Glue's test, made explicit: one format, and nested or 70 % shared column names."""
    if a[0] != b[0]:
        return False
    names_a, names_b = a[1], b[1]
    if names_a <= names_b or names_b <= names_a:
        return True
    return len(names_a & names_b) / len(names_a | names_b) >= SIMILARITY


def group_by_schema(
    bucket: str, prefix: str, files: list[DataFile], profiles: Mapping[str, Profile]
) -> list[TableGroup]:
    """Tables by the schema rule of the module docstring; ``profiles`` by object key
    (files without one, unreadable ones, go with their folder and never split it)."""
    root = _Node("")
    for file in files:
        node = root
        path = ""
        pending = ""
        for segment in file.relative.split("/")[:-1]:
            if partition_segment(segment) is not None:
                pending += f"{segment}/"
                continue
            path += f"{pending}{segment}/"
            pending = ""
            node = node.children.setdefault(path, _Node(path))
        node.own.append(file)
    judged: dict[str, Counter[Profile] | None] = {}
    groups: list[TableGroup] = []
    node = root
    while not node.own and len(node.children) == 1:
        (node,) = node.children.values()
    _collect(node, node is root, bucket, prefix, profiles, judged, groups)
    return _unique_names(groups)


def _collect(
    node: _Node,
    is_root: bool,
    bucket: str,
    prefix: str,
    profiles: Mapping[str, Profile],
    judged: dict[str, Counter[Profile] | None],
    groups: list[TableGroup],
) -> None:
    name = _folder_name(bucket, prefix, node.path)
    if _judge(node, profiles, judged) is not None:
        nested = bool(node.children) or not is_root
        groups.append(TableGroup(name, bucket, prefix + node.path, nested, node.files()))
        return
    if node.own:
        groups.append(TableGroup(name, bucket, prefix + node.path, False, list(node.own)))
    for _path, child in sorted(node.children.items()):
        _collect(child, False, bucket, prefix, profiles, judged, groups)


def _judge(
    node: _Node, profiles: Mapping[str, Profile], judged: dict[str, Counter[Profile] | None]
) -> Counter[Profile] | None:
    """The profiles of a compatible folder's files (by count), or ``None`` if it splits."""
    if node.path in judged:
        return judged[node.path]
    units: list[Counter[Profile]] = []
    own = Counter(profiles[f.key] for f in node.own if f.key in profiles)
    if own:
        units.append(own)
    result: Counter[Profile] | None = Counter(own)
    for child in node.children.values():
        counts = _judge(child, profiles, judged)
        if counts is None:
            result = None
            break
        if counts:
            units.append(counts)
    if result is not None and units:
        total: Counter[Profile] = Counter()
        for unit in units:
            total.update(unit)
        dominant = max(total, key=lambda p: (total[p], len(p[1]), sorted(p[1])))
        agree = all(any(similar(dominant, p) for p in unit) for unit in units)
        result = total if agree else None
    judged[node.path] = result
    return result


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


def _order(fmt: str) -> int:
    """Tie-break rank of a format (formats the list does not name come last)."""
    return FORMAT_ORDER.index(fmt) if fmt in FORMAT_ORDER else len(FORMAT_ORDER)


def split_by_format(group: TableGroup, existing_format: str | None) -> list[tuple[str, TableGroup]]:
    """``(format, group)`` pairs: one table per format, as the module docstring says."""
    counts = Counter(f.format for f in group.files)
    if not counts:
        return []
    if len(counts) == 1:
        return [(group.files[0].format, group)]
    if existing_format in counts:
        main = existing_format
    else:
        main = max(counts, key=lambda fmt: (counts[fmt], -_order(fmt)))
    result = []
    for fmt in sorted(counts, key=lambda f: (f != main, _order(f))):
        name = group.name if fmt == main else f"{group.name}_{fmt}"
        files = [f for f in group.files if f.format == fmt]
        result.append((fmt, TableGroup(name, group.bucket, group.prefix, group.nested, files)))
    return result
