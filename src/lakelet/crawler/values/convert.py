"""Conversion SQL: DuckDB expressions turning a column's text into its decided type.

A value that does not convert becomes NULL (never an error, never a guess), so a reader
can reject its row: present, not a null token, and converted to NULL.
"""

import re
from collections import Counter
from typing import Any

from lakelet.crawler.values.decision import (
    _ISO_TIMESTAMP,
    _ISO_TIMESTAMPTZ,
    _TIME,
    CURRENCY,
    DECIMAL_COMMA,
    FALSE_TOKENS,
    ISO,
    MAX_PRECISION,
    MIN_PRECISION,
    NULL_TOKENS,
    PERCENT,
    TRUE_TOKENS,
    TypeDecision,
)

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
        if decimal and not comma:  # also any other spelling its type holds exactly
            return (
                f"CASE WHEN regexp_full_match({text}, {_literal(shape)}) "
                f"THEN TRY_CAST({_normalised(text, comma)} AS {sql_type}) "
                f"WHEN regexp_full_match({text}, {_literal(_SPELLED_NUMBER)}) "
                f"AND {_exact_at_scale(text, int(decimal.group(2)))} "
                f"THEN TRY_CAST({text} AS {sql_type}) END"
            )
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


_SPELLED_NUMBER = r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
"""A number as pyarrow and most tools spell it: ``.5``, ``5.``, ``1.500``, ``1e3``."""


def _exact_at_scale(text: str, scale: int) -> str:
    """SQL true when the number ``text`` (of :data:`_SPELLED_NUMBER`'s shape) has no
    nonzero digit beyond ``scale`` decimals: its digits without trailing zeros, less
    the exponent, leave at most ``scale`` of them after the point. ``1.500`` and
    ``1000e-5`` fit DECIMAL(18,2); ``1.234`` and ``1.2345e1`` do not (they would be
    rounded, which a conversion never does)."""
    mantissa = f"regexp_extract({text}, '^[+-]?([0-9]*\\.?[0-9]*)', 1)"
    digits = f"replace({mantissa}, '.', '')"
    fraction = f"length(regexp_extract({mantissa}, '\\.([0-9]*)', 1))"
    exponent = (
        f"CASE WHEN contains(lower({text}), 'e') THEN "
        f"TRY_CAST(regexp_extract({text}, '[eE]([+-]?[0-9]+)$', 1) AS BIGINT) ELSE 0 END"
    )
    zeros = f"(length({digits}) - length(rtrim({digits}, '0')))"
    return f"(rtrim({digits}, '0') = '' OR {fraction} - {exponent} - {zeros} <= {scale})"


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
