"""Value-level type detection: golden decisions, and conversions that never coerce."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

import duckdb
import pytest

from lakelet.crawler.values import (
    TypeDecision,
    conversion_sql,
    decision_for_column,
    describe,
    failure_sql,
    infer_column_type,
    is_null_token,
    merge_decisions,
)

# values → (sql_type, format, currency, failures)
GOLDEN: list[tuple[list[str | None], tuple[str, str | None, str | None, int]]] = [
    (["1", "-2", "+30"], ("BIGINT", None, None, 0)),
    (["0", "1", "1", "0"], ("BIGINT", None, None, 0)),
    (["9223372036854775808", "1"], ("HUGEINT", None, None, 0)),
    (["1.50", "2.25", "3"], ("DECIMAL(18,2)", None, None, 0)),
    (["1.5", "2.25", "3.125"], ("DECIMAL(18,3)", None, None, 0)),
    (["0.1234567890123", "1.5"], ("DOUBLE", None, None, 0)),
    (["1e3", "2.5", "-0.1"], ("DOUBLE", None, None, 0)),
    (["1,234.56", "5.00", "12.10"], ("DECIMAL(18,2)", None, None, 0)),
    (["1.234,56", "5,00", "7"], ("DECIMAL(18,2)", "decimal-comma", None, 0)),
    (["true", "False", "YES", "no", "t", "F", "y", "N"], ("BOOLEAN", None, None, 0)),
    (["2026-11-27", "2026-01-05"], ("DATE", "%Y-%m-%d", None, 0)),
    (["2026/11/27", "2026/1/5"], ("DATE", "%Y/%m/%d", None, 0)),
    (["13/01/2026", "01/02/2026"], ("DATE", "%d/%m/%Y", None, 0)),
    (["01/13/2026", "02/01/2026"], ("DATE", "%m/%d/%Y", None, 0)),
    (["01/02/2026", "03/04/2026"], ("DATE", "%m/%d/%Y", None, 0)),
    (["27.11.2026", "01.02.2026"], ("DATE", "%d.%m.%Y", None, 0)),
    (["27/11/26", "01/02/26"], ("DATE", "%d/%m/%y", None, 0)),
    (["27 Nov 2026", "1 Feb 2026"], ("DATE", "%d %b %Y", None, 0)),
    (
        ["2026-11-27 10:00:00", "2026-11-27T10:00:00.123", "2026-11-28"],
        ("TIMESTAMP", "iso8601", None, 0),
    ),
    (["27/11/2026 10:00:00", "28/11/2026 11:00"], ("TIMESTAMP", "%d/%m/%Y %H:%M:%S", None, 0)),
    (
        ["2026-11-27T10:00:00Z", "2026-11-27 10:00:00+02:00", "2026-11-27T10:00-0530"],
        ("TIMESTAMPTZ", "iso8601", None, 0),
    ),
    (["10:30", "23:59:59", "00:00:00.5"], ("TIME", None, None, 0)),
    (["$74.69", "-$5.00", "($5.00)", "$1,234"], ("DECIMAL(18,2)", "currency", "$", 0)),
    (["€1.234,50", "€5,00", "-€0,99"], ("DECIMAL(18,2)", "currency decimal-comma", "€", 0)),
    (["74.69 USD", "5 USD", "USD 1.5"], ("DECIMAL(18,2)", "currency", "USD", 0)),
    (["12.5%", "3%", "-0.25 %"], ("DECIMAL(18,2)", "percent", None, 0)),
    (["N/A", "NULL", "-", "5", "", None, "na", " none "], ("BIGINT", None, None, 0)),
    (["007", "008", "010"], ("VARCHAR", None, None, 0)),
    (["abc", "12", "2026-11-27"], ("VARCHAR", None, None, 0)),
    (["2026-11-27T10:00:00Z", "2026-11-27 10:00:00"], ("VARCHAR", None, None, 0)),
    ([None, "", "N/A"], ("VARCHAR", None, None, 0)),
    # one stray value in a sample of 100 is tolerated, and counted
    ([*[str(i) for i in range(99)], "1.5"], ("BIGINT", None, None, 1)),
    ([*[str(i) for i in range(98)], "1.5", "x"], ("DECIMAL(18,1)", None, None, 1)),
    ([*[str(i) for i in range(97)], "1.5", "x", "y"], ("VARCHAR", None, None, 0)),
    # in a small sample, one stray value is too many
    (["1", "2", "x"], ("VARCHAR", None, None, 0)),
]


@pytest.mark.parametrize(("values", "expected"), GOLDEN, ids=[str(g[0][:3]) for g in GOLDEN])
def test_golden_decisions(
    values: list[str | None], expected: tuple[str, str | None, str | None, int]
) -> None:
    decision = infer_column_type(values)
    got = (decision.sql_type, decision.format, decision.currency, decision.failures)
    assert got == expected, decision.reason
    assert decision.reason


def test_votes_nulls_and_reason_explain_the_decision() -> None:
    decision = infer_column_type(["1", "2.5", "N/A", "", "-", "3"])
    assert decision.sql_type == "DECIMAL(18,1)"
    assert decision.votes == {"BIGINT": 2, "DECIMAL": 3, "DOUBLE": 3}
    assert decision.nulls == ("", "-", "N/A")
    assert decision.reason == "DECIMAL(18,1): all 3 values are numbers with a fixed scale"


def test_ambiguous_day_month_says_so() -> None:
    ambiguous = infer_column_type(["01/02/2026", "03/04/2026"])
    assert "month first (tie rule)" in ambiguous.reason
    assert "tie rule" not in infer_column_type(["13/01/2026", "01/02/2026"]).reason


def test_failures_are_counted_against_the_chosen_type() -> None:
    values = [f"2026-11-{d:02d}" for d in range(1, 29)] * 4 + ["2026-13-01"]
    decision = infer_column_type(values)
    assert (decision.sql_type, decision.failures) == ("DATE", 1)
    assert decision.votes["DATE"] == 112
    assert "112 of 113" in decision.reason


def test_inference_is_deterministic_whatever_the_order() -> None:
    values = ["01/02/2026", "03/04/2026", "N/A", "05/06/2026", ""]
    first = infer_column_type(values)
    assert infer_column_type(list(reversed(values))) == first
    assert infer_column_type(values) == first


def test_mixed_currencies_keep_the_most_common() -> None:
    values = [f"${i}.00" for i in range(150)] + ["€5.00"]
    decision = infer_column_type(values)
    assert (decision.sql_type, decision.currency, decision.failures) == ("DECIMAL(18,2)", "$", 1)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        *[("", True), ("  ", True), ("NULL", True), ("n/a", True), ("N/A", True), ("-", True)],
        *[(None, True), ("NA", True), ("0", False), ("none of it", False), ("?", False)],
    ],
)
def test_null_tokens(value: str | None, expected: bool) -> None:
    assert is_null_token(value) is expected


def _convert(decision: TypeDecision, values: list[str | None]) -> list[tuple[Any, bool]]:
    con = duckdb.connect()
    con.execute("CREATE TABLE t (i INTEGER, v VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?, ?)", list(enumerate(values)))
    rows = con.execute(
        f"SELECT {conversion_sql(decision, 'v')}, {failure_sql(decision, 'v')} FROM t ORDER BY i"
    ).fetchall()
    return [(value, bool(failed)) for value, failed in rows]


OK, BAD = False, True
CONVERSIONS: list[tuple[TypeDecision, list[str | None], list[tuple[Any, bool]]]] = [
    (
        TypeDecision("BIGINT"),
        ["42", " -7 ", "1.5", "1e3", "N/A", None, "9223372036854775808"],
        [(42, OK), (-7, OK), (None, BAD), (None, BAD), (None, OK), (None, OK), (None, BAD)],
    ),
    (
        TypeDecision("DECIMAL(18,2)"),
        ["1.5", "1.55", "1.555", "-3"],
        [(Decimal("1.50"), OK), (Decimal("1.55"), OK), (None, BAD), (Decimal("-3.00"), OK)],
    ),
    (
        TypeDecision("DOUBLE"),
        ["1e3", ".5", "abc", "-"],
        [(1000.0, OK), (0.5, OK), (None, BAD), (None, OK)],
    ),
    (
        TypeDecision("DECIMAL(18,2)", "decimal-comma"),
        ["1.234,5", "7", "1,234.5"],
        [(Decimal("1234.50"), OK), (Decimal("7.00"), OK), (None, BAD)],
    ),
    (
        TypeDecision("BOOLEAN"),
        ["Yes", "f", "1"],
        [(True, OK), (False, OK), (None, BAD)],
    ),
    (
        TypeDecision("DATE", "%Y-%m-%d"),
        ["2026-11-27", "2026-13-01", "2026-11-27 10:00:00", "2026-02-30"],
        [(date(2026, 11, 27), OK), (None, BAD), (None, BAD), (None, BAD)],
    ),
    (
        TypeDecision("DATE", "%d/%m/%Y"),
        ["27/11/2026", "11/27/2026"],
        [(date(2026, 11, 27), OK), (None, BAD)],
    ),
    (
        TypeDecision("TIMESTAMP", "iso8601"),
        ["2026-11-27T10:00:00.5", "2026-11-27", "2026-11-27T25:61:00", "2026-11-27 10:00+02"],
        [
            (datetime(2026, 11, 27, 10, 0, 0, 500000), OK),
            (datetime(2026, 11, 27), OK),
            (None, BAD),
            (None, BAD),
        ],
    ),
    (
        TypeDecision("TIMESTAMP", "%d/%m/%Y %H:%M:%S"),
        ["27/11/2026 10:00:00", "27/11/2026 10:00", "27/11/2026", "27/11/2026 25:00"],
        [
            (datetime(2026, 11, 27, 10), OK),
            (datetime(2026, 11, 27, 10), OK),
            (datetime(2026, 11, 27), OK),
            (None, BAD),
        ],
    ),
    (
        TypeDecision("TIMESTAMPTZ", "iso8601"),
        ["2026-11-27T10:00:00Z", "2026-11-27 10:00:00+02:00", "2026-11-27 10:00:00"],
        [
            (datetime(2026, 11, 27, 10, tzinfo=UTC), OK),
            (datetime(2026, 11, 27, 8, tzinfo=UTC), OK),
            (None, BAD),
        ],
    ),
    (
        TypeDecision("TIME"),
        ["10:30", "25:00"],
        [(time(10, 30), OK), (None, BAD)],
    ),
    (
        TypeDecision("DECIMAL(18,2)", "currency", "$"),
        ["$74.69", "-$5", "$-5", "($1,234.50)", "74.69", "€5.00", "$1.555", "-$-5"],
        [
            (Decimal("74.69"), OK),
            (Decimal("-5.00"), OK),
            (Decimal("-5.00"), OK),
            (Decimal("-1234.50"), OK),
            (None, BAD),
            (None, BAD),
            (None, BAD),
            (None, BAD),
        ],
    ),
    (
        TypeDecision("DECIMAL(18,2)", "currency decimal-comma", "€"),
        ["€1.234,50", "5,00 €"],
        [(Decimal("1234.50"), OK), (Decimal("5.00"), OK)],
    ),
    (
        TypeDecision("DECIMAL(18,1)", "percent"),
        ["12.5%", "-3 %", "12.55%", "12"],
        [(Decimal("12.5"), OK), (Decimal("-3.0"), OK), (None, BAD), (None, BAD)],
    ),
    (
        TypeDecision("VARCHAR"),
        ["N/A", "x"],
        [("N/A", OK), ("x", OK)],
    ),
]


@pytest.mark.parametrize(
    ("decision", "values", "expected"),
    CONVERSIONS,
    ids=[f"{c[0].sql_type}-{c[0].format}" for c in CONVERSIONS],
)
def test_conversion_never_coerces(
    decision: TypeDecision, values: list[str | None], expected: list[tuple[Any, bool]]
) -> None:
    got = _convert(decision, values)
    if decision.sql_type == "TIMESTAMPTZ":
        got = [(v.astimezone(UTC) if v else v, f) for v, f in got]
    assert got == expected


def test_inferred_decisions_convert_their_own_values() -> None:
    for values, _ in GOLDEN:
        decision = infer_column_type(values)
        failed = sum(f for _, f in _convert(decision, values))
        assert failed == decision.failures, (values, decision)


def test_stored_decision_round_trips() -> None:
    decision = infer_column_type(["€1.234,50", "€5,00", "N/A"])
    stored = decision.to_dict()
    assert stored == {"format": "currency decimal-comma", "currency": "€", "nulls": ["N/A"]}
    rebuilt = decision_for_column(decision.sql_type, stored)
    assert conversion_sql(rebuilt, "v") == conversion_sql(decision, "v")
    assert describe(rebuilt) == "a DECIMAL(18,2) amount in €"


def test_merging_decisions_across_files() -> None:
    cents = infer_column_type(["1.50", "2.25"])
    tenths = infer_column_type(["1.5", "N/A"])
    whole = infer_column_type(["3", "-"])
    merged = merge_decisions(cents, tenths)
    # 17 integer digits (DECIMAL(18,1)) at scale 2
    assert (merged.sql_type, merged.nulls, merged.votes["DECIMAL"]) == (
        "DECIMAL(19,2)",
        ("N/A",),
        3,
    )
    assert merge_decisions(whole, cents).sql_type == "DECIMAL(21,2)"
    assert merge_decisions(whole, infer_column_type(["4"])).sql_type == "BIGINT"
    day_first = infer_column_type(["13/01/2026"])
    month_first = infer_column_type(["01/13/2026"])
    text = merge_decisions(day_first, month_first)
    assert (text.sql_type, text.format) == ("VARCHAR", None)
    assert "%d/%m/%Y vs %m/%d/%Y" in text.reason
    dollars, euros = infer_column_type(["$1.00"]), infer_column_type(["€1.00"])
    assert merge_decisions(dollars, euros).sql_type == "VARCHAR"
    assert merge_decisions(dollars, dollars) == merge_decisions(dollars, dollars)
