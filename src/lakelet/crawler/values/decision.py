"""A column's type decision and the vocabulary it is written in (tokens, formats)."""

import re
from dataclasses import dataclass, field
from typing import Any

NULL_TOKENS = ("", "null", "n/a", "na", "none", "nil", "nan", "-", "--", "#n/a")
TRUE_TOKENS = ("true", "t", "yes", "y")
FALSE_TOKENS = ("false", "f", "no", "n")
CURRENCY_SYMBOLS = "$€£¥₹₩₽₺₪"
DECIMAL_COMMA = "decimal-comma"
CURRENCY = "currency"
PERCENT = "percent"
ISO = "iso8601"
MIN_PRECISION = 18
MAX_PRECISION = 38
MAX_SCALE = 12
BIGINT_MAX = 2**63 - 1
HUGEINT_MAX = 2**127 - 1
# Candidate date formats, in tie-break order (month first before day first).
DATE_FORMATS = (
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%Y.%m.%d",
    "%m/%d/%Y",
    "%d/%m/%Y",
    "%d.%m.%Y",
    "%m-%d-%Y",
    "%d-%m-%Y",
    "%m/%d/%y",
    "%d/%m/%y",
    "%d.%m.%y",
    "%d %b %Y",
    "%b %d, %Y",
    "%d-%b-%Y",
)
# Shapes each format's values must have (strptime alone is lenient about widths).
_D, _Y4, _Y2, _MON = r"\d{1,2}", r"\d{4}", r"\d{2}", r"[A-Za-z]{3}"
_DATE_SHAPES = {
    "%Y-%m-%d": rf"{_Y4}-{_D}-{_D}",
    "%Y/%m/%d": rf"{_Y4}/{_D}/{_D}",
    "%Y.%m.%d": rf"{_Y4}\.{_D}\.{_D}",
    "%m/%d/%Y": rf"{_D}/{_D}/{_Y4}",
    "%d/%m/%Y": rf"{_D}/{_D}/{_Y4}",
    "%d.%m.%Y": rf"{_D}\.{_D}\.{_Y4}",
    "%m-%d-%Y": rf"{_D}-{_D}-{_Y4}",
    "%d-%m-%Y": rf"{_D}-{_D}-{_Y4}",
    "%m/%d/%y": rf"{_D}/{_D}/{_Y2}",
    "%d/%m/%y": rf"{_D}/{_D}/{_Y2}",
    "%d.%m.%y": rf"{_D}\.{_D}\.{_Y2}",
    "%d %b %Y": rf"{_D} {_MON} {_Y4}",
    "%b %d, %Y": rf"{_MON} {_D}, {_Y4}",
    "%d-%b-%Y": rf"{_D}-{_MON}-{_Y4}",
}
_TIME = r"\d{1,2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?"
_ZONE = r"(?:Z|[+-]\d{2}(?::?\d{2})?)"
_ISO_TIMESTAMP = rf"\d{{4}}-\d{{1,2}}-\d{{1,2}}(?:[T ]{_TIME})?"
_ISO_TIMESTAMPTZ = rf"\d{{4}}-\d{{1,2}}-\d{{1,2}}[T ]{_TIME} ?{_ZONE}"
_ISO_RE = re.compile(_ISO_TIMESTAMP)
_ISO_TZ_RE = re.compile(_ISO_TIMESTAMPTZ)
_TIME_RE = re.compile(_TIME)
_EXP_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)[eE][+-]?\d+")
_SPECIAL_FLOATS = ("nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity")
_CODE = r"[A-Z]{3}"
_CURRENCY_RE = re.compile(
    rf"(?P<open>\()?(?P<s1>[+-])?(?P<pre>[{CURRENCY_SYMBOLS}]|{_CODE})? ?(?P<s2>[+-])?"
    rf"(?P<num>[\d.,]*\d)(?: ?(?P<post>[{CURRENCY_SYMBOLS}]|{_CODE}))?(?P<close>\))?"
)
# Votes are counted for these candidates; the first the majority rule accepts wins.
CANDIDATES = (
    "BOOLEAN",
    "BIGINT",
    "DECIMAL",
    "DOUBLE",
    CURRENCY,
    PERCENT,
    "DATE",
    "TIMESTAMP",
    "TIMESTAMPTZ",
    "TIME",
)


@dataclass(frozen=True)
class TypeDecision:
    """What a column's values are, and why (``--explain`` prints ``reason``).

    ``format`` says how values are written: a strptime format for dates and non-ISO
    timestamps, ``iso8601`` for ISO timestamps, ``currency`` / ``percent`` for amounts
    (``… decimal-comma`` when the decimal mark is a comma), ``decimal-comma`` for plain
    numbers written that way, else ``None``. ``votes`` counts, per candidate, the
    non-null sampled values that fit it; ``failures`` the non-null values the chosen
    type does not fit (their rows are rejected when read).
    """

    sql_type: str
    format: str | None = None
    currency: str | None = None
    nulls: tuple[str, ...] = ()
    votes: dict[str, int] = field(default_factory=dict)
    failures: int = 0
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        """What a raw table stores to rebuild the conversion (its type is the column's)."""
        out: dict[str, Any] = {}
        if self.format:
            out["format"] = self.format
        if self.currency:
            out["currency"] = self.currency
        if self.nulls:
            out["nulls"] = list(self.nulls)
        return out


def is_null_token(value: str | None) -> bool:
    """True for a value that means "no value" (``""``, ``NULL``, ``N/A``, ``-``, …)."""
    return value is None or value.strip().lower() in NULL_TOKENS
