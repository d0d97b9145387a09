"""The DQDL subset: rule text → parsed rule (golden), and errors that say where."""

from __future__ import annotations

import pytest

from lakelet.catalog import TableName
from lakelet.config import QualityRule
from lakelet.errors import ConfigError
from lakelet.jobs.quality.dqdl import (
    ColumnExists,
    ColumnValues,
    Completeness,
    Constraint,
    CustomSql,
    DataFreshness,
    DqdlError,
    InSet,
    IsComplete,
    IsUnique,
    Matches,
    ReferentialIntegrity,
    RowCount,
    Rule,
    parse_rule,
)
from lakelet.jobs.quality.rules import job_checks, quote_primary

GOLDEN: list[tuple[str, Rule]] = [
    ("RowCount > 0", RowCount(Constraint(">", (0,)))),
    ("RowCount between 10 and 100", RowCount(Constraint("between", (10, 100)))),
    ("RowCount not between 1 and 2", RowCount(Constraint("not between", (1, 2)))),
    ("RowCount != 3", RowCount(Constraint("!=", (3,)))),
    ('IsComplete "machine_id"', IsComplete("machine_id")),
    ('IsComplete   "sold at"', IsComplete("sold at")),
    ('Completeness "machine_id" >= 0.95', Completeness("machine_id", Constraint(">=", (0.95,)))),
    ('IsUnique "order-id"', IsUnique("order-id")),
    ('ColumnExists "price"', ColumnExists("price")),
    (
        'ColumnValues "machine" in ["m1", "m2", NULL]',
        ColumnValues("machine", InSet(("m1", "m2", None))),
    ),
    ('ColumnValues "units" NOT IN [1, -2.5]', ColumnValues("units", InSet((1, -2.5), True))),
    (
        'ColumnValues "units" between 0 and 10',
        ColumnValues("units", Constraint("between", (0, 10))),
    ),
    ('ColumnValues "units" <= 1e3', ColumnValues("units", Constraint("<=", (1000.0,)))),
    (
        'ColumnValues "day" > "2026-01-01"',
        ColumnValues("day", Constraint(">", ("2026-01-01",))),
    ),
    (
        r'ColumnValues "code" matches "[A-Z]+-\d+"',
        ColumnValues("code", Matches(r"[A-Z]+-\d+")),
    ),
    (
        r'ColumnValues "code" not matches "say \"hi\""',
        ColumnValues("code", Matches('say "hi"', negated=True)),
    ),
    ('DataFreshness "sold_at" <= 24 hours', DataFreshness("sold_at", Constraint("<=", (86400,)))),
    (
        'DataFreshness "sold_at" between 30 minutes and 2 days',
        DataFreshness("sold_at", Constraint("between", (1800, 172800))),
    ),
    ('DataFreshness "d" < 1 day', DataFreshness("d", Constraint("<", (86400,)))),
    (
        'ReferentialIntegrity "machine" "curated.machines.machine_id" = 1.0',
        ReferentialIntegrity(
            "machine", TableName("curated", "machines"), "machine_id", Constraint("=", (1.0,))
        ),
    ),
    (
        'CustomSql "SELECT count(*) FROM primary WHERE units < 0" = 0',
        CustomSql("SELECT count(*) FROM primary WHERE units < 0", Constraint("=", (0,))),
    ),
]


@pytest.mark.parametrize(("text", "expected"), GOLDEN, ids=[g[0] for g in GOLDEN])
def test_golden_rules(text: str, expected: Rule) -> None:
    assert parse_rule(text) == expected


@pytest.mark.parametrize(
    ("text", "column", "message"),
    [
        ("IsComplete machine_id", 12, "expected a column name in double quotes, got 'machine_id'"),
        ('IsComplet "a"', 1, "unknown rule type 'IsComplet'; did you mean 'IsComplete'?"),
        ('isunique "a"', 1, "did you mean 'IsUnique'?"),
        ("RowCount", 9, "expected a comparison (=, !=, >, >=, <, <=) or 'between', got the end"),
        ("RowCount >", 11, "expected a number, got the end of the rule"),
        ('RowCount > "ten"', 12, "expected a number, got '\"ten\"'"),
        ("RowCount between 1", 19, "expected 'and', got the end of the rule"),
        ("RowCount > 0 extra", 14, "unexpected 'extra' after a complete rule"),
        ("RowCount > 0;", 13, "unexpected character ';'"),
        ('ColumnValues "c" in ["a" "b"]', 26, "expected ',' or ']', got '\"b\"'"),
        ('ColumnValues "c" in "a"', 21, "expected '[' to open the list of values"),
        ('ColumnValues "c" not > 1', 22, "expected 'in', 'matches' or 'between' after 'not'"),
        ('ColumnValues "c" matches "(["', 26, "invalid regular expression"),
        ('DataFreshness "d" <= 24 weeks', 25, "expected a time unit: minutes, hours or days"),
        ('DataFreshness "d" <= 24', 24, "expected a time unit"),
        ('ReferentialIntegrity "c" "curated.t" = 1', 26, 'expected "db.table.column"'),
        ('CustomSql "SELECT 1"', 21, "expected a comparison"),
        ('IsComplete "open', 12, "unterminated string"),
        ("", 1, "expected a rule type"),
    ],
)
def test_errors_name_the_rule_and_the_column(text: str, column: int, message: str) -> None:
    with pytest.raises(DqdlError) as info:
        parse_rule(text)
    assert info.value.column == column
    assert message in info.value.problem
    assert f"data-quality rule {text!r}: at column {column}: " in str(info.value)
    assert info.value.exit_code == 2


def test_actions_default_by_scope_and_quarantine_needs_a_row_rule() -> None:
    checks = job_checks(
        "daily",
        [
            QualityRule('IsComplete "a"'),
            QualityRule('IsUnique "a"'),
            QualityRule('ColumnValues "a" > 0'),
            QualityRule("RowCount > 0"),
            QualityRule('ColumnValues "a" > 0', "fail"),
            QualityRule("RowCount > 0", "fail"),
        ],
    )
    assert [c.action for c in checks] == [
        "quarantine",
        "quarantine",
        "quarantine",
        "warn",
        "fail",
        "fail",
    ]
    assert [c.where for c in checks][-1] == "jobs.daily.quality[5]"
    with pytest.raises(ConfigError, match=r"jobs\.daily\.quality\[1\]: .*'quarantine' needs a row"):
        job_checks(
            "daily", [QualityRule("RowCount > 0"), QualityRule("RowCount > 0", "quarantine")]
        )
    with pytest.raises(ConfigError, match=r"jobs\.daily\.quality\[0\]: .*at column 1"):
        job_checks("daily", [QualityRule("Nonsense")])


def test_bare_primary_is_quoted_but_strings_and_quoted_names_are_kept() -> None:
    sql = "SELECT count(*) FROM Primary p WHERE p.x <> 'primary' AND \"primary\".y > 0"
    assert quote_primary(sql) == (
        'SELECT count(*) FROM "primary" p WHERE p.x <> \'primary\' AND "primary".y > 0'
    )
