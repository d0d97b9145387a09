"""Each rule kind passing and failing on a small result, and which rows are held back."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from lakelet.catalog import TableName
from lakelet.config import QualityRule
from lakelet.errors import ConfigError, SqlError
from lakelet.jobs.quality import RuleResult
from lakelet.jobs.quality.rules import Evaluation, evaluate, job_checks
from lakelet.jobs.session import Session
from lakelet.project import Project

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
RESULT = pa.table(
    {
        "id": [1, 2, 3, 4, 5, 6],
        "machine": ["m1", "m2", "m2", None, "m9", "m1"],
        "units": [1, 5, 0, 3, 12, 2],
        "code": ["A-1", "B-22", "x", "C-3", "A-4", None],
        "sold_at": [NOW - HOUR, NOW - 2 * HOUR, NOW - 30 * HOUR, NOW - HOUR, NOW - 3 * HOUR, None],
    }
)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    from lakelet.project import init_project

    project = init_project(tmp_path_factory.mktemp("quality") / "p")
    machines = pa.table({"machine": ["m1", "m2"], "city": ["Lisbon", "Porto"]})
    project.catalog.write(TableName("curated", "machines"), machines, "overwrite")
    return project


def run_rules(
    project: Project, *rules: str | tuple[str, str], table: pa.Table = RESULT
) -> Evaluation:
    entries = [
        QualityRule(r) if isinstance(r, str) else QualityRule(r[0], r[1])  # type: ignore[arg-type]
        for r in rules
    ]
    with Session(project) as session:
        return evaluate(session, job_checks("t", entries), table, now=NOW)


# rule, passed, failing rows (counted by hand from RESULT)
CASES = [
    ('IsComplete "id"', True, 0),
    ('IsComplete "machine"', False, 1),
    ('IsUnique "id"', True, 0),
    ('IsUnique "machine"', False, 4),  # m1 twice, m2 twice; NULL is not a duplicate
    ('ColumnValues "machine" in ["m1", "m2", "m9", NULL]', True, 0),
    ('ColumnValues "machine" in ["m1", "m2"]', False, 2),  # m9 and NULL
    ('ColumnValues "machine" not in ["m9"]', False, 1),
    ('ColumnValues "units" >= 0', True, 0),
    ('ColumnValues "units" > 0', False, 1),
    ('ColumnValues "units" between 0 and 10', False, 2),  # exclusive: 0 and 12 fail
    ('ColumnValues "units" between -1 and 13', True, 0),
    ('ColumnValues "units" not between 0 and 10', False, 4),
    (r'ColumnValues "code" matches "[A-Z]-\d+"', False, 2),  # "x" and NULL
    ('ColumnValues "code" not matches "A-.*"', False, 3),  # and NULL
    ("RowCount = 6", True, 0),
    ("RowCount between 6 and 10", False, 0),  # exclusive, as in Glue
    ("RowCount between 5 and 7", True, 0),
    ('Completeness "machine" >= 0.8', True, 0),  # 5 of 6
    ('Completeness "machine" >= 0.9', False, 0),
    ('ColumnExists "units"', True, 0),
    ('ColumnExists "price"', False, 0),
    ('DataFreshness "sold_at" <= 2 days', False, 1),  # NULL fails
    ('DataFreshness "sold_at" <= 24 hours', False, 2),  # 30 hours old, and NULL
    ('ReferentialIntegrity "machine" "curated.machines.machine" >= 0.8', True, 1),  # m9
    ('ReferentialIntegrity "machine" "curated.machines.machine" = 1.0', False, 1),
    ('CustomSql "SELECT count(*) FROM primary WHERE units > 4" = 2', True, 0),
    ('CustomSql "select sum(units) from PRIMARY" between 0 and 20', False, 0),  # 23
]


@pytest.mark.parametrize(("rule", "passed", "failing"), CASES, ids=[c[0] for c in CASES])
def test_each_rule_kind(project: Project, rule: str, passed: bool, failing: int) -> None:
    (result,) = run_rules(project, (rule, "warn")).results
    assert (result.passed, result.failing_rows) == (passed, failing), result.detail
    assert result.rule == rule and result.action == "warn"


def test_details_say_what_was_found(project: Project) -> None:
    results = run_rules(
        project,
        ('ColumnValues "units" > 0', "warn"),
        ('Completeness "machine" >= 0.9', "warn"),
        ('IsUnique "machine"', "warn"),
        ('ReferentialIntegrity "machine" "curated.machines.machine" = 1.0', "warn"),
    ).results
    assert results[0].detail == "1 of 6 row(s) failed, e.g. units = 0, expected > 0"
    assert results[1].detail == "completeness 0.8333 (5 of 6 rows not NULL), expected >= 0.9"
    assert results[2].detail == "4 of 6 row(s) failed, e.g. machine = m1 occurs 2 times"
    assert "4 of 5 non-NULL values found in curated.machines.machine" in results[3].detail


def test_quarantine_rules_hold_rows_back_with_every_reason(project: Project) -> None:
    evaluation = run_rules(
        project,
        'IsComplete "code"',
        'ColumnValues "units" between 0 and 10',
        'ColumnValues "machine" in ["m1", "m2"]',
        ('IsUnique "machine"', "warn"),
        ("RowCount > 100", "warn"),
    )
    assert evaluation.passed.column("id").to_pylist() == [1, 2]
    held = evaluation.held.to_pylist()
    assert [h["row_id"] for h in held] == [2, 3, 4, 5]  # 0-based positions of ids 3..6
    assert [json.loads(h["row"])["id"] for h in held] == [3, 4, 5, 6]
    assert held[0]["rule"] == 'ColumnValues "units" between 0 and 10'
    assert held[0]["reason"] == "units = 0, expected between 0 and 10"
    assert held[1]["reason"] == 'machine = NULL, expected in ["m1", "m2"]'
    assert held[2]["rule"] == (
        'ColumnValues "units" between 0 and 10; ColumnValues "machine" in ["m1", "m2"]'
    )
    assert held[2]["reason"] == (
        'units = 12, expected between 0 and 10; machine = m9, expected in ["m1", "m2"]'
    )
    assert held[3]["reason"] == "code is NULL"
    assert [r.passed for r in evaluation.results] == [False, False, False, False, False]


def test_warn_and_fail_rules_hold_nothing_back(project: Project) -> None:
    evaluation = run_rules(
        project, ('IsComplete "machine"', "warn"), ('IsUnique "machine"', "fail")
    )
    assert evaluation.passed.num_rows == RESULT.num_rows
    assert evaluation.held.num_rows == 0
    assert evaluation.results == [
        RuleResult(
            'IsComplete "machine"',
            "warn",
            False,
            1,
            evaluation.results[0].detail,
            "jobs.t.quality[0]",
        ),
        RuleResult(
            'IsUnique "machine"',
            "fail",
            False,
            4,
            evaluation.results[1].detail,
            "jobs.t.quality[1]",
        ),
    ]


def test_an_empty_result_passes_row_rules(project: Project) -> None:
    empty = RESULT.slice(0, 0)
    evaluation = run_rules(project, 'IsComplete "machine"', 'Completeness "machine" = 1.0')
    assert evaluation.results[0].failing_rows == 1  # sanity: the full table fails
    evaluation = run_rules(
        project, 'IsComplete "machine"', ('Completeness "machine" = 1.0', "warn"), table=empty
    )
    assert [r.passed for r in evaluation.results] == [True, True]
    assert evaluation.passed.num_rows == 0


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ('IsComplete "machin"', r"no column 'machin'; did you mean 'machine'\?"),
        ('DataFreshness "code" <= 1 day', "DataFreshness needs a date or timestamp column"),
        ('CustomSql "SELECT id FROM primary" > 0', "must return one number, got 6 row"),
        ('ColumnValues "units" > "abc"', r"jobs\.t\.quality\[0\].*cannot run"),
    ],
)
def test_rules_that_cannot_apply_are_config_errors(
    project: Project, rule: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        run_rules(project, (rule, "warn"))
    assert info.value.exit_code == 2


def test_custom_sql_errors_name_the_rule(project: Project) -> None:
    with pytest.raises(SqlError, match=r"jobs\.t\.quality\[0\] \(CustomSql"):
        run_rules(project, ('CustomSql "SELECT nope FROM primary" = 0', "warn"))
