"""Evaluate rules on a job's result (or a table's rows), vectorised in DuckDB over Arrow.

A job's rules come from the job (``jobs.NAME.quality``) and from the table it writes
(``tables."db.table".quality``); each check keeps where it was declared, so results
and errors name it. Every rule sees the same rows, so rules do not depend on their
order. A row rule records each failing row with a reason in a temporary table; the rows
failed by ``quarantine`` rules are held back, one quarantine row per held row with all
its rules and reasons. Dataset rules compute one figure and compare it.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal

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
    sql_literal,
)

if TYPE_CHECKING:
    import pyarrow as pa

    from lakelet.config import QualityRule
    from lakelet.jobs.quality import RuleResult
    from lakelet.jobs.session import Session

Action = Literal["warn", "quarantine", "fail"]

PRIMARY = "primary"  # the job's result, as Glue's CustomSql names it
NUMBERED = "lakelet_numbered"  # the result with a row number, for row rules
ROW_ID = "__lakelet_row"
FAILURES = "lakelet_failures"
CHECKS = "lakelet_checks"
ROW_RULES = "IsComplete, IsUnique, ColumnValues"


@dataclass(frozen=True)
class Check:
    """A parsed rule with its resolved action and where it is declared."""

    where: str  # jobs.NAME.quality[i] or tables."db.table".quality[i]
    text: str
    rule: Rule
    action: Action


@dataclass
class Evaluation:
    results: list[RuleResult]
    passed: pa.Table
    held: pa.Table  # row_id, rule, reason, row (the original row as JSON)


def job_checks(job: str, rules: Sequence[QualityRule]) -> list[Check]:
    """Parse a job's ``[[jobs.NAME.quality]]`` entries; bad ones are config errors."""
    return parse_checks(f"jobs.{job}.quality", rules)


def table_checks(table: str, rules: Sequence[QualityRule]) -> list[Check]:
    """Parse a table's ``[[tables."db.table".quality]]`` entries, like a job's."""
    return parse_checks(f"tables.{table_key(table)}.quality", rules)


def table_key(table: str) -> str:
    """How ``lakelet.toml`` spells a table's key: quoted, for the dot in its name."""
    return f'"{table}"'


def parse_checks(prefix: str, rules: Sequence[QualityRule]) -> list[Check]:
    """Parse rule entries declared at ``prefix`` (errors name ``prefix[i]``)."""
    checks = []
    for position, entry in enumerate(rules):
        where = f"{prefix}[{position}]"
        try:
            rule = parse_rule(entry.rule)
        except DqdlError as exc:
            raise ConfigError(f"{where}: {exc}") from exc
        action: Action = entry.action or ("quarantine" if rule.scope == "row" else "warn")
        if action == "quarantine" and rule.scope != "row":
            raise ConfigError(
                f"{where}: rule {entry.rule!r}: action 'quarantine' needs a row rule "
                f"({ROW_RULES}); {type(rule).__name__} checks the whole result, "
                "so use action 'warn' or 'fail'"
            )
        checks.append(Check(where, entry.rule, rule, action))
    return checks


def evaluate(
    session: Session, checks: Sequence[Check], result: pa.Table, *, now: datetime
) -> Evaluation:
    """Run every check on ``result`` in the session's DuckDB connection."""
    import duckdb
    import pyarrow as pa
    import pyarrow.compute as pc

    from lakelet.jobs.quality import RuleResult

    con = session.connection
    row_ids = pa.array(range(result.num_rows), pa.int64())
    numbered = result.append_column(ROW_ID, row_ids)
    con.register(PRIMARY, result)
    con.register(NUMBERED, numbered)
    con.register(
        CHECKS,
        pa.table(
            {
                "check_no": pa.array(range(len(checks)), pa.int32()),
                "rule": [c.text for c in checks],
                "held": [c.action == "quarantine" for c in checks],
            }
        ),
    )
    con.execute(
        f"CREATE TEMP TABLE {FAILURES} (check_no INTEGER, row_id BIGINT, reason VARCHAR)"
    ).fetchall()
    evaluator = _Evaluator(session, result, now)
    results = []
    for number, check in enumerate(checks):
        try:
            passed, failing, detail = evaluator.run(number, check)
        except duckdb.Error as exc:
            first = str(exc).strip().splitlines()[0]
            raise ConfigError(f"{check.where}: rule {check.text!r} cannot run: {first}") from exc
        results.append(
            RuleResult(check.text, check.action, passed, failing, detail, source=check.where)
        )
    held = _held_rows(session, result.column_names)
    kept = pc.invert(pc.is_in(row_ids, value_set=held.column("row_id").combine_chunks()))
    return Evaluation(results=results, passed=result.filter(kept), held=held)


class _Evaluator:
    def __init__(self, session: Session, result: pa.Table, now: datetime) -> None:
        self.session = session
        self.con = session.connection
        self.result = result
        self.rows = result.num_rows
        self.now = now

    def run(self, number: int, check: Check) -> tuple[bool, int, str]:
        rule = check.rule
        if isinstance(rule, IsComplete | IsUnique | ColumnValues):
            return self.row_rule(number, check)
        if isinstance(rule, RowCount):
            return self.compare("row count", self.rows, rule.constraint)
        if isinstance(rule, ColumnExists):
            if rule.column in self.result.column_names:
                return True, 0, f"column {rule.column!r} exists"
            return False, 0, f"no column {rule.column!r} ({_columns(self.result)})"
        if isinstance(rule, Completeness):
            column = self.column(check, rule.column)
            filled, total = self.one(f"SELECT count({column}), count(*) FROM {_q(PRIMARY)}")
            ratio = filled / total if total else 1.0
            note = f" ({filled} of {total} rows not NULL)"
            return self.compare("completeness", ratio, rule.constraint, note)
        if isinstance(rule, DataFreshness):
            return self.freshness(check, rule)
        if isinstance(rule, ReferentialIntegrity):
            return self.referential_integrity(check, rule)
        assert isinstance(rule, CustomSql)
        return self.custom_sql(check, rule)

    # --- row rules ---------------------------------------------------------------

    def row_rule(self, number: int, check: Check) -> tuple[bool, int, str]:
        rule = check.rule
        assert isinstance(rule, IsComplete | IsUnique | ColumnValues)
        column = self.column(check, rule.column)
        shown = f"'{_escape(rule.column)}'"
        value = f"coalesce(CAST({column} AS VARCHAR), 'NULL')"
        filter_clause = "WHERE"
        if isinstance(rule, IsComplete):
            failing = f"{column} IS NULL"
            reason = f"{shown} || ' is NULL'"
        elif isinstance(rule, IsUnique):
            filter_clause = "QUALIFY"
            occurrences = f"count(*) OVER (PARTITION BY {column})"
            failing = f"{column} IS NOT NULL AND {occurrences} > 1"
            reason = f"{shown} || ' = ' || {value} || ' occurs ' || {occurrences} || ' times'"
        else:
            failing = _failing_values(column, rule)
            expected = sql_literal(f", expected {rule.condition}")
            reason = f"{shown} || ' = ' || {value} || {expected}"
        self.con.execute(
            f"INSERT INTO {FAILURES} SELECT {number}, {_q(ROW_ID)}, {reason} "
            f"FROM {NUMBERED} {filter_clause} {failing}"
        ).fetchall()
        count, example = self.one(
            f"SELECT count(*), arg_min(reason, row_id) FROM {FAILURES} WHERE check_no = {number}"
        )
        detail = f"{count} of {self.rows} row(s) failed"
        return count == 0, int(count), f"{detail}, e.g. {example}" if count else detail

    # --- dataset rules -----------------------------------------------------------

    def freshness(self, check: Check, rule: DataFreshness) -> tuple[bool, int, str]:
        import pyarrow as pa

        column = self.column(check, rule.column)
        kind = self.result.schema.field(rule.column).type
        if not (pa.types.is_date(kind) or pa.types.is_timestamp(kind)):
            raise ConfigError(
                f"{check.where}: rule {check.text!r}: column {rule.column!r} is {kind}; "
                "DataFreshness needs a date or timestamp column"
            )
        age = f"({self.now.timestamp()!r} - epoch({column}))"
        stale, newest = self.one(
            f"SELECT count(*) FILTER (WHERE NOT coalesce({rule.constraint.sql(age)}, false)), "
            f"CAST(max({column}) AS VARCHAR) FROM {_q(PRIMARY)}"
        )
        expected = _duration_constraint(rule.constraint)
        detail = f"{stale} of {self.rows} row(s) not of age {expected} (newest {newest})"
        return stale == 0, int(stale), detail

    def referential_integrity(
        self, check: Check, rule: ReferentialIntegrity
    ) -> tuple[bool, int, str]:
        from lakelet.jobs.sqltext import TableRef

        column = self.column(check, rule.column)
        self.session.bind(TableRef(db=rule.reference.database, name=rule.reference.name))
        reference = f"{_q(rule.reference.database)}.{_q(rule.reference.name)}"
        present, found = self.one(
            f"SELECT count({column}), count({column}) FILTER (WHERE {column} IN "
            f"(SELECT {_q(rule.reference_column)} FROM {reference})) FROM {_q(PRIMARY)}"
        )
        ratio = found / present if present else 1.0
        target = f"{rule.reference}.{rule.reference_column}"
        note = f" ({found} of {present} non-NULL values found in {target})"
        passed, _, detail = self.compare("ratio", ratio, rule.constraint, note)
        return passed, int(present - found), detail

    def custom_sql(self, check: Check, rule: CustomSql) -> tuple[bool, int, str]:
        answer = self.session.execute(
            quote_primary(rule.sql), source=f"{check.where} ({check.text})"
        )
        if answer.num_rows != 1 or answer.num_columns != 1:
            raise ConfigError(
                f"{check.where}: rule {check.text!r}: the query must return one number, "
                f"got {answer.num_rows} row(s) of {answer.num_columns} column(s)"
            )
        raw = answer.column(0)[0].as_py()
        try:
            value = float(raw)
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"{check.where}: rule {check.text!r}: the query must return one number, got {raw!r}"
            ) from exc
        return self.compare("query result", value, rule.constraint)

    # --- helpers -----------------------------------------------------------------

    def compare(
        self, what: str, value: float, constraint: Constraint, note: str = ""
    ) -> tuple[bool, int, str]:
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        return constraint.holds(value), 0, f"{what} {shown}{note}, expected {constraint}"

    def column(self, check: Check, name: str) -> str:
        if name not in self.result.column_names:
            close = difflib.get_close_matches(name, self.result.column_names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"{check.where}: rule {check.text!r}: {_subject(check)} has no column "
                f"{name!r}{hint} ({_columns(self.result)})"
            )
        return _q(name)

    def one(self, sql: str) -> tuple[int, ...]:
        (row,) = self.con.execute(sql).fetchall()
        return tuple(row)


def _failing_values(column: str, rule: ColumnValues) -> str:
    """The SQL predicate of rows that fail ``rule``; NULL fails unless a set lists it."""
    condition = rule.condition
    if isinstance(condition, InSet):
        listed = [v for v in condition.values if v is not None]
        member = f"coalesce({column} IN ({', '.join(map(sql_literal, listed))}), false)"
        if not listed:
            member = "false"
        if None in condition.values:
            member = f"({member} OR {column} IS NULL)"
        return member if condition.negated else f"NOT {member}"
    if isinstance(condition, Matches):
        matched = f"regexp_full_match(CAST({column} AS VARCHAR), {sql_literal(condition.pattern)})"
        if condition.negated:
            return f"coalesce({matched}, true)"
        return f"NOT coalesce({matched}, false)"
    return f"NOT coalesce({condition.sql(column)}, false)"


def _held_rows(session: Session, columns: list[str]) -> pa.Table:
    """One row per held-back result row: its rules, its reasons and the row as JSON."""
    fields = ", ".join(f"'{_escape(c)}': n.{_q(c)}" for c in columns)
    row_json = f"to_json({{{fields}}})" if columns else "'{}'"
    return session.connection.sql(
        f"""
        WITH held AS (
            SELECT f.row_id,
                   string_agg(c.rule, '; ' ORDER BY f.check_no) AS rule,
                   string_agg(f.reason, '; ' ORDER BY f.check_no) AS reason
            FROM {FAILURES} f JOIN {CHECKS} c USING (check_no)
            WHERE c.held
            GROUP BY f.row_id
        )
        SELECT h.row_id, h.rule, h.reason, CAST({row_json} AS VARCHAR) AS row
        FROM held h JOIN {NUMBERED} n ON n.{_q(ROW_ID)} = h.row_id
        ORDER BY h.row_id
        """
    ).to_arrow_table()


def quote_primary(sql: str) -> str:
    """Quote the bare word ``primary`` (a reserved word in DuckDB) as an identifier."""
    from sqlglot import TokenType
    from sqlglot.dialects.duckdb import DuckDB

    pieces = []
    last = 0
    for token in DuckDB().tokenize(sql):
        if token.token_type == TokenType.VAR and token.text.lower() == PRIMARY:
            pieces += [sql[last : token.start], _q(PRIMARY)]
            last = token.end + 1
    return "".join(pieces) + sql[last:]


def _duration_constraint(constraint: Constraint) -> str:
    def show(seconds: object) -> str:
        assert isinstance(seconds, int | float)
        for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
            if seconds % size == 0:
                return f"{seconds // size:g} {unit}"
        return f"{seconds:g} seconds"

    if constraint.op in ("between", "not between"):
        low, high = constraint.bounds
        return f"{constraint.op} {show(low)} and {show(high)}"
    return f"{constraint.op} {show(constraint.bounds[0])}"


def _subject(check: Check) -> str:
    return "the job's result" if check.where.startswith("jobs.") else "the table"


def _columns(result: pa.Table) -> str:
    return f"columns: {', '.join(result.column_names) or 'none'}"


def _q(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _escape(text: str) -> str:
    return text.replace("'", "''")
