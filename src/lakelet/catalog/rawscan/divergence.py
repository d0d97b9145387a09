"""Where pyarrow's CSV reader and the checked scan would read a file differently, found
in the file's bytes before its rows are trusted.

pyarrow is stricter than DuckDB's typed reader, but not strict in the same places as
Lakelet's conversion (tests compare both over generated values). It also reads
``0x1F`` as the integer 31, trims tabs around numbers, dates and booleans, takes
``2026-11-27 10`` as a timestamp, and reads on after a closing quote (``"ab"c`` is
``abc`` where DuckDB rejects the row). A file holding any such
byte pattern is left to the checked scan. The check is two linear passes of RE2 (the
regular-expression engine behind pyarrow's ``match_substring_regex``), over the
memory-mapped file, in threads beside the parse:

* the file's quoting must follow RFC 4180: every field unquoted (not starting with a
  quote) or quoted with inner quotes doubled;
* none of the patterns above may occur anywhere, for the column types the table has
  (conservative: a pattern inside a text column also refuses the file).

The file is cut at line ends into pieces of :data:`PIECE_BYTES`; a quoted value
spanning a cut fails the quoting check (the file is refused, never misread).
"""

from __future__ import annotations

import mmap
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PIECE_BYTES = 256 << 20


@dataclass(frozen=True)
class Divergences:
    """The byte patterns to look for in one table's files."""

    integers: bool = False
    timestamps: bool = False
    trimmed: bool = False  # numbers, dates or booleans: pyarrow trims tabs around them


def divergence(path: Path, *, quote: str, delimiter: str, kinds: Divergences) -> str | None:
    """Why pyarrow may read ``path`` differently from the checked scan, or ``None``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    with path.open("rb") as stream:
        size = path.stat().st_size
        if size == 0:
            return None
        with mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ) as view:
            cuts = _cuts(view, size)
            quoted = bool(quote) and view.find(quote.encode()) >= 0
    source = pa.memory_map(str(path))
    try:
        data = source.read_buffer()
        offsets = pa.array(cuts, pa.int64()).buffers()[1]
        pieces = pa.Array.from_buffers(pa.large_binary(), len(cuts) - 1, [None, offsets, data])
        shaped = pc.match_substring_regex(pieces, _quoting(quote, delimiter)) if quoted else None
        if shaped is not None and not pc.all(shaped).as_py():
            return "a quote that neither opens nor closes a value (RFC 4180)"
        search = _patterns(delimiter, quote, kinds)
        if search and pc.any(pc.match_substring_regex(pieces, search)).as_py():
            return _which(pieces, delimiter, quote, kinds)
    finally:
        source.close()
    return None


def _cuts(view: Any, size: int) -> list[int]:
    """Offsets cutting the file into pieces of about PIECE_BYTES after line ends."""
    cuts = [0]
    while cuts[-1] + PIECE_BYTES < size:
        end = view.find(b"\n", cuts[-1] + PIECE_BYTES)
        if end < 0:
            break
        cuts.append(end + 1)
    if cuts[-1] != size:
        cuts.append(size)
    return cuts


def _quoting(quote: str, delimiter: str) -> str:
    """RE2 fully matching a piece whose fields are all RFC 4180 fields."""
    q, d = re.escape(quote), re.escape(delimiter)
    field = rf"(?:{q}(?:[^{q}]|{q}{q})*{q}|(?:[^{q}{d}\r\n][^{d}\r\n]*)?)"
    record = rf"{field}(?:{d}{field})*"
    return rf"\A(?:\xef\xbb\xbf)?(?:{record}(?:\r\n|\n|\r))*(?:{record})?\z"


def _patterns(delimiter: str, quote: str, kinds: Divergences) -> str:
    """RE2 finding any byte pattern pyarrow reads otherwise (``""``: none to find)."""
    return "|".join(p for _, p in _named(delimiter, quote, kinds))


def _named(delimiter: str, quote: str, kinds: Divergences) -> list[tuple[str, str]]:
    field_start = re.escape(delimiter + quote)
    bound = field_start + r"\r\n"
    found: list[tuple[str, str]] = []
    if kinds.integers:
        found.append(("a hexadecimal number (0x…)", "0[xX]"))
    if kinds.trimmed and delimiter != "\t":
        found.append(("a tab beside a value", r"\t"))
    elif kinds.trimmed and quote:  # tab-separated: a tab inside a quoted value
        q = re.escape(quote)
        found.append(("a tab beside a value", rf"{q}\t|\t{q}"))
    if kinds.timestamps:
        found.append(
            (
                "a timestamp without minutes",
                rf"[0-9]{{4}}-[0-9]{{1,2}}-[0-9]{{1,2}}[T ][0-9]{{1,2}} *(?:[{bound}]|$)",
            )
        )
    return [(name, pattern) for name, pattern in found if pattern]


def _which(pieces: Any, delimiter: str, quote: str, kinds: Divergences) -> str:
    """The first pattern found, named (paid only for a refused file)."""
    import pyarrow.compute as pc

    for name, pattern in _named(delimiter, quote, kinds):
        if pc.any(pc.match_substring_regex(pieces, pattern)).as_py():
            return name
    return "a value pyarrow reads otherwise"
