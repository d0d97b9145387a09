"""Many small local CSV files read as one: the crawler's answer to the small-files problem.

DuckDB's multi-file CSV reader pays about half a millisecond per file, so checking and
summarising 10,000 files of ten rows costs seconds in file overhead alone, while Python
reads all their bytes in a fraction of that. A file whose records are plainly its lines
(no quote, escape or comment character in it; UTF-8; uncompressed; ``\\n`` or
``\\r\\n`` endings, the latter rewritten as ``\\n``) is copied, without its preamble
and header, into one bundle file, each line prefixed with the file's number as an extra
first field; DuckDB then reads the bundle once with the same options and the number maps
back to the file. The rows are exactly the ones a read of each file would give (a
malformed line is malformed in both), so callers see the same result, with the file's
URL in :data:`FILE_COLUMN`. Other files are left for the caller to read one by one.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from lakelet.catalog.rawscan import csv_options, sql_ident, sql_literal

FILE_COLUMN = "__lakelet_file"
INDEX_COLUMN = "__lakelet_bundle_index"
MAX_FILE_BYTES = 1 << 20
"""Larger files are read on their own: their per-file overhead no longer matters."""
MAX_BUNDLE_BYTES = 256 << 20
"""Files past this much bundled data are read on their own (the bundle is a temp file)."""
MIN_FILES = 32
"""Below this many files the bundle saves less than it costs to write."""
UTF8 = ("", "utf-8", "utf8", "ascii")
BOM = b"\xef\xbb\xbf"
COMPRESSED = (b"\x1f\x8b", b"BZh", b"\x28\xb5\x2f\xfd")


@dataclass(frozen=True)
class Bundled:
    """SQL reading the bundled files (columns: the file's URL, then ``columns``), and
    the files left out of the bundle."""

    sql: str | None
    rest: list[str]


@contextmanager
def bundled_csv(
    con: Any, urls: Sequence[str], columns: Sequence[tuple[str, str]], dialect: dict[str, Any]
) -> Iterator[Bundled]:
    """Bundle the small local files of ``urls`` read with ``dialect`` as ``columns``
    (name, SQL type); the bundle file and its registered index live for the block."""
    if len(urls) < MIN_FILES or not plain_dialect(dialect, len(columns)):
        yield Bundled(None, list(urls))
        return
    delimiter = str(dialect.get("delimiter", ",")).encode()
    specials = [str(dialect.get(k) or "").encode() for k in ("quote", "escape", "comment")]
    specials = [s for s in specials if s]
    drop = int(dialect.get("skip", 0)) + (1 if dialect.get("header", True) else 0)
    rest: list[str] = []
    members: list[str] = []
    handle, path = tempfile.mkstemp(prefix="lakelet-bundle-", suffix=".csv")
    written = 0
    try:
        with os.fdopen(handle, "wb") as out:
            for url in urls:
                body = None if written > MAX_BUNDLE_BYTES else _body(url, drop, specials)
                if body is None:
                    rest.append(url)
                    continue
                prefix = str(len(members)).encode() + delimiter
                members.append(url)
                if body:
                    data = prefix + body[:-1].replace(b"\n", b"\n" + prefix) + b"\n"
                    written += len(data)
                    out.write(data)
        if not members:
            yield Bundled(None, rest)
            return
        with bundle_read(con, path, members, columns, dialect) as sql:
            yield Bundled(sql, rest)
    finally:
        os.unlink(path)


@contextmanager
def bundle_read(
    con: Any,
    path: str,
    members: Sequence[str],
    columns: Sequence[tuple[str, str]],
    dialect: dict[str, Any],
    buffer_bytes: int | None = None,
) -> Iterator[str]:
    """SQL reading the bundle file at ``path`` (lines prefixed with the number of their
    file in ``members``, no header) as ``columns``, with the file's URL in
    :data:`FILE_COLUMN`; the index it joins to is registered on ``con`` for the block.
    ``buffer_bytes``: DuckDB's read buffer (``None``: its default)."""
    import pyarrow as pa

    view = f"lakelet_bundle_{secrets.token_hex(6)}"
    con.register(view, pa.table({INDEX_COLUMN: range(len(members)), FILE_COLUMN: members}))
    try:
        read = dict(dialect, header=False, skip=0)
        typed = ", ".join(
            f"{sql_literal(name)}: {sql_literal(type_)}"
            for name, type_ in [(INDEX_COLUMN, "BIGINT"), *columns]
        )
        names = ", ".join(f"b.{sql_ident(name)}" for name, _ in columns)
        buffer = "" if buffer_bytes is None else f", buffer_size={int(buffer_bytes)}"
        yield (
            f"SELECT f.{sql_ident(FILE_COLUMN)}, {names} FROM read_csv({sql_literal(path)}, "
            f"columns={{{typed}}}, {csv_options(read)}, ignore_errors=true{buffer}) AS b "
            f"JOIN {view} AS f USING ({sql_ident(INDEX_COLUMN)})"
        )
    finally:
        with suppress(Exception):  # the connection may be closed already
            con.unregister(view)


def plain_dialect(dialect: dict[str, Any], width: int, encodings: Sequence[str] = UTF8) -> bool:
    """Options the bundle reproduces: text in one of ``encodings``, one header row at
    most, and more than one column (a blank line in a one-column file is a NULL row, in
    the bundle not)."""
    encoding = str(dialect.get("encoding") or "").lower()
    delimiter = str(dialect.get("delimiter", ","))
    # a delimiter starting with a digit would run into the file number before it
    return encoding in encodings and width > 1 and bool(delimiter) and not delimiter[0].isdigit()


def _body(url: str, drop: int, specials: list[bytes]) -> bytes | None:
    """The file's data lines (ending with ``\\n``), or ``None`` when it must be read on
    its own: not local, too big, compressed, not plain lines, or gone."""
    if "://" in url:
        return None
    try:
        if os.path.getsize(url) > MAX_FILE_BYTES:
            return None
        with open(url, "rb") as stream:
            data = stream.read()
    except OSError:
        return None  # the caller's own read reports it
    if data.startswith(COMPRESSED) or any(s in data for s in specials):
        return None
    if b"\r" in data:
        if data.count(b"\r") != data.count(b"\r\n"):  # bare \r line ends
            return None
        data = data.replace(b"\r\n", b"\n")  # one line end for the whole bundle
    data = data.removeprefix(BOM)
    start = 0
    for _ in range(drop):
        newline = data.find(b"\n", start)
        if newline < 0:
            return b""
        start = newline + 1
    body = data[start:]
    if body and not body.endswith(b"\n"):
        body += b"\n"
    return body
