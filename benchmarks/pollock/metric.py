"""The Pollock score of one loaded file against its clean file (our implementation).

Per file ten numbers in [0, 1]: success; header precision, recall, F1 (multisets of
normalised header cells); record precision, recall, F1 (multisets of rows, each the
concatenation of its normalised cells); cell precision, recall, F1 (multisets of all
cells, not normalised). precision = |∩| / |loaded|, recall = |∩| / |clean|; when the
clean side is empty all three are 1. Both files are read as RFC 4180 CSV, header first.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

ERROR_MARK = "Application Error"
NUMBER_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
CURRENCY_RE = re.compile(r"([$€£¥])\s?([+-]?[\d.,]+)|([+-]?[\d.,]+)\s?([$€£¥])")
DATE_FORMATS = (
    "%Y-%m-%d",
    "%d/%m/%Y",
    "%m/%d/%Y",
    "%d.%m.%Y",
    "%Y/%m/%d",
    "%d-%m-%Y",
    "%d/%m/%y",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%d/%m/%Y %H:%M",
)
TIME_FORMATS = ("%H:%M", "%H:%M:%S", "%I:%M %p", "%I:%M:%S %p")
DATE_LIKE_RE = re.compile(r"\d[\d/.:T -]*\d(?: ?[AaPp][Mm])?")


@dataclass(frozen=True)
class FileScore:
    success: float
    header: tuple[float, float, float]
    record: tuple[float, float, float]
    cell: tuple[float, float, float]

    @property
    def total(self) -> float:
        return self.success + sum(self.header) + sum(self.record) + sum(self.cell)


FAILED = FileScore(0.0, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0), (0.0, 0.0, 0.0))


def read_rows(text: str) -> list[list[str]]:
    """An RFC 4180 text as rows (the loaded or clean file)."""
    return list(csv.reader(io.StringIO(text, newline=""), strict=False))


def _number(text: str) -> str | None:
    if not NUMBER_RE.fullmatch(text):
        return None
    value = float(text)
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def normalise(cell: str) -> str:
    """Numbers canonical, booleans 0/1, dates and times ISO, currency symbol + amount,
    other text lower-cased."""
    value = cell.strip()
    number = _number(value)
    if number is not None:
        return number
    lower = value.lower()
    if lower in ("true", "false"):
        return "1" if lower == "true" else "0"
    money = CURRENCY_RE.fullmatch(value)
    if money:
        symbol = money.group(1) or money.group(4)
        amount = (money.group(2) or money.group(3)).replace(",", "")
        canonical = _number(amount)
        if canonical is not None:
            return f"{symbol}{canonical}"
    if not DATE_LIKE_RE.fullmatch(value):
        return lower
    for fmt in DATE_FORMATS:
        try:
            return datetime.strptime(value, fmt).isoformat()
        except ValueError:
            pass
    for fmt in TIME_FORMATS:
        try:
            return datetime.strptime(value, fmt).time().isoformat()
        except ValueError:
            pass
    return lower


def prf(loaded: Counter[str], clean: Counter[str]) -> tuple[float, float, float]:
    """Precision, recall and F1 of two multisets (all 1 when ``clean`` is empty)."""
    n_clean = sum(clean.values())
    if n_clean == 0:
        return 1.0, 1.0, 1.0
    n_loaded = sum(loaded.values())
    common = sum((loaded & clean).values())
    precision = common / n_loaded if n_loaded else 0.0
    recall = common / n_clean
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def score(loaded_text: str | None, clean_text: str) -> FileScore:
    """Score a loaded file (``None`` or an ``Application Error`` file: failed)."""
    if loaded_text is None or loaded_text.startswith(ERROR_MARK):
        return FAILED
    loaded = read_rows(loaded_text)
    clean = read_rows(clean_text)
    known: dict[str, str] = {}

    def norm(cell: str) -> str:
        value = known.get(cell)
        if value is None:
            value = known[cell] = normalise(cell)
        return value

    header = prf(_header(loaded, norm), _header(clean, norm))
    record = prf(_records(loaded, norm), _records(clean, norm))
    cell = prf(_cells(loaded), _cells(clean))
    return FileScore(1.0, header, record, cell)


def _header(rows: list[list[str]], norm: Callable[[str], str]) -> Counter[str]:
    return Counter(norm(c) for c in rows[0]) if rows else Counter()


def _records(rows: list[list[str]], norm: Callable[[str], str]) -> Counter[str]:
    return Counter("".join(norm(c) for c in row) for row in rows[1:])


def _cells(rows: list[list[str]]) -> Counter[str]:
    return Counter(c for row in rows for c in row)
