"""Which text encoding a file uses, without a charset-guessing library.

The order of the checks is the order of certainty: a byte-order mark names the
encoding outright; NUL bytes on every other position are UTF-16 without a mark; bytes
that decode as UTF-8 are UTF-8 (a valid multi-byte UTF-8 sequence by chance in a legacy
file is very rare); anything else is CP1252, the Windows superset of Latin-1 that most
non-UTF-8 CSV in the wild uses, with Latin-1 for the five bytes CP1252 leaves undefined.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

# Bytes CP1252 leaves undefined: a file holding one is decoded as Latin-1 instead.
CP1252_HOLES = frozenset(b"\x81\x8d\x8f\x90\x9d")


@dataclass(frozen=True)
class EncodingDecision:
    """The codec to decode with (Python's name), the BOM length to skip, and why."""

    name: str
    bom: int
    reason: str

    @property
    def duckdb_name(self) -> str | None:
        """The name DuckDB's ``read_csv(encoding=…)`` knows, ``None`` for its UTF-8."""
        if self.name in ("utf-8", "utf-8-sig"):
            return None
        if self.name.startswith("utf-16"):
            return "utf-16"
        return "latin-1"

    @property
    def table_name(self) -> str | None:
        """What a raw table records: DuckDB's name where DuckDB reads the encoding
        itself, else the codec (``cp1252``: scans transcode a staged copy to UTF-8)."""
        if self.name.lower().replace("_", "-") in ("cp1252", "windows-1252"):
            return "cp1252"
        return self.duckdb_name


def detect_encoding(head: bytes) -> EncodingDecision:
    """Decide the encoding from the first bytes of a file (a 64 KiB head is plenty)."""
    if head.startswith(codecs.BOM_UTF8):
        return EncodingDecision("utf-8", 3, "UTF-8 byte-order mark")
    if head.startswith(codecs.BOM_UTF16_LE):
        return EncodingDecision("utf-16-le", 2, "UTF-16 LE byte-order mark")
    if head.startswith(codecs.BOM_UTF16_BE):
        return EncodingDecision("utf-16-be", 2, "UTF-16 BE byte-order mark")
    utf16 = _utf16_without_bom(head)
    if utf16 is not None:
        return EncodingDecision(utf16, 0, "no byte-order mark, but NUL bytes on every other byte")
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError as exc:
        bad = head[exc.start : exc.start + 1].hex()
        if any(b in CP1252_HOLES for b in head):
            return EncodingDecision(
                "latin-1",
                0,
                f"not UTF-8 (byte 0x{bad} at offset {exc.start}); a byte CP1252 leaves "
                "undefined, so Latin-1",
            )
        return EncodingDecision(
            "cp1252", 0, f"not UTF-8 (byte 0x{bad} at offset {exc.start}); read as CP1252"
        )
    if any(b >= 0x80 for b in head):
        return EncodingDecision("utf-8", 0, "valid UTF-8 with non-ASCII characters")
    return EncodingDecision("utf-8", 0, "ASCII only (read as UTF-8)")


def _utf16_without_bom(head: bytes) -> str | None:
    """``utf-16-le``/``-be`` when NULs fill one byte of most pairs (ASCII text in UTF-16)."""
    pairs = len(head) // 2
    if pairs < 2 or head.count(0) < pairs // 2:
        return None
    even = sum(1 for i in range(0, pairs * 2, 2) if head[i] == 0)
    odd = sum(1 for i in range(1, pairs * 2, 2) if head[i] == 0)
    if odd >= 0.7 * pairs and even < 0.1 * pairs:
        return "utf-16-le"
    if even >= 0.7 * pairs and odd < 0.1 * pairs:
        return "utf-16-be"
    return None


def decode(data: bytes, decision: EncodingDecision) -> str:
    """The file's text; undecodable bytes become U+FFFD rather than failing the read."""
    return data[decision.bom :].decode(decision.name, errors="replace")
