"""Dialect detection by consistency: the reading whose rows agree and look like data.

In the spirit of CleverCSV (van den Burg et al., 2019), every plausible dialect parses
a sample and is scored ``pattern × type``:

* **pattern** — rows of one width are what a table is made of: for each distinct row
  width ``L`` seen ``N`` times, ``N·(L−1)/L``, summed and divided by the number of
  distinct widths (one-field rows score nothing; many widths score little);
* **type** — the share of the text that sits in cells looking like values (numbers,
  dates, times, timestamps, empty, URLs, …; :mod:`lakelet.crawler.messy.cells`) rather
  than free text, floored so a text-only table still ranks by its pattern. Cells are
  weighted by their length: a wrong delimiter that cuts ``2026-11-27 10:00:00`` into
  ``…10``, ``00``, ``00`` makes two tiny integers out of one long text cell, which a
  share of cells would reward and a share of characters does not.

One correction follows: when every occurrence of the winner's delimiter lies inside
dates, times, timestamps or URLs of another candidate's reading — ``10:30`` read with
``,`` — and that reading is a table too (at least half the winner's pattern score), the
character belongs to the values and the other candidate wins. Without it a headerless
file of times is read with ``:``, whose fragments look like numbers.

Ties go to the earlier candidate in a fixed order: the common delimiters first, ``"``
before ``'`` before no quote, no escape before backslash, so the result is
deterministic. The candidates are only characters present in the sample.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from lakelet.crawler.messy.cells import STRUCTURED, is_value, kind_of
from lakelet.crawler.messy.parse import Dialect, parse

DELIMITERS = (",", ";", "\t", "|", ", ", "; ", " ", ":", "^", "~", "#")
QUOTES = ('"', "'", "")
SAMPLE_RECORDS = 200
TYPE_FLOOR = 0.1
INSIDE_VALUES_PATTERN = 0.5


@dataclass(frozen=True)
class Candidate:
    """One scored dialect."""

    dialect: Dialect
    pattern: float
    type: float

    @property
    def score(self) -> float:
        return self.pattern * max(self.type, TYPE_FLOOR)


@dataclass(frozen=True)
class DialectDecision:
    """The chosen dialect, the runners-up (best first) and why."""

    dialect: Dialect
    reason: str
    ranking: list[Candidate] = field(default_factory=list)


def candidates(sample: str) -> list[Dialect]:
    """Every dialect worth scoring for this sample, in tie-break order.

    A quote character matters for a delimiter only where it can open a field (after
    the delimiter or at a line start); when no quote can, ``"`` stands for them all.
    """
    delimiters = [d for d in DELIMITERS if d in sample]
    if ", " in delimiters and sample.count(",") > 1.2 * sample.count(", "):
        delimiters.remove(", ")  # commas mostly without a space: plain comma
    if "; " in delimiters and sample.count(";") > 1.2 * sample.count("; "):
        delimiters.remove("; ")
    quotes = [q for q in QUOTES if not q or q in sample]
    escapes = [""]
    if "\\" in sample and any(f"\\{q}" in sample for q in quotes if q):
        escapes.append("\\")
    out: list[Dialect] = []
    for d in delimiters:
        relevant = [q for q in quotes if q and q != d and _opens_fields(sample, d, q)]
        for q in relevant or ['"']:
            out.extend(Dialect(d, q, e) for e in escapes if not e or f"{e}{q}" in sample)
        if relevant:
            out.append(Dialect(d, "", ""))
    return out or [Dialect("", '"', "")]


def _opens_fields(sample: str, delimiter: str, quote: str) -> bool:
    return (
        delimiter + quote in sample
        or sample.startswith(quote)
        or "\n" + quote in sample
        or "\r" + quote in sample
    )


def score(sample: str, dialect: Dialect, kinds: dict[str, bool] | None = None) -> Candidate:
    """Pattern and type scores of one dialect over the sample's first records (the
    type score weighs each cell by its length, an empty one as one character);
    ``kinds`` caches :func:`is_value` across the candidates of one sample."""
    records = [r for r in parse(sample, dialect, limit=SAMPLE_RECORDS) if not r.blank]
    if not records:
        return Candidate(dialect, 0.0, 0.0)
    widths = Counter(r.width for r in records)
    pattern = sum(n * (w - 1) / w for w, n in widths.items()) / len(widths)
    known = {} if kinds is None else kinds
    typed = total = 0
    for r in records:
        for v in r.fields:
            value_like = known.get(v)
            if value_like is None:
                value_like = known[v] = is_value(v)
            weight = max(len(v), 1)
            total += weight
            typed += weight if value_like else 0
    return Candidate(dialect, pattern, typed / total)


def detect_dialect(
    sample: str, *, delimiter: str | None = None, quote: str | None = None
) -> DialectDecision:
    """The best-scoring dialect for a text sample (a file's head, cut at a line end).

    ``delimiter`` / ``quote`` (from a custom classifier) limit the candidates.
    """
    kinds: dict[str, bool] = {}
    options = [
        d
        for d in candidates(sample)
        if (delimiter is None or d.delimiter == delimiter) and (quote is None or d.quote == quote)
    ]
    if delimiter is not None and not options:
        options = [Dialect(delimiter, quote if quote is not None else '"', "")]
    ranking = sorted(
        (score(sample, d, kinds) for d in options or candidates(sample)),
        key=lambda c: -c.score,
    )
    best = ranking[0]
    if best.score <= 0:
        single = Dialect("", '"', "")
        return DialectDecision(single, "no delimiter gives rows of two or more fields", ranking)
    holder = _values_holding(sample, best, ranking)
    chosen = best if holder is None else holder
    reason = (
        f"consistency score {chosen.score:.2f} (pattern {chosen.pattern:.2f} × "
        f"text in value-like cells {chosen.type:.0%}) of {len(ranking)} candidate dialects"
    )
    if holder is not None:
        char = best.dialect.describe().split(",")[0].removeprefix("delimiter ")
        reason += (
            f"; delimiter {char} scored {best.score:.2f} but occurs only inside dates, "
            "times or URLs of this reading, so it is part of the values"
        )
        ranking = [holder, *(c for c in ranking if c is not holder)]
        return DialectDecision(holder.dialect, reason, ranking)
    reason = "best " + reason
    if len(ranking) > 1:
        second = ranking[1]
        reason += f"; runner-up {second.dialect.describe()} scored {second.score:.2f}"
    return DialectDecision(best.dialect, reason, ranking)


def _values_holding(sample: str, best: Candidate, ranking: list[Candidate]) -> Candidate | None:
    """The best other candidate, a table too, in whose reading every occurrence of the
    winner's delimiter is inside a structured value (see the module docstring)."""
    char = best.dialect.delimiter
    for other in ranking:
        d = other.dialect.delimiter
        if not d or d == char or char in d or d in char:
            continue
        if other.pattern < INSIDE_VALUES_PATTERN * best.pattern:
            break  # ranked by score, not pattern, but a much less regular table is no rival
        if _only_inside_values(sample, other.dialect, char):
            return other
    return None


def _only_inside_values(sample: str, dialect: Dialect, char: str) -> bool:
    found = False
    for record in parse(sample, dialect, limit=SAMPLE_RECORDS):
        for value in record.fields:
            if char in value:
                if kind_of(value.strip()) not in STRUCTURED:
                    return False
                found = True
    return found
