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
* ``DECIMAL(p,s)``: numbers with at most 12 decimals; ``s`` is the largest scale seen
  (``1.5`` beside ``2.50`` is ``DECIMAL(18,2)``: a shorter fraction and an integer fit
  exactly); ``p`` is at least 18 so larger amounts of the same scale still fit, at most
  38.
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

from lakelet.crawler.values.convert import (
    conversion_sql,
    decision_for_column,
    describe,
    failed_sql,
    failure_sql,
    merge_decisions,
    null_token_sql,
)
from lakelet.crawler.values.decision import (
    CURRENCY,
    DECIMAL_COMMA,
    ISO,
    NULL_TOKENS,
    PERCENT,
    TypeDecision,
    is_null_token,
)
from lakelet.crawler.values.infer import infer_column_type

__all__ = [
    "CURRENCY",
    "DECIMAL_COMMA",
    "ISO",
    "NULL_TOKENS",
    "PERCENT",
    "TypeDecision",
    "conversion_sql",
    "decision_for_column",
    "describe",
    "failed_sql",
    "failure_sql",
    "infer_column_type",
    "is_null_token",
    "merge_decisions",
    "null_token_sql",
]
