"""What one cell looks like: a small, fixed set of value kinds recognised by pattern.

Used to score dialects (a good dialect yields cells that look like values) and to tell
header rows and preambles from data (a header cell is text where its column holds
numbers or dates). The patterns are deliberately simple: they classify, they do not
parse; column types for the catalog come from :mod:`lakelet.crawler.values`.
"""

from __future__ import annotations

import re

EMPTY = "empty"
TEXT = "text"

_NUMBER = r"[+-]?(?:\d+|\d{1,3}(?:[,.' ]\d{3})+)(?:[.,]\d+)?(?:[eE][+-]?\d+)?"
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("integer", re.compile(r"[+-]?\d+")),
    ("number", re.compile(_NUMBER + r"|[+-]?[.,]\d+")),
    ("percent", re.compile(_NUMBER + r" ?%")),
    ("currency", re.compile(r"[$€£¥]\s?" + _NUMBER + r"|" + _NUMBER + r"\s?[$€£¥]")),
    (
        "date",
        re.compile(
            r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}"
            r"|\d{1,2}[ -][A-Za-z]{3,9}[ -]\d{2,4}|[A-Za-z]{3,9}\.? \d{1,2},? \d{4}"
        ),
    ),
    ("time", re.compile(r"\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?: ?[AaPp][Mm])?")),
    (
        "datetime",
        re.compile(
            r"(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})"
            r"[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?"
        ),
    ),
    ("boolean", re.compile(r"(?i:true|false|yes|no)")),
    ("null", re.compile(r"(?i:null|none|nan|n/a|na|-)")),
    ("url", re.compile(r"(?i:(?:https?|ftp)://\S+|www\.\S+)")),
    ("email", re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")),
    ("code", re.compile(r"[A-Z]{1,5}[-_]?\d{1,10}")),
)

# Kinds whose syntax has punctuation of its own: the ':' of a time or a URL, the ' ' of
# a timestamp. A delimiter candidate found only inside such cells is part of the values.
# Numbers are left out: '15,10' may be a decimal comma or two fields.
STRUCTURED = frozenset({"date", "time", "datetime", "url", "email"})


def kind_of(value: str) -> str:
    """The kind of a cell: ``empty``, ``integer``, ``number``, ``date``, …, or ``text``."""
    if value == "":
        return EMPTY
    if len(value) > 64:
        return TEXT
    for kind, pattern in _PATTERNS:
        if pattern.fullmatch(value):
            return kind
    return TEXT


def is_value(value: str) -> bool:
    """A cell that looks like a typed value (or is empty), not free text."""
    return kind_of(value) != TEXT
