"""Dialect detection by consistency: the reading whose rows agree and look like data.

In the spirit of CleverCSV (van den Burg et al., 2019), every plausible dialect parses
a sample and is scored ``pattern × type``:

* **pattern** — rows of one width are what a table is made of: for each distinct row
  width ``L`` seen ``N`` times, ``N·(L−1)/L``, summed and divided by the number of
  distinct widths (one-field rows score nothing; many widths score little);
* **type** — the share of cells that look like values (numbers, dates, times, empty,
  URLs, …; :mod:`lakelet.crawler.messy.cells`) rather than free text, floored so a
  text-only table still ranks by its pattern.

Ties go to the earlier candidate in a fixed order: the common delimiters first, ``"``
before ``'`` before no quote, no escape before backslash, so the result is
deterministic. The candidates are only characters present in the sample.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from lakelet.crawler.messy.cells import is_value
from lakelet.crawler.messy.parse import Dialect, parse

DELIMITERS = (",", ";", "\t", "|", ", ", "; ", " ", ":", "^", "~", "#")
QUOTES = ('"', "'", "")
SAMPLE_RECORDS = 200
TYPE_FLOOR = 0.1


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
    """Pattern and type scores of one dialect over the sample's first records;
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


def detect_dialect(sample: str) -> DialectDecision:
    """The best-scoring dialect for a text sample (a file's head, cut at a line end)."""
    kinds: dict[str, bool] = {}
    ranking = sorted(
        (score(sample, d, kinds) for d in candidates(sample)),
        key=lambda c: -c.score,
    )
    best = ranking[0]
    if best.score <= 0:
        single = Dialect("", '"', "")
        return DialectDecision(single, "no delimiter gives rows of two or more fields", ranking)
    reason = (
        f"best consistency score {best.score:.2f} (pattern {best.pattern:.2f} × "
        f"value-like cells {best.type:.0%}) of {len(ranking)} candidate dialects"
    )
    if len(ranking) > 1:
        second = ranking[1]
        reason += f"; runner-up {second.dialect.describe()} scored {second.score:.2f}"
    return DialectDecision(best.dialect, reason, ranking)
