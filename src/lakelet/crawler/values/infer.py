"""Inference: the votes of every sampled value, and the narrowest type the majority accepts.

Each distinct value is looked at once and votes with its count: a sample repeats values
(flags, codes, dates), and the per-value checks (a dozen patterns, date parsing) are
where inference spends its time. The shortcuts never change a decision: a value without
any digit is only tried as a boolean or a special float (every other candidate needs a
digit); the date shapes are matched once per skeleton (``2026-11-27`` → ``0000-00-00``);
numeric dates are checked by building the date instead of by ``strptime``, which accepts
the same ones.
"""

import re
import string
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from lakelet.crawler.schema import MAJORITY_FLOOR, MAJORITY_SHARE
from lakelet.crawler.values.decision import (
    _CURRENCY_RE,
    _DATE_SHAPES,
    _EXP_RE,
    _ISO_RE,
    _ISO_TZ_RE,
    _SPECIAL_FLOATS,
    _TIME,
    _TIME_RE,
    BIGINT_MAX,
    CANDIDATES,
    CURRENCY,
    DATE_FORMATS,
    DECIMAL_COMMA,
    FALSE_TOKENS,
    HUGEINT_MAX,
    ISO,
    MAX_PRECISION,
    MAX_SCALE,
    MIN_PRECISION,
    NULL_TOKENS,
    PERCENT,
    TRUE_TOKENS,
    TypeDecision,
)

# --- numbers -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Number:
    negative: bool
    whole: str
    fraction: str | None  # None: no decimal mark; "" never (``5.`` is not accepted)

    @property
    def scale(self) -> int:
        return len(self.fraction or "")


_NUMBER_CHARS_RE = re.compile(r"[+-]?[\d.,]+")
"""What a number of either style is made of."""
_DIGIT_RE = re.compile(r"\d")
_DOT_RE = re.compile(r"(?P<sign>[+-])?(?P<whole>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<frac>\d+))?")
_COMMA_RE = re.compile(r"(?P<sign>[+-])?(?P<whole>\d{1,3}(?:\.\d{3})+|\d+)(?:,(?P<frac>\d+))?")


def _number(text: str, comma: bool) -> _Number | None:
    """A plain number in the dot (``1,234.5``) or comma (``1.234,5``) style."""
    match = (_COMMA_RE if comma else _DOT_RE).fullmatch(text)
    if match is None:
        return None
    whole = match["whole"].replace("." if comma else ",", "")
    if len(whole) > 1 and whole.startswith("0"):
        return None  # 007: a code
    return _Number(match["sign"] == "-", whole, match["frac"])


def _comma_style(counts: Mapping[str, int]) -> bool:
    """Whether the data writes decimals with a comma: more values read only that way."""
    only_comma = only_dot = 0
    for value, count in counts.items():
        if _DIGIT_RE.search(value) is None or (value.isascii() and value.isdigit()):
            continue  # no number in it, or digits only: it reads the same in both styles
        text = _strip_decoration(value)
        if _NUMBER_CHARS_RE.fullmatch(text) is None:
            continue  # not a number in either style
        dot, comma = _number(text, False), _number(text, True)
        if dot is None and comma is not None:
            only_comma += count
        elif comma is None and dot is not None and dot.fraction is not None:
            only_dot += count
    return only_comma > only_dot


def _strip_decoration(value: str) -> str:
    """The number inside a currency amount or percentage (for the style vote)."""
    text = value.rstrip("%").strip()
    match = _CURRENCY_RE.fullmatch(text)
    return match["num"] if match else text


def _currency(text: str, comma: bool) -> tuple[str, _Number] | None:
    if text.isascii() and "$" not in text and text == text.lower():
        return None  # no unit: $ is the only ASCII symbol, and a code is three capitals
    match = _CURRENCY_RE.fullmatch(text)
    if match is None:
        return None
    unit = match["pre"] or match["post"]
    if not unit or (match["pre"] and match["post"]):
        return None
    if bool(match["open"]) != bool(match["close"]):
        return None
    signs = [s for s in (match["s1"], match["s2"]) if s]
    if len(signs) > 1 or (match["open"] and signs):
        return None
    number = _number(match["num"], comma)
    if number is None:
        return None
    negative = bool(match["open"]) or signs == ["-"]
    return unit, _Number(negative, number.whole, number.fraction)


def _percent(text: str, comma: bool) -> _Number | None:
    if not text.endswith("%"):
        return None
    return _number(text[:-1].rstrip(), comma)


def _decimal_type(numbers: Sequence[_Number], scale: int) -> str:
    digits = max((len(n.whole) for n in numbers), default=1)
    precision = max(MIN_PRECISION, digits + scale)
    if precision > MAX_PRECISION or scale > MAX_SCALE:
        return "DOUBLE"
    return f"DECIMAL({precision},{scale})"


def _integer_type(numbers: Sequence[_Number]) -> str:
    biggest = max((int(n.whole) for n in numbers), default=0)
    if biggest <= BIGINT_MAX:
        return "BIGINT"
    if biggest <= HUGEINT_MAX:
        return "HUGEINT"
    return "DOUBLE"


# --- dates and times -----------------------------------------------------------------


_SHAPES = tuple((fmt, re.compile(_DATE_SHAPES[fmt])) for fmt in DATE_FORMATS)
_SKELETON = str.maketrans(
    dict.fromkeys(string.digits, "0") | dict.fromkeys(string.ascii_letters, "a")
)
"""A value's skeleton matches exactly the date shapes the value matches (they are made of
digits, ASCII letters and separators): values of one skeleton share their candidates."""
_NUMERIC_DATES = {
    # format -> positions of year, month and day among its three numbers; with a
    # four-digit year, strptime accepts exactly the numbers that make a valid date
    "%Y-%m-%d": (0, 1, 2),
    "%Y/%m/%d": (0, 1, 2),
    "%Y.%m.%d": (0, 1, 2),
    "%m/%d/%Y": (2, 0, 1),
    "%d/%m/%Y": (2, 1, 0),
    "%d.%m.%Y": (2, 1, 0),
    "%m-%d-%Y": (2, 0, 1),
    "%d-%m-%Y": (2, 1, 0),
}
_NUMBERS_RE = re.compile(r"(\d+)\D(\d+)\D(\d+)")
_ISO_SPLIT_RE = re.compile(r"[T ]")


def _date_formats(
    text: str, shapes: dict[str, list[str]] | None = None, iso: bool | None = None
) -> list[str]:
    """The candidate date formats a value is a valid date in; ``shapes`` keeps the
    formats each skeleton has the shape of, for the next values; ``iso``: whether it is
    a valid ``%Y-%m-%d`` date, when known already."""
    skeleton = text.translate(_SKELETON)
    candidates = None if shapes is None else shapes.get(skeleton)
    if candidates is None:
        candidates = [fmt for fmt, shape in _SHAPES if shape.fullmatch(skeleton)]
        if shapes is not None:
            shapes[skeleton] = candidates
    return [
        fmt
        for fmt in candidates
        if (iso if fmt == "%Y-%m-%d" and iso is not None else _valid_date(text, fmt))
    ]


def _valid_date(text: str, fmt: str) -> bool:
    """``datetime.strptime(text, fmt)`` succeeds (``text`` has ``fmt``'s shape)."""
    order = _NUMERIC_DATES.get(fmt)
    numbers = _NUMBERS_RE.fullmatch(text) if order is not None and text.isascii() else None
    if order is None or numbers is None:  # strptime takes only ASCII months and days
        try:
            datetime.strptime(text, fmt)
        except ValueError:
            return False
        return True
    year, month, day = (int(numbers[1 + i]) for i in order)
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True


def _valid_time(text: str) -> bool:
    hours, minutes, *rest = text.split(":")
    seconds = float(rest[0]) if rest else 0.0
    return int(hours) < 24 and int(minutes) < 60 and seconds < 60


def _iso_timestamp(text: str) -> str | None:
    """``TIMESTAMP``/``TIMESTAMPTZ`` for a valid ISO timestamp (or date), else None."""
    zoned = _ISO_TZ_RE.fullmatch(text) is not None
    if not zoned and _ISO_RE.fullmatch(text) is None:
        return None
    date_text = _ISO_SPLIT_RE.split(text, maxsplit=1)[0]
    if not _valid_date(date_text, "%Y-%m-%d"):
        return None
    rest = text[len(date_text) + 1 :]
    if rest:
        time_text = re.match(_TIME, rest)
        if time_text is None or not _valid_time(time_text.group(0)):
            return None
    return "TIMESTAMPTZ" if zoned else "TIMESTAMP"


def _local_timestamp_formats(text: str, shapes: dict[str, list[str]] | None = None) -> list[str]:
    """Non-ISO timestamps: a candidate date format, a space, ``hh:mm[:ss]``."""
    date_text, sep, time_text = text.rpartition(" ")
    if not sep or not re.fullmatch(r"\d{1,2}:\d{2}(?::\d{2})?", time_text):
        return []
    if not _valid_time(time_text):
        return []
    return [f"{fmt} %H:%M:%S" for fmt in _date_formats(date_text, shapes) if fmt != "%Y-%m-%d"]


# --- the decision --------------------------------------------------------------------


@dataclass
class _Tally:
    """Per-candidate fits of one column's values, and what they say about the type."""

    votes: Counter[str] = field(default_factory=Counter)
    numbers: list[_Number] = field(default_factory=list)
    scales: Counter[int] = field(default_factory=Counter)
    amounts: dict[str, list[_Number]] = field(default_factory=dict)
    percents: list[_Number] = field(default_factory=list)
    dates: Counter[str] = field(default_factory=Counter)
    local_timestamps: Counter[str] = field(default_factory=Counter)
    iso_dates: int = 0
    timestamps: int = 0
    zoned: int = 0
    times: int = 0


def _tally(counts: Mapping[str, int], comma: bool) -> _Tally:
    """Each distinct value's fits, counted as often as the value occurs."""
    tally = _Tally()
    shapes: dict[str, list[str]] = {}
    for value, count in counts.items():
        lower = value.lower()
        if lower in TRUE_TOKENS or lower in FALSE_TOKENS:
            tally.votes["BOOLEAN"] += count
            continue
        if _DIGIT_RE.search(value) is None:  # text, unless a special float
            if lower in _SPECIAL_FLOATS:
                tally.votes["DOUBLE"] += count
            continue
        if value.isascii() and value.isdigit() and (len(value) == 1 or value[0] != "0"):
            number: _Number | None = _Number(False, value, None)  # what _number makes of it
        else:
            number = _number(value, comma)
        if number is not None:
            tally.numbers.extend([number] * count)
            if number.fraction is not None:
                tally.scales[number.scale] += count
            continue
        if _EXP_RE.fullmatch(value) or lower in _SPECIAL_FLOATS:
            tally.votes["DOUBLE"] += count
            continue
        amount = _currency(value, comma)
        if amount is not None:
            tally.amounts.setdefault(amount[0], []).extend([amount[1]] * count)
            continue
        percent = _percent(value, comma)
        if percent is not None:
            tally.percents.extend([percent] * count)
            continue
        iso = _iso_timestamp(value)
        if iso == "TIMESTAMPTZ":
            tally.zoned += count
            continue
        if iso == "TIMESTAMP":
            tally.timestamps += count
        # a date alone that is an ISO timestamp is a valid ISO date (checked just now)
        known = True if iso == "TIMESTAMP" and len(value) <= len("0000-00-00") else None
        for fmt in _date_formats(value, shapes, known):
            tally.dates[fmt] += count
        for fmt in _local_timestamp_formats(value, shapes):
            tally.local_timestamps[fmt] += count
        if _TIME_RE.fullmatch(value) and _valid_time(value):
            tally.times += count
    return tally


def infer_column_type(values: Sequence[str | None]) -> TypeDecision:
    """The type a column's sampled text values hold (VARCHAR when they are text)."""
    tokens: set[str] = set()
    present: Counter[str] = Counter()
    for value, count in Counter(values).items():
        if value is None:
            continue
        text = value.strip()
        if text.lower() in NULL_TOKENS:  # is_null_token
            tokens.add(text)
        else:
            present[text] += count
    nulls = sorted(tokens)
    if not present:
        return TypeDecision("VARCHAR", nulls=tuple(nulls), reason="no non-null values")
    comma = _comma_style(present)
    tally = _tally(present, comma)
    votes, types, formats, currency = _candidates(tally, comma)
    total = sum(present.values())
    chosen = _majority(total, votes)
    ordered = {c: votes[c] for c in CANDIDATES if votes.get(c)}
    if chosen is None:
        best = max(ordered.items(), key=lambda kv: kv[1], default=None)
        why = "values are text"
        if best is not None:
            why = f"only {best[1]} of {total} values fit {best[0]}, too few for a type"
        return TypeDecision("VARCHAR", None, None, tuple(nulls), ordered, 0, why)
    fits = votes[chosen]
    reason = _reason(chosen, types[chosen], formats.get(chosen), currency, fits, total)
    if chosen == "DATE" and _ambiguous_day_month(tally, formats["DATE"]):
        reason += "; day and month are ambiguous in every value: month first (tie rule)"
    return TypeDecision(
        types[chosen],
        formats.get(chosen),
        currency if chosen == CURRENCY else None,
        tuple(nulls),
        ordered,
        total - fits,
        reason,
    )


def _candidates(
    tally: _Tally, comma: bool
) -> tuple[dict[str, int], dict[str, str], dict[str, str | None], str | None]:
    """Votes, SQL type and format per candidate (and the currency, if any)."""
    votes: dict[str, int] = dict(tally.votes)
    types: dict[str, str] = {
        "BOOLEAN": "BOOLEAN",
        "DOUBLE": "DOUBLE",
        "TIMESTAMPTZ": "TIMESTAMPTZ",
        "TIME": "TIME",
    }
    number_format = DECIMAL_COMMA if comma else None
    formats: dict[str, str | None] = {
        "BIGINT": number_format,
        "DECIMAL": number_format,
        "DOUBLE": number_format,
        "TIMESTAMPTZ": ISO,
    }
    numbers = tally.numbers
    integers = [n for n in numbers if n.fraction is None]
    votes["BIGINT"] = len(integers)
    types["BIGINT"] = _integer_type(integers)
    # The largest scale seen: a shorter fraction (1.5 beside 2.50) and an integer fit it
    # exactly, and incremental crawls widen two decimals to the larger scale the same way.
    scale = max(tally.scales, default=0)
    votes["DECIMAL"] = len(integers) + sum(tally.scales.values()) if tally.scales else 0
    types["DECIMAL"] = _decimal_type(numbers, scale)
    votes["DOUBLE"] = votes.get("DOUBLE", 0) + len(numbers)
    currency = None
    if tally.amounts:
        currency, amounts = max(tally.amounts.items(), key=lambda kv: (len(kv[1]), kv[0]))
        votes[CURRENCY] = len(amounts)
        types[CURRENCY] = _decimal_type(amounts, max(a.scale for a in amounts))
        formats[CURRENCY] = f"{CURRENCY} {DECIMAL_COMMA}" if comma else CURRENCY
    if tally.percents:
        votes[PERCENT] = len(tally.percents)
        types[PERCENT] = _decimal_type(tally.percents, max(p.scale for p in tally.percents))
        formats[PERCENT] = f"{PERCENT} {DECIMAL_COMMA}" if comma else PERCENT
    if tally.dates:
        fmt = _best(tally.dates)
        votes["DATE"] = tally.dates[fmt]
        types["DATE"] = "DATE"
        formats["DATE"] = fmt
    local = _best(tally.local_timestamps) if tally.local_timestamps else None
    if tally.timestamps or local:
        types["TIMESTAMP"] = "TIMESTAMP"
        if local and tally.local_timestamps[local] > tally.timestamps:
            date_fmt = local.split(" %H")[0]
            votes["TIMESTAMP"] = tally.local_timestamps[local] + tally.dates.get(date_fmt, 0)
            formats["TIMESTAMP"] = local
        else:
            votes["TIMESTAMP"] = tally.timestamps
            formats["TIMESTAMP"] = ISO
    if tally.zoned:
        votes["TIMESTAMPTZ"] = tally.zoned
    if tally.times:
        votes["TIME"] = tally.times
    return {k: v for k, v in votes.items() if v}, types, formats, currency


def _best(counter: Counter[str]) -> str:
    """The format most values fit; ties go to the earlier candidate (month first)."""
    order = {fmt: i for i, fmt in enumerate(DATE_FORMATS)}

    def rank(item: tuple[str, int]) -> tuple[int, int]:
        fmt, count = item
        return (-count, order.get(fmt.split(" %H")[0], len(order)))

    return min(counter.items(), key=rank)[0]


def _ambiguous_day_month(tally: _Tally, fmt: str | None) -> bool:
    twins = {"%m/%d/%Y": "%d/%m/%Y", "%m-%d-%Y": "%d-%m-%Y", "%m/%d/%y": "%d/%m/%y"}
    return fmt in twins and tally.dates.get(twins[fmt], 0) == tally.dates.get(fmt, 0)


def _majority(total: int, votes: dict[str, int]) -> str | None:
    """The first candidate at most 1 % of the values fail (at least one), 90 % fit."""
    allowed = max(1, int(total * MAJORITY_SHARE))
    for candidate in CANDIDATES:
        fits = votes.get(candidate, 0)
        if fits and total - fits <= allowed and fits >= total * MAJORITY_FLOOR:
            return candidate
    return None


def _reason(
    candidate: str, sql_type: str, fmt: str | None, currency: str | None, fits: int, total: int
) -> str:
    share = "all" if fits == total else f"{fits} of"
    what = {
        "BOOLEAN": "booleans",
        "BIGINT": "whole numbers",
        "DECIMAL": "numbers with a fixed scale",
        "DOUBLE": "numbers",
        CURRENCY: f"amounts in {currency}",
        PERCENT: "percentages (the number as written)",
        "DATE": "dates",
        "TIMESTAMP": "timestamps without a time zone",
        "TIMESTAMPTZ": "timestamps with a time zone",
        "TIME": "times of day",
    }[candidate]
    written = f" written {fmt}" if fmt else ""
    return f"{sql_type}: {share} {total} values are {what}{written}"
