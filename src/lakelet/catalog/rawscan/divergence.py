"""Where pyarrow's CSV reader and the checked scan would read a file differently, found
in the file's bytes before its rows are trusted.

pyarrow is stricter than DuckDB's typed reader, but not strict in the same places as
Lakelet's conversion (tests compare both over generated values). It also reads
``0x1F`` as the integer 31, trims tabs around numbers, dates and booleans, takes
``2026-11-27 10`` as a timestamp, and reads on after a closing quote (``"ab"c`` is
``abc`` where DuckDB rejects the row). A file holding any such byte pattern is left to
the checked scan. The check is one pass of RE2 (the regular-expression engine behind
pyarrow's ``match_substring_regex``) over the memory-mapped file, in a thread beside
the parse: the whole file must match a grammar of RFC 4180 fields (unquoted, or quoted
with inner quotes doubled) of UTF-8 text that holds no ``0x`` (when a column is an
integer) and no tab (when a column's text is trimmed). Timestamps take a second pass,
only for tables that have them. The check is conservative: ``0x`` in a text column also
refuses the file. Checking UTF-8 in the same pass costs nothing (RE2's automaton reads
every byte anyway) and spares pyarrow's own check, a tenth of its parse.

RE2's automaton costs about 2.2 ns a byte here, whatever the grammar: 15 % of a job's
CPU on TPC-H lineitem. Most files are ASCII whose quotes only open and close whole
values, so a piece is first tried by :func:`plain_fits`, vectorised with numpy (1.6 ns
a byte on lineitem, 0.4 without quotes), which proves such a piece fits the grammar or
says it cannot tell; RE2 then decides.

The file is cut at line ends into pieces of :data:`PIECE_BYTES`; a quoted value may
span one cut (a failing piece is matched again joined to the next), a longer one
fails the grammar (the file is refused, never misread).
"""

from __future__ import annotations

import mmap
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

PIECE_BYTES = 16 << 20
TAPER_PIECES = 4
CHUNK_BYTES = 1 << 18
"""Bytes :func:`plain_fits` takes at once: each pass over them stays in the core's cache."""
_LINE_ENDS = (10, 13)
_ESCAPES = {"\t": r"\t", "\r": r"\r", "\n": r"\n"}
_MULTIBYTE = (
    r"[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}"
    r"|\xed[\x80-\x9f][\x80-\xbf]|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}"
    r"|\xf4[\x80-\x8f][\x80-\xbf]{2}"
)
"""A UTF-8 character of two to four bytes (RFC 3629: no overlong forms, no surrogates,
nothing past U+10FFFF). The pieces are matched as bytes (RE2 reads binary as Latin-1),
so ``\\x80`` is the byte 0x80."""


@dataclass(frozen=True)
class Divergences:
    """The byte patterns to rule out in one table's files."""

    integers: bool = False  # pyarrow reads 0x1F into an integer column
    timestamps: bool = False  # and 2026-11-27 10 into a timestamp column
    trimmed: bool = False  # and trims tabs around numbers, dates and booleans


class Diverges(Exception):
    """A range of a file pyarrow would read otherwise; ``str()`` says why."""


def checked_ranges(
    path: Path, *, quote: str, delimiter: str, kinds: Divergences
) -> Iterator[tuple[int, int]]:
    """Byte ranges of ``path``, in order, each of whole records pyarrow and the checked
    scan read alike; raises :class:`Diverges` at the first range that is not.

    Each range starts where the previous one's last record ended, so the ranges can be
    parsed apart (and in parallel). The file is mapped and matched piece by piece, a
    piece's pages dropped from the process once it is matched, so memory stays about
    two pieces. A piece that fails is matched again joined to the next, in case a
    quoted value spans their cut.
    """
    size = path.stat().st_size
    if size == 0:
        yield 0, 0
        return
    rules = grammar(quote, delimiter, kinds)
    hours = _hour_only(delimiter, quote) if kinds.timestamps else ""
    with path.open("rb") as stream, mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ) as view:
        cuts = _cuts(view, size)
        at = 0
        while at < len(cuts) - 1:
            start, end = cuts[at], cuts[at + 1]
            fits = plain_fits(view, start, end, quote, delimiter, kinds)
            fits = fits or _matches(view, start, end, rules)
            if not fits and at + 2 < len(cuts):  # a quoted value across the cut?
                end = cuts[at + 2]
                fits = _matches(view, start, end, rules)
                at += 1
            if not fits:
                raise Diverges(_why(view, start, end, quote, delimiter, kinds))
            if hours and _matches(view, start, end, hours, search=True):
                raise Diverges("a timestamp without minutes")
            aligned = start - start % mmap.PAGESIZE
            view.madvise(mmap.MADV_DONTNEED, aligned, end - aligned)
            yield start, end
            at += 1


def divergence(path: Path, *, quote: str, delimiter: str, kinds: Divergences) -> str | None:
    """Why pyarrow may read ``path`` differently from the checked scan, or ``None``."""
    try:
        for _ in checked_ranges(path, quote=quote, delimiter=delimiter, kinds=kinds):
            pass
    except Diverges as found:
        return str(found)
    return None


def plain_fits(
    view: Any, start: int, end: int, quote: str, delimiter: str, kinds: Divergences
) -> bool:
    """Whether bytes ``start:end`` of ``view`` (whole records) are proven to match
    :func:`grammar`; ``False`` means unsure, not unfit.

    Proven when the bytes are ASCII, hold no tab (when ``kinds.trimmed``) and no
    ``0x``/``0X`` (when ``kinds.integers``), and their quotes pair up in order, each
    pair opening a value (after a delimiter, a line end or the start) and closing it
    (before one, or the end): the grammar's fields then follow. A doubled quote, a
    quote inside an unquoted value, or a quoted value cut by the piece's end is left
    to RE2.
    """
    if not _plain_dialect(quote, delimiter):
        return False
    data = np.frombuffer(view, np.uint8, end - start, start)
    mask = np.empty(min(CHUNK_BYTES, len(data)), np.bool_)
    work = np.empty(min(CHUNK_BYTES, len(data)) + 2, np.uint8)
    tab = kinds.trimmed and delimiter != "\t"
    quotes: list[Any] = []
    for at in range(0, len(data), CHUNK_BYTES):
        chunk = data[at : at + CHUNK_BYTES]
        if chunk.max() >= 0x80:
            return False
        found = mask[: len(chunk)]
        if tab and np.equal(chunk, ord("\t"), out=found).any():
            return False
        if kinds.integers and _hexadecimal(data[at : at + len(chunk) + 1], work, found):
            return False
        if quote:
            quotes.append(np.flatnonzero(np.equal(chunk, ord(quote), out=found)) + at)
    if not quote or not quotes:
        return True
    return _paired(data, np.concatenate(quotes), ord(delimiter))


def _plain_dialect(quote: str, delimiter: str) -> bool:
    """A one-byte delimiter and quote that are neither line ends nor each other."""
    special = (*map(chr, _LINE_ENDS), delimiter)
    return (
        len(delimiter) == 1
        and delimiter.isascii()
        and len(quote) <= 1
        and quote.isascii()
        and quote not in special
        and delimiter not in "\r\n"
    )


def _hexadecimal(data: Any, work: Any, found: Any) -> bool:
    """Whether ``data`` holds ``0x`` or ``0X``: its byte pairs, read as little-endian
    16-bit words from both alignments, with the bit that makes ``X`` into ``x`` set."""
    for offset in (0, 1):
        pairs = (len(data) - offset) // 2
        words = data[offset : offset + 2 * pairs].view(np.uint16)
        lowered = work[: 2 * pairs].view(np.uint16)
        np.bitwise_or(words, 0x2000, out=lowered)
        if np.equal(lowered, ord("0") | (ord("x") << 8), out=found[:pairs]).any():
            return True
    return False


def _paired(data: Any, quotes: Any, delimiter: int) -> bool:
    """Whether the quotes at positions ``quotes`` pair up, in order, into values that
    start and end at field boundaries (see :func:`plain_fits`)."""
    if len(quotes) % 2:
        return False
    if not len(quotes):
        return True
    opens, closes = quotes[0::2], quotes[1::2]
    before = data[opens[1:] - 1] if opens[0] == 0 else data[opens - 1]
    after = data[closes[:-1] + 1] if closes[-1] == len(data) - 1 else data[closes + 1]
    return _boundaries(before, delimiter) and _boundaries(after, delimiter)


def _boundaries(found: Any, delimiter: int) -> bool:
    """Whether every byte of ``found`` ends a field: the delimiter or a line end."""
    ends = np.equal(found, delimiter)
    for byte in _LINE_ENDS:
        ends |= np.equal(found, byte)
    return bool(ends.all())


def _matches(view: Any, start: int, end: int, pattern: str, *, search: bool = False) -> bool:
    """Whether bytes ``start:end`` of ``view`` match ``pattern`` (fully, unless
    ``search``), read in place by RE2."""
    import pyarrow as pa
    import pyarrow.compute as pc

    with memoryview(view)[start:end] as window:
        data = pa.py_buffer(window)
        offsets = pa.array([0, end - start], pa.int64()).buffers()[1]
        piece = pa.Array.from_buffers(pa.large_binary(), 1, [None, offsets, data])
        found = bool(pc.match_substring_regex(piece, pattern)[0].as_py())
        del piece, data
    return found


def _why(view: Any, start: int, end: int, quote: str, delimiter: str, kinds: Divergences) -> str:
    """What made the grammar fail in bytes ``start:end`` (looked for only then)."""
    if not _matches(view, start, end, rf"\A(?:[\x00-\x7f]|{_MULTIBYTE})*\z"):
        return "bytes that are not UTF-8 text"
    if kinds.integers and _matches(view, start, end, "0[xX]", search=True):
        return "a 0x in the file (pyarrow reads hexadecimal integers)"
    tab = kinds.trimmed and delimiter != "\t"
    if tab and _matches(view, start, end, r"\t", search=True):
        return "a tab in the file (pyarrow trims tabs around values)"
    if quote:
        return f"a {quote} that neither opens nor closes a value (RFC 4180)"
    return "a line pyarrow reads otherwise"


def _cuts(view: Any, size: int) -> list[int]:
    """Offsets cutting the file into pieces of about PIECE_BYTES after line ends; the
    first piece and the last :data:`TAPER_PIECES` pieces' worth are cut eight times
    finer, so parallel readers start sooner and finish together (one reader left
    with a whole piece at the end kept the other core idle for ~0.2 s)."""
    cuts = [0]
    while True:
        at = cuts[-1]
        fine = at == 0 or size - at <= TAPER_PIECES * PIECE_BYTES
        step = max(PIECE_BYTES // 8, 1) if fine else PIECE_BYTES
        if at + step >= size:
            break
        end = view.find(b"\n", at + step)
        if end < 0:
            break
        cuts.append(end + 1)
    if cuts[-1] != size:
        cuts.append(size)
    return cuts


def grammar(quote: str, delimiter: str, kinds: Divergences) -> str:
    """RE2 fully matching a piece of CSV that pyarrow and DuckDB read alike.

    Fields are unquoted (not starting with a quote) or quoted (inner quotes doubled);
    text is UTF-8 and holds no tab when ``kinds.trimmed`` (outside a tab-separated
    file's delimiters) and no ``0x``/``0X`` when ``kinds.integers``: after a run of
    zeros comes anything but an x (or the end of the text).
    """
    tab = {"\t"} if kinds.trimmed and delimiter != "\t" else set()
    line_ends = {"\r", "\n"}
    plain = _content(tab | line_ends | {delimiter}, kinds.integers, first_excluded={quote})
    fields = [plain]
    if quote:
        q = _char(quote)
        inner = _content(tab | {quote}, kinds.integers, pair=q + q)
        fields.insert(0, f"{q}{inner}{q}")
    field = f"(?:{'|'.join(fields)})"
    d = _char(delimiter)
    record = f"{field}(?:{d}{field})*"
    return rf"\A(?:\xef\xbb\xbf)?(?:{record}(?:\r\n|\n|\r))*(?:{record})?\z"


def _content(
    excluded: set[str], integers: bool, *, first_excluded: set[str] | None = None, pair: str = ""
) -> str:
    """RE2 for a run of text without the ``excluded`` characters (and without ``0x``
    when ``integers``); ``first_excluded`` may not start it; ``pair`` (a doubled quote)
    counts as one character."""
    body = _class(excluded)
    extra = f"|{pair}" if pair else ""
    if not integers:
        atom = f"(?:{_but(body)}{extra})"
        if first_excluded is None:
            return f"{atom}*"
        first = _but(_class(excluded | first_excluded))
        return f"(?:{first}{atom}*)?"
    after_zeros = f"(?:{_but('0xX' + body)}{extra})"
    atom = f"(?:{_but('0' + body)}{extra}|0+{after_zeros})"
    if first_excluded is None:
        return f"{atom}*0*"
    start = _class(excluded | first_excluded)
    first = f"(?:{_but('0' + start)}|0+{_but('0xX' + start)})"
    return f"(?:{first}{atom}*0*|0+)?"


def _but(body: str) -> str:
    """RE2 for one UTF-8 character outside the class ``body`` (of ASCII characters)."""
    return f"(?:[^{body}\\x80-\\xff]|{_MULTIBYTE})"


def _class(chars: set[str]) -> str:
    return "".join(_char(c) for c in sorted(c for c in chars if c))


def _char(c: str) -> str:
    return _ESCAPES.get(c) or re.escape(c)


def _hour_only(delimiter: str, quote: str) -> str:
    bound = _class({delimiter, quote, "\r", "\n"})
    return rf"[0-9]{{4}}-[0-9]{{1,2}}-[0-9]{{1,2}}[T ][0-9]{{1,2}} *(?:[{bound}]|$)"
