"""Value-level type detection: which SQL type a column of text values really holds.

A CSV column arrives as text. :func:`infer_column_type` looks at every sampled value,
counts which candidate types each one fits (its *votes*), and picks the narrowest type
the majority rule of :mod:`lakelet.crawler.schema` accepts: at most 1 % of the non-null
values may fail it (at least one in a small sample), and at least 90 % must fit. The
values that fail are not coerced: :func:`conversion_sql` turns them into NULL so the
reader can reject their rows with a reason. Candidates, narrowest first:

* ``BOOLEAN``: ``true/false``, ``yes/no``, ``t/f``, ``y/n`` (any case); ``0/1`` are
  integers.
* ``BIGINT``: whole numbers (HUGEINT beyond 64 bits, DOUBLE beyond 128). A number with a
  leading zero (``007``) is a code, not a number, and stays text.
* ``DECIMAL(p,s)``: numbers whose fractions share one scale ``s`` (the most common
  one; integers fit too); ``p`` is at least 18 so larger amounts of the same scale
  still fit, at most 38.
* ``DOUBLE``: any other number, with exponents, ``NaN`` and ``Infinity``.
* currency (``$74.69``, ``€1.234,50``, ``74.69 USD``, ``-$5.00``, ``($5.00)``):
  ``DECIMAL(p,s)`` of the amount, ``s`` the largest scale seen, format ``currency`` and
  the symbol or code in ``currency``; an amount in another currency does not fit.
* percentages (``12.5%``): the number as written (``12.5``), ``DECIMAL(p,s)`` like
  currency, format ``percent``.
* ``DATE`` in ISO and common formats; ``dd/mm/yyyy`` against ``mm/dd/yyyy`` is decided
  by the data (a first field above 12 means day first, a second one month first); when
  every value is ambiguous, month first wins (the tie rule, said in the reason). Dots
  (``dd.mm.yyyy``) are always day first.
* ``TIMESTAMP`` (``T`` or space, optional seconds and fraction; date-only values fit
  too) and ``TIMESTAMPTZ`` (every value carries ``Z`` or a ``±hh[:mm]`` offset: a value
  without one is not guessed to be UTC).
* ``TIME`` (``hh:mm[:ss[.f]]``).

Numbers use a dot for decimals and may group thousands with commas (``1,234.56``),
unless the data shows a decimal comma (``1,5`` or ``1.234,56``) and never a decimal dot
(``1,234.56``): format ``decimal-comma``. Ties go to the dot.

Null tokens (:data:`NULL_TOKENS`, any case, surrounding spaces ignored) are NULL in a
typed column; a VARCHAR column keeps them as text (only an empty field is NULL), since
a ``-`` or ``NA`` in free text may mean something. Inference is deterministic: the same
values give the same decision, whatever their order, except that ties between formats
are broken by the fixed candidate order.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lakelet.crawler.schema import MAJORITY_FLOOR, MAJORITY_SHARE

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


# --- numbers -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Number:
    negative: bool
    whole: str
    fraction: str | None  # None: no decimal mark; "" never (``5.`` is not accepted)

    @property
    def scale(self) -> int:
        return len(self.fraction or "")


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


def _comma_style(values: Sequence[str]) -> bool:
    """Whether the data writes decimals with a comma: more values read only that way."""
    only_comma = only_dot = 0
    for value in values:
        text = _strip_decoration(value)
        dot, comma = _number(text, False), _number(text, True)
        only_comma += dot is None and comma is not None
        only_dot += comma is None and dot is not None and dot.fraction is not None
    return only_comma > only_dot


def _strip_decoration(value: str) -> str:
    """The number inside a currency amount or percentage (for the style vote)."""
    text = value.rstrip("%").strip()
    match = _CURRENCY_RE.fullmatch(text)
    return match["num"] if match else text


def _currency(text: str, comma: bool) -> tuple[str, _Number] | None:
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


def _date_formats(text: str) -> list[str]:
    """The candidate date formats a value is a valid date in."""
    fits = []
    for fmt in DATE_FORMATS:
        if re.fullmatch(_DATE_SHAPES[fmt], text):
            try:
                datetime.strptime(text, fmt)
            except ValueError:
                continue
            fits.append(fmt)
    return fits


def _valid_time(text: str) -> bool:
    hours, minutes, *rest = text.split(":")
    seconds = float(rest[0]) if rest else 0.0
    return int(hours) < 24 and int(minutes) < 60 and seconds < 60


def _iso_timestamp(text: str) -> str | None:
    """``TIMESTAMP``/``TIMESTAMPTZ`` for a valid ISO timestamp (or date), else None."""
    zoned = _ISO_TZ_RE.fullmatch(text) is not None
    if not zoned and _ISO_RE.fullmatch(text) is None:
        return None
    date_text = re.split(r"[T ]", text, maxsplit=1)[0]
    try:
        datetime.strptime(date_text, "%Y-%m-%d")
    except ValueError:
        return None
    rest = text[len(date_text) + 1 :]
    if rest:
        time_text = re.match(_TIME, rest)
        if time_text is None or not _valid_time(time_text.group(0)):
            return None
    return "TIMESTAMPTZ" if zoned else "TIMESTAMP"


def _local_timestamp_formats(text: str) -> list[str]:
    """Non-ISO timestamps: a candidate date format, a space, ``hh:mm[:ss]``."""
    date_text, sep, time_text = text.rpartition(" ")
    if not sep or not re.fullmatch(r"\d{1,2}:\d{2}(?::\d{2})?", time_text):
        return []
    if not _valid_time(time_text):
        return []
    return [f"{fmt} %H:%M:%S" for fmt in _date_formats(date_text) if fmt != "%Y-%m-%d"]


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


def _tally(values: Sequence[str], comma: bool) -> _Tally:
    tally = _Tally()
    for value in values:
        lower = value.lower()
        if lower in TRUE_TOKENS or lower in FALSE_TOKENS:
            tally.votes["BOOLEAN"] += 1
            continue
        number = _number(value, comma)
        if number is not None:
            tally.numbers.append(number)
            if number.fraction is not None:
                tally.scales[number.scale] += 1
            continue
        if _EXP_RE.fullmatch(value) or lower in _SPECIAL_FLOATS:
            tally.votes["DOUBLE"] += 1
            continue
        amount = _currency(value, comma)
        if amount is not None:
            tally.amounts.setdefault(amount[0], []).append(amount[1])
            continue
        percent = _percent(value, comma)
        if percent is not None:
            tally.percents.append(percent)
            continue
        iso = _iso_timestamp(value)
        if iso == "TIMESTAMPTZ":
            tally.zoned += 1
            continue
        if iso == "TIMESTAMP":
            tally.timestamps += 1
        for fmt in _date_formats(value):
            tally.dates[fmt] += 1
        for fmt in _local_timestamp_formats(value):
            tally.local_timestamps[fmt] += 1
        if _TIME_RE.fullmatch(value) and _valid_time(value):
            tally.times += 1
    return tally


def infer_column_type(values: Sequence[str | None]) -> TypeDecision:
    """The type a column's sampled text values hold (VARCHAR when they are text)."""
    nulls = sorted({v.strip() for v in values if v is not None and is_null_token(v)})
    present = [v.strip() for v in values if v is not None and not is_null_token(v)]
    if not present:
        return TypeDecision("VARCHAR", nulls=tuple(nulls), reason="no non-null values")
    comma = _comma_style(present)
    tally = _tally(present, comma)
    votes, types, formats, currency = _candidates(tally, comma)
    total = len(present)
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
    # The most common scale (ties: the larger); integers fit any scale.
    scale = max(tally.scales.items(), key=lambda kv: (kv[1], kv[0]), default=(0, 0))[0]
    votes["DECIMAL"] = len(integers) + tally.scales.get(scale, 0) if tally.scales else 0
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


# --- conversion ----------------------------------------------------------------------


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def null_token_sql(column_sql: str) -> str:
    """SQL true when the raw text is NULL or a null token."""
    tokens = ", ".join(_literal(t) for t in NULL_TOKENS)
    return f"({column_sql} IS NULL OR lower(trim({column_sql})) IN ({tokens}))"


def conversion_sql(decision: TypeDecision, column_sql: str) -> str:
    """A DuckDB expression turning a VARCHAR column into the decided type.

    NULL for null tokens, and NULL (never an error, never a rounded or truncated value)
    for a value that does not convert: a caller finds failures as "not a null token and
    converted IS NULL" (:func:`failure_sql`). Values already in DuckDB's own spelling
    (``42``, ``1.50``, ``2026-11-27``) take a fast path of one pattern and one cast.
    """
    sql_type = decision.sql_type.upper()
    if sql_type == "VARCHAR":
        return column_sql
    value = _converted(decision, sql_type, f"trim({column_sql})")
    fast = _fast_shape(decision, sql_type)
    branches = f"WHEN {null_token_sql(column_sql)} THEN NULL ELSE {value}"
    if fast is not None:
        branches = (
            f"WHEN regexp_full_match({column_sql}, {_literal(fast)}) "
            f"THEN TRY_CAST({column_sql} AS {decision.sql_type}) {branches}"
        )
    return f"CAST(CASE {branches} END AS {decision.sql_type})"


def failure_sql(decision: TypeDecision, column_sql: str) -> str:
    """SQL true when a raw value is present but does not convert (its row is rejected)."""
    if decision.sql_type.upper() == "VARCHAR":
        return "false"
    return failed_sql(conversion_sql(decision, column_sql), column_sql)


def failed_sql(converted_sql: str, column_sql: str) -> str:
    """:func:`failure_sql` for a conversion already computed (``converted_sql``)."""
    return (
        f"(CASE WHEN {converted_sql} IS NOT NULL OR {column_sql} IS NULL THEN false "
        f"ELSE NOT {null_token_sql(column_sql)} END)"
    )


def _fast_shape(decision: TypeDecision, sql_type: str) -> str | None:
    """RE2 for values DuckDB's own cast reads exactly (no trim, sign, grouping)."""
    if decision.format and decision.format not in ("%Y-%m-%d", ISO):
        return None
    if sql_type in _INTEGER_TYPES:
        return "-?[0-9]+"
    decimal = _DECIMAL_RE.fullmatch(sql_type)
    if decimal:
        scale = int(decimal.group(2))
        return f"-?[0-9]+(?:\\.[0-9]{{1,{scale}}})?" if scale else "-?[0-9]+"
    if sql_type in ("DOUBLE", "FLOAT", "REAL"):
        return "-?[0-9]+(?:\\.[0-9]+)?"
    if sql_type == "DATE":
        return "[0-9]{4}-[0-9]{2}-[0-9]{2}"
    if sql_type == "TIMESTAMP":
        return "[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}"
    return None


_INTEGER_TYPES = frozenset(
    {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT"}
    | {"UINTEGER", "UBIGINT", "UHUGEINT", "INT", "LONG"}
)
_DECIMAL_RE = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)")


def _number_shape(comma: bool, scale: int | None) -> str:
    """RE2 for a plain number; ``scale`` None allows any fraction, 0 none."""
    group, mark = (r"\.", ",") if comma else (",", r"\.")
    whole = rf"(?:[0-9]{{1,3}}(?:{group}[0-9]{{3}})+|[0-9]+)"
    if scale == 0:
        fraction = ""
    elif scale is None:
        fraction = rf"(?:{mark}[0-9]+)?"
    else:
        fraction = rf"(?:{mark}[0-9]{{1,{scale}}})?"
    return whole + fraction


def _normalised(text: str, comma: bool) -> str:
    """SQL turning a validated number's digits into DuckDB's plain form."""
    if comma:
        return f"replace(replace({text}, '.', ''), ',', '.')"
    return f"replace({text}, ',', '')"


def _converted(decision: TypeDecision, sql_type: str, text: str) -> str:
    fmt = decision.format or ""
    comma = DECIMAL_COMMA in fmt
    decimal = _DECIMAL_RE.fullmatch(sql_type)
    if sql_type in _INTEGER_TYPES or decimal or sql_type in ("DOUBLE", "FLOAT", "REAL"):
        scale: int | None = 0 if sql_type in _INTEGER_TYPES else None
        if decimal:
            scale = int(decimal.group(2))
        number = _number_shape(comma, scale)
        if fmt.startswith(CURRENCY):
            return _currency_sql(decision, sql_type, text, number, comma)
        if fmt.startswith(PERCENT):
            shape = f"[+-]?{number} ?%"
            digits = _normalised(f"rtrim(rtrim({text}, '%'))", comma)
            return (
                f"CASE WHEN regexp_full_match({text}, {_literal(shape)}) "
                f"THEN TRY_CAST({digits} AS {sql_type}) END"
            )
        shape = f"[+-]?{number}"
        if scale is None:  # DOUBLE: exponents and special values too
            plain = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
            special = r"[+-]?(?i:inf|infinity|nan)"
            shape = f"{shape}|{plain}|{special}" if not comma else f"{shape}|{special}"
        return (
            f"CASE WHEN regexp_full_match({text}, {_literal(shape)}) "
            f"THEN TRY_CAST({_normalised(text, comma)} AS {sql_type}) END"
        )
    if sql_type == "BOOLEAN":
        truths = ", ".join(_literal(t) for t in TRUE_TOKENS)
        falses = ", ".join(_literal(t) for t in FALSE_TOKENS)
        return (
            f"CASE WHEN lower({text}) IN ({truths}) THEN true "
            f"WHEN lower({text}) IN ({falses}) THEN false END"
        )
    if sql_type == "DATE":
        return f"CAST(try_strptime({text}, {_literal(fmt or '%Y-%m-%d')}) AS DATE)"
    if sql_type == "TIMESTAMP":
        if not fmt or fmt == ISO:
            return (
                f"CASE WHEN regexp_full_match({text}, {_literal(_ISO_TIMESTAMP)}) "
                f"THEN TRY_CAST({text} AS TIMESTAMP) END"
            )
        formats = [fmt]
        if fmt.endswith(":%S"):
            formats.append(fmt[: -len(":%S")])
        if " %H" in fmt:
            formats.append(fmt.split(" %H")[0])
        listed = ", ".join(_literal(f) for f in formats)
        return f"CAST(try_strptime({text}, [{listed}]) AS TIMESTAMP)"
    if sql_type in ("TIMESTAMPTZ", "TIMESTAMP WITH TIME ZONE"):
        if fmt and fmt != ISO:
            return f"CAST(try_strptime({text}, {_literal(fmt)}) AS TIMESTAMPTZ)"
        return (
            f"CASE WHEN regexp_full_match({text}, {_literal(_ISO_TIMESTAMPTZ)}) "
            f"THEN TRY_CAST({text} AS TIMESTAMPTZ) END"
        )
    if sql_type == "TIME":
        return (
            f"CASE WHEN regexp_full_match({text}, {_literal(_TIME)}) "
            f"THEN TRY_CAST({text} AS TIME) END"
        )
    return f"TRY_CAST({text} AS {decision.sql_type})"


def _currency_sql(
    decision: TypeDecision, sql_type: str, text: str, number: str, comma: bool
) -> str:
    unit = re.escape(decision.currency or "$")
    signed = f"[+-]?{unit} ?{number}|{unit} ?[+-]{number}|[+-]?{number} ?{unit}"
    bracketed = rf"\((?:{unit} ?{number}|{number} ?{unit})\)"
    shape = f"{signed}|{bracketed}"
    digits = _normalised(f"regexp_replace({text}, '[^0-9.,]', '', 'g')", comma)
    negative = f"(starts_with({text}, '(') OR contains({text}, '-'))"
    return (
        f"CASE WHEN regexp_full_match({text}, {_literal(shape)}) THEN "
        f"TRY_CAST(CASE WHEN {negative} THEN '-' ELSE '' END || {digits} AS {sql_type}) END"
    )


def decision_for_column(sql_type: str, stored: dict[str, Any] | None = None) -> TypeDecision:
    """The decision a raw table recorded for a column (``stored``: ``to_dict()``)."""
    stored = stored or {}
    nulls = tuple(str(n) for n in stored.get("nulls", []))
    return TypeDecision(
        sql_type,
        stored.get("format"),
        stored.get("currency"),
        nulls,
        reason="recorded by the crawler",
    )


def describe(decision: TypeDecision) -> str:
    """What a value must be, for a reject's reason: ``a DATE (%d/%m/%Y)``."""
    fmt = decision.format or ""
    if fmt.startswith(CURRENCY):
        return f"a {decision.sql_type} amount in {decision.currency or '$'}"
    if fmt.startswith(PERCENT):
        return f"a {decision.sql_type} percentage"
    if fmt and fmt != ISO:
        return f"a {decision.sql_type} ({fmt})"
    return f"a {decision.sql_type}"


def merge_decisions(a: TypeDecision, b: TypeDecision) -> TypeDecision:
    """One decision for a column decided per file: the narrowest type holding both.

    Decimals of one format widen to the larger precision and scale, integers into such
    decimals; otherwise :func:`lakelet.crawler.schema.widen` decides. Values written
    differently (another date format, currency or decimal mark) cannot share one
    conversion: the column becomes VARCHAR and the reason says why.
    """
    from lakelet.crawler.schema import widen

    votes = Counter(a.votes)
    votes.update(b.votes)
    nulls = tuple(sorted({*a.nulls, *b.nulls}))
    failures = a.failures + b.failures
    if a.sql_type == b.sql_type and (a.format, a.currency) == (b.format, b.currency):
        return TypeDecision(
            a.sql_type, a.format, a.currency, nulls, dict(votes), failures, a.reason
        )
    if (a.format, a.currency) != (b.format, b.currency):
        why = (
            f"files disagree on how values are written ({a.format or a.sql_type} "
            f"vs {b.format or b.sql_type}); kept as text"
        )
        return TypeDecision("VARCHAR", None, None, nulls, dict(votes), 0, why)
    sql_type = _widen_decimal(a.sql_type, b.sql_type) or widen(a.sql_type, b.sql_type)
    why = f"{sql_type}: widened from {a.sql_type} and {b.sql_type} across files"
    fmt = a.format if sql_type != "VARCHAR" else None
    return TypeDecision(sql_type or "VARCHAR", fmt, a.currency, nulls, dict(votes), failures, why)


def _widen_decimal(a: str, b: str) -> str | None:
    """DECIMAL with DECIMAL or an integer: the DECIMAL holding both, if one does."""
    shapes = []
    for t in (a, b):
        match = _DECIMAL_RE.fullmatch(t.upper())
        if match:
            shapes.append((int(match.group(1)), int(match.group(2))))
        elif t.upper() in ("BIGINT", "INTEGER", "SMALLINT", "TINYINT"):
            shapes.append((19, 0))
        else:
            return None
    scale = max(s for _, s in shapes)
    digits = max(p - s for p, s in shapes)
    if digits + scale > MAX_PRECISION:
        return None
    if all(s == 0 for _, s in shapes):
        return None  # two integer types: widen() keeps an integer
    return f"DECIMAL({max(MIN_PRECISION, digits + scale)},{scale})"
