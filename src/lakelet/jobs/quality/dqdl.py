"""A practical subset of Glue's DQDL: one rule per string, parsed into a typed rule.

Supported (Glue's spelling; rule types are case-sensitive, keywords are not)::

    RowCount > 0                         RowCount between 10 and 100
    IsComplete "col"                     Completeness "col" >= 0.95
    IsUnique "col"                       ColumnExists "col"
    ColumnValues "col" in ["a", "b", NULL]      ColumnValues "col" not in ["x"]
    ColumnValues "col" between 0 and 10         ColumnValues "col" > 0
    ColumnValues "col" matches "[A-Z]+-\\d+"    ColumnValues "col" not matches "x.*"
    DataFreshness "col" <= 24 hours      DataFreshness "col" between 2 hours and 5 days
    ReferentialIntegrity "col" "db.table.col" = 1.0
    CustomSql "SELECT count(*) FROM primary WHERE amount < 0" = 0

``between a and b`` is exclusive of both ends, as in Glue. A syntax error names the
rule and the column where it broke, so it can be fixed without guessing.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Literal

from lakelet.catalog.names import TableName
from lakelet.errors import ConfigError, UserError

Value = int | float | str
Operator = Literal["=", "!=", ">", ">=", "<", "<=", "between", "not between"]
RuleScope = Literal["row", "dataset"]

TokenKind = Literal["word", "string", "number", "op", "punct", "end"]
DURATION_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
_OPERATORS: dict[str, Operator] = {
    "=": "=",
    "!=": "!=",
    ">": ">",
    ">=": ">=",
    "<": "<",
    "<=": "<=",
}
_PLAIN_KINDS: dict[str, TokenKind] = {"word": "word", "op": "op", "punct": "punct"}


class DqdlError(ConfigError):
    """A rule does not parse; ``column`` is 1-based within the rule text."""

    def __init__(self, text: str, column: int, problem: str) -> None:
        super().__init__(f"data-quality rule {text!r}: at column {column}: {problem}")
        self.text = text
        self.column = column
        self.problem = problem


# --- conditions ---------------------------------------------------------------------


@dataclass(frozen=True)
class Constraint:
    """A comparison of one value (a count, a ratio, a column value) with literals."""

    op: Operator
    bounds: tuple[Value, ...]

    def holds(self, value: float) -> bool:
        low = self.bounds[0]
        if self.op in ("between", "not between"):
            inside = _num(low) < value < _num(self.bounds[1])
            return inside if self.op == "between" else not inside
        compare: dict[str, Callable[[float, float], bool]] = {
            "=": lambda a, b: a == b,
            "!=": lambda a, b: a != b,
            ">": lambda a, b: a > b,
            ">=": lambda a, b: a >= b,
            "<": lambda a, b: a < b,
            "<=": lambda a, b: a <= b,
        }
        return compare[self.op](value, _num(low))

    def sql(self, expression: str) -> str:
        """The SQL predicate ``expression <op> bounds`` (NULL when the value is NULL)."""
        if self.op in ("between", "not between"):
            low, high = (sql_literal(b) for b in self.bounds)
            inside = f"({expression} > {low} AND {expression} < {high})"
            return inside if self.op == "between" else f"(NOT {inside})"
        op = "<>" if self.op == "!=" else self.op
        return f"({expression} {op} {sql_literal(self.bounds[0])})"

    def __str__(self) -> str:
        if self.op in ("between", "not between"):
            return f"{self.op} {_show(self.bounds[0])} and {_show(self.bounds[1])}"
        return f"{self.op} {_show(self.bounds[0])}"


@dataclass(frozen=True)
class InSet:
    """``in [...]`` / ``not in [...]``; NULL is in the set only when listed."""

    values: tuple[Value | None, ...]
    negated: bool = False

    def __str__(self) -> str:
        items = ", ".join("NULL" if v is None else _show(v) for v in self.values)
        return f"{'not in' if self.negated else 'in'} [{items}]"


@dataclass(frozen=True)
class Matches:
    """``matches "re"``: the whole value must match (Java/Glue ``matches`` semantics)."""

    pattern: str
    negated: bool = False

    def __str__(self) -> str:
        return f"{'not matches' if self.negated else 'matches'} {_show(self.pattern)}"


Condition = Constraint | InSet | Matches


# --- rules --------------------------------------------------------------------------


@dataclass(frozen=True)
class RowCount:
    constraint: Constraint
    scope: ClassVar[RuleScope] = "dataset"


@dataclass(frozen=True)
class IsComplete:
    column: str
    scope: ClassVar[RuleScope] = "row"


@dataclass(frozen=True)
class Completeness:
    column: str
    constraint: Constraint
    scope: ClassVar[RuleScope] = "dataset"


@dataclass(frozen=True)
class IsUnique:
    """A row rule here: every row whose (non-NULL) value occurs more than once fails."""

    column: str
    scope: ClassVar[RuleScope] = "row"


@dataclass(frozen=True)
class ColumnValues:
    column: str
    condition: Condition
    scope: ClassVar[RuleScope] = "row"


@dataclass(frozen=True)
class ColumnExists:
    column: str
    scope: ClassVar[RuleScope] = "dataset"


@dataclass(frozen=True)
class DataFreshness:
    """Every value's age (now − value) must satisfy ``constraint``, in seconds."""

    column: str
    constraint: Constraint
    scope: ClassVar[RuleScope] = "dataset"


@dataclass(frozen=True)
class ReferentialIntegrity:
    """The share of non-NULL ``column`` values found in ``reference.reference_column``."""

    column: str
    reference: TableName
    reference_column: str
    constraint: Constraint
    scope: ClassVar[RuleScope] = "dataset"


@dataclass(frozen=True)
class CustomSql:
    """A query returning one number; ``primary`` names the job's result."""

    sql: str
    constraint: Constraint
    scope: ClassVar[RuleScope] = "dataset"


Rule = (
    RowCount
    | IsComplete
    | Completeness
    | IsUnique
    | ColumnValues
    | ColumnExists
    | DataFreshness
    | ReferentialIntegrity
    | CustomSql
)


# --- tokens -------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    kind: TokenKind
    text: str
    value: Value
    column: int  # 1-based

    def describe(self) -> str:
        return "the end of the rule" if self.kind == "end" else repr(self.text)


_TOKEN_RE = re.compile(
    r"""
    (?P<space>\s+)
    | (?P<string>"(?:[^"\\]|\\.)*")
    | (?P<number>-?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)
    | (?P<op>>=|<=|!=|=|>|<)
    | (?P<punct>[\[\],])
    | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    """,
    re.VERBOSE,
)


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN_RE.match(text, position)
        if match is None:
            if text[position] == '"':
                raise DqdlError(text, position + 1, "unterminated string: add the closing '\"'")
            raise DqdlError(text, position + 1, f"unexpected character {text[position]!r}")
        kind = match.lastgroup or "space"
        raw = match.group()
        column = position + 1
        position = match.end()
        if kind == "space":
            continue
        if kind == "string":
            # Only \" and \\ are escapes, so a regex keeps its \d and \w as written.
            value = re.sub(r'\\(["\\])', r"\1", raw[1:-1])
            tokens.append(Token("string", raw, value, column))
        elif kind == "number":
            number: Value = float(raw) if any(c in raw for c in ".eE") else int(raw)
            tokens.append(Token("number", raw, number, column))
        else:
            tokens.append(Token(_PLAIN_KINDS[kind], raw, raw, column))
    tokens.append(Token("end", "", "", len(text) + 1))
    return tokens


# --- parser -------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.index = 0

    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def fail(self, expected: str, token: Token | None = None) -> DqdlError:
        token = token or self.current
        return DqdlError(self.text, token.column, f"expected {expected}, got {token.describe()}")

    def advance(self) -> Token:
        token = self.current
        if token.kind != "end":
            self.index += 1
        return token

    def at_keyword(self, *words: str) -> bool:
        token = self.current
        return token.kind == "word" and token.text.lower() in words

    def keyword(self, word: str) -> None:
        if not self.at_keyword(word):
            raise self.fail(f"{word!r}")
        self.advance()

    def string(self, what: str) -> str:
        if self.current.kind != "string":
            raise self.fail(f"{what} in double quotes")
        return str(self.advance().value)

    def number(self, what: str = "a number") -> int | float:
        token = self.current
        if token.kind != "number":
            raise self.fail(what)
        self.advance()
        assert isinstance(token.value, int | float)
        return token.value

    def scalar(self) -> Value:
        if self.current.kind in ("number", "string"):
            return self.advance().value
        raise self.fail('a number or a "string"')

    def end(self) -> None:
        if self.current.kind != "end":
            raise DqdlError(
                self.text,
                self.current.column,
                f"unexpected {self.current.describe()} after a complete rule",
            )

    def constraint(self, read: Callable[[], Value]) -> Constraint:
        """``op value`` or ``[not] between value and value``."""
        if self.current.kind == "op":
            op = self.advance().text
            return Constraint(_OPERATORS[op], (read(),))
        negated = False
        if self.at_keyword("not"):
            self.advance()
            negated = True
            if not self.at_keyword("between"):
                raise self.fail("'between' after 'not'")
        if self.at_keyword("between"):
            self.advance()
            low = read()
            self.keyword("and")
            high = read()
            return Constraint("not between" if negated else "between", (low, high))
        raise self.fail("a comparison (=, !=, >, >=, <, <=) or 'between'")

    def duration(self) -> Value:
        amount = self.number("a duration such as 24 hours")
        if not self.at_keyword(*DURATION_UNITS):
            raise self.fail("a time unit: minutes, hours or days")
        unit = self.advance().text.lower().rstrip("s")
        seconds = amount * DURATION_SECONDS[unit]
        return int(seconds) if float(seconds).is_integer() else seconds

    def condition(self) -> Condition:
        """What ``ColumnValues`` accepts: a set, a pattern or a constraint."""
        negated = False
        if self.at_keyword("not"):
            self.advance()
            negated = True
            if not self.at_keyword("in", "matches", "between"):
                raise self.fail("'in', 'matches' or 'between' after 'not'")
            if self.at_keyword("between"):
                self.index -= 1
                return self.constraint(self.scalar)
        if self.at_keyword("in"):
            self.advance()
            return InSet(self.value_list(), negated)
        if self.at_keyword("matches"):
            self.advance()
            pattern_token = self.current
            pattern = self.string("a regular expression")
            try:
                re.compile(pattern)
            except re.error as exc:
                raise DqdlError(
                    self.text, pattern_token.column, f"invalid regular expression: {exc}"
                ) from exc
            return Matches(pattern, negated)
        return self.constraint(self.scalar)

    def value_list(self) -> tuple[Value | None, ...]:
        if not (self.current.kind == "punct" and self.current.text == "["):
            raise self.fail("'[' to open the list of values")
        self.advance()
        values: list[Value | None] = []
        while True:
            if self.at_keyword("null"):
                self.advance()
                values.append(None)
            else:
                values.append(self.scalar())
            token = self.advance()
            if token.kind == "punct" and token.text == "]":
                return tuple(values)
            if not (token.kind == "punct" and token.text == ","):
                raise self.fail("',' or ']'", token)


DURATION_UNITS = ("minute", "minutes", "hour", "hours", "day", "days")


def _rule_row_count(p: _Parser) -> Rule:
    return RowCount(p.constraint(p.number))


def _rule_is_complete(p: _Parser) -> Rule:
    return IsComplete(p.string("a column name"))


def _rule_completeness(p: _Parser) -> Rule:
    return Completeness(p.string("a column name"), p.constraint(p.number))


def _rule_is_unique(p: _Parser) -> Rule:
    return IsUnique(p.string("a column name"))


def _rule_column_values(p: _Parser) -> Rule:
    return ColumnValues(p.string("a column name"), p.condition())


def _rule_column_exists(p: _Parser) -> Rule:
    return ColumnExists(p.string("a column name"))


def _rule_data_freshness(p: _Parser) -> Rule:
    return DataFreshness(p.string("a column name"), p.constraint(p.duration))


def _rule_referential_integrity(p: _Parser) -> Rule:
    column = p.string("a column name")
    token = p.current
    target = p.string('the referenced column as "db.table.column"')
    parts = target.split(".")
    if len(parts) != 3 or not all(parts):
        raise DqdlError(
            p.text, token.column, f'expected "db.table.column" for the reference, got {target!r}'
        )
    try:
        reference = TableName.parse(f"{parts[0]}.{parts[1]}")
    except UserError as exc:
        raise DqdlError(p.text, token.column, str(exc)) from exc
    return ReferentialIntegrity(column, reference, parts[2], p.constraint(p.number))


def _rule_custom_sql(p: _Parser) -> Rule:
    sql = p.string("a SQL query")
    return CustomSql(sql, p.constraint(p.number))


RULE_TYPES: dict[str, Callable[[_Parser], Rule]] = {
    "RowCount": _rule_row_count,
    "IsComplete": _rule_is_complete,
    "Completeness": _rule_completeness,
    "IsUnique": _rule_is_unique,
    "ColumnValues": _rule_column_values,
    "ColumnExists": _rule_column_exists,
    "DataFreshness": _rule_data_freshness,
    "ReferentialIntegrity": _rule_referential_integrity,
    "CustomSql": _rule_custom_sql,
}


def parse_rule(text: str) -> Rule:
    """Parse one DQDL rule; a :class:`DqdlError` names the column where it broke."""
    parser = _Parser(text)
    head = parser.current
    if head.kind != "word":
        raise parser.fail(f"a rule type ({', '.join(RULE_TYPES)})")
    build = RULE_TYPES.get(head.text)
    if build is None:
        close = difflib.get_close_matches(head.text, list(RULE_TYPES), n=1, cutoff=0.6)
        if not close:
            close = [t for t in RULE_TYPES if t.lower() == head.text.lower()]
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise DqdlError(
            text,
            head.column,
            f"unknown rule type {head.text!r}{hint} (supported: {', '.join(RULE_TYPES)})",
        )
    parser.advance()
    rule = build(parser)
    parser.end()
    return rule


# --- literals -----------------------------------------------------------------------


def sql_literal(value: Value) -> str:
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(value)


def _num(value: Value) -> float:
    if isinstance(value, str):
        raise TypeError(f"{value!r} is not a number")
    return float(value)


def _show(value: Value) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)
