"""Read a messy CSV file automatically: the one entry point the crawler and ``lakelet read``
share, so both take the same decisions.

Detection looks at the head of the file only (``SAMPLE_BYTES``): encoding, dialect,
table width. Parsing then reads the whole text with the width known, so a stray quote
costs one line. Every decision carries its reason (:mod:`lakelet.crawler.messy.explain`).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from lakelet.crawler.messy.dialect import DialectDecision, detect_dialect
from lakelet.crawler.messy.encoding import EncodingDecision, decode, detect_encoding
from lakelet.crawler.messy.layout import TableLayout, find_tables, modal_width
from lakelet.crawler.messy.parse import Dialect, Parser, parse

SAMPLE_BYTES = 1 << 16
NEWLINES = {"\r\n": "\\r\\n", "\n": "\\n", "\r": "\\r"}


@dataclass(frozen=True)
class Detection:
    """What the head of a file says: encoding, dialect, newline and table width."""

    encoding: EncodingDecision
    dialect: DialectDecision
    newline: str
    width: int


@dataclass
class ReadResult:
    """A file read: its detection and the tables found (the first is the main one)."""

    detection: Detection
    tables: list[TableLayout] = field(default_factory=list)
    repaired_lines: list[int] = field(default_factory=list)

    @property
    def dialect(self) -> Dialect:
        return self.detection.dialect.dialect


def sample_text(head: bytes, encoding: EncodingDecision, *, complete: bool) -> str:
    """The head decoded and, unless it is the whole file, cut after its last line end."""
    text = decode(head, encoding)
    if not complete:
        cut = max(text.rfind("\n"), text.rfind("\r"))
        if cut > 0:
            text = text[: cut + 1]
    return text


def newline_of(text: str) -> str:
    """The most common record delimiter of a text (``\\n`` when it has none)."""
    counts = Counter(m.group() for m in re.finditer(r"\r\n|\r|\n", text))
    return counts.most_common(1)[0][0] if counts else "\n"


def detect(
    head: bytes, *, complete: bool, delimiter: str | None = None, quote: str | None = None
) -> Detection:
    """Encoding, dialect, newline and width from the first bytes of a file
    (``delimiter`` / ``quote``: a custom classifier's settings, which limit the search)."""
    encoding = detect_encoding(head)
    text = sample_text(head, encoding, complete=complete)
    decision = detect_dialect(text, delimiter=delimiter, quote=quote)
    records = parse(text, decision.dialect)
    return Detection(encoding, decision, newline_of(text), modal_width(records))


def read_csv_bytes(data: bytes) -> ReadResult:
    """Read a whole file's bytes into tables (see :mod:`lakelet.crawler.messy.layout`)."""
    head = data[:SAMPLE_BYTES]
    detection = detect(head, complete=len(data) <= SAMPLE_BYTES)
    text = decode(data, detection.encoding)
    parser = Parser(text, detection.dialect.dialect)
    records = list(parser.records(width=detection.width))
    result = ReadResult(detection)
    result.repaired_lines = [r.line for r in records if r.repaired]
    result.tables = find_tables(records, detection.width)
    return result


def read_csv_file(path: Path) -> ReadResult:
    """Read a file from disk (the whole file is held in memory)."""
    return read_csv_bytes(path.read_bytes())
