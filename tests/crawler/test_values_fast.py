"""The shortcuts of type inference decide exactly as the plain rules: dates checked
without strptime, each distinct value looked at once, a spread of the sample in Python."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from lakelet.crawler.schema import FileSchema
from lakelet.crawler.values import infer_column_type
from lakelet.crawler.values.decision import _DATE_SHAPES, DATE_FORMATS
from lakelet.crawler.values.infer import _date_formats

ARABIC_DIGITS = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


def _reference_formats(text: str) -> list[str]:
    """The rule itself: the formats whose shape ``text`` has and in which
    ``datetime.strptime`` reads it."""
    fits = []
    for fmt in DATE_FORMATS:
        if re.fullmatch(_DATE_SHAPES[fmt], text) is None:
            continue
        try:
            datetime.strptime(text, fmt)
        except ValueError:
            continue
        fits.append(fmt)
    return fits


def _dates() -> list[str]:
    years = ["0000", "0001", "1900", "1999", "2000", "2024", "2100", "9999", "26", "00", "99"]
    parts = ["0", "00", "1", "01", "2", "02", "9", "09", "12", "13", "28", "29", "30", "31", "32"]
    texts = []
    for year, a, b in itertools.product(years, parts, parts):
        for sep in "-/.":
            texts += [f"{year}{sep}{a}{sep}{b}", f"{a}{sep}{b}{sep}{year}"]
    texts += [t.translate(ARABIC_DIGITS) for t in texts[::7]]  # digits strptime may refuse
    texts += ["5 Feb 2026", "Feb 30, 2024", "29-Feb-2023", "29-feb-2024", "2026-11-27 "]
    return texts


def test_date_formats_agree_with_strptime() -> None:
    found = 0
    for text in _dates():
        expected = _reference_formats(text)
        assert _date_formats(text) == expected, text
        found += bool(expected)
    assert found > 1_000  # the grid holds many real dates, not just rejects


def test_counting_each_distinct_value_once_keeps_the_votes() -> None:
    values: list[str | None] = ["12", "12", "12", "1.5", "x", None, "N/A", " 12 ", "1.5"]
    decision = infer_column_type(values)
    assert decision.votes == {"BIGINT": 4, "DECIMAL": 6, "DOUBLE": 6}
    assert (decision.sql_type, decision.failures, decision.nulls) == ("VARCHAR", 0, ("N/A",))
    assert infer_column_type([*values, *values]).votes == {"BIGINT": 8, "DECIMAL": 12, "DOUBLE": 12}


@pytest.fixture
def wide_csv(csv_schema: Callable[..., FileSchema]) -> Callable[[int], Any]:
    def infer(rows: int) -> FileSchema:
        lines = ["id,rare,empty"]
        lines += [f"{i},{'7' if i == 5 else ''}," for i in range(rows)]
        return csv_schema("\n".join(lines) + "\n")

    return infer


def test_a_value_between_the_spread_picks_still_counts(wide_csv: Callable[[int], Any]) -> None:
    """Inference reads a spread of 2,000 of the 20,480 sampled values; a column whose
    only value is elsewhere in the sample is text, and only a column with no value at
    all is left untyped (as before the spread stayed in Arrow)."""
    schema = wide_csv(25_000)
    types = {f.name: f.type for f in schema.fields}
    assert types == {"id": "BIGINT", "rare": "VARCHAR", "empty": None}


def test_shortcuts_of_the_tally_give_what_the_patterns_give() -> None:
    from lakelet.crawler.values import infer

    texts = ["0", "7", "12", "007", "2026", "20261127", "1,234", "1.5", "-3", "+4", "٣"]
    texts += ["$5", "5$", "USD 5", "5 EUR", "usd 5", "(5)", "-5.00", "1996-03-13", "x1"]
    for text in texts:
        for comma in (False, True):
            match = infer._CURRENCY_RE.fullmatch(text)
            unit = match is not None and bool(match["pre"] or match["post"])
            if not unit:  # the shortcut may only skip values the pattern gives no unit
                assert infer._currency(text, comma) is None, text
            if text.isascii() and text.isdigit() and (len(text) == 1 or text[0] != "0"):
                assert infer._number(text, comma) == infer._Number(False, text, None), text
    for text in _dates():
        iso = infer._iso_timestamp(text)
        if iso == "TIMESTAMP" and len(text) <= len("0000-00-00"):
            assert infer._date_formats(text, {}, True) == _reference_formats(text), text
