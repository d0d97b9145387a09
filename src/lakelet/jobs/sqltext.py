"""SQL handling for jobs and queries: parameters, one statement, the tables it names.

sqlglot parses the text once, so table references come from the syntax tree (CTE names
and table functions are not tables) rather than from a regular expression.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from lakelet.errors import SqlError

PARAM_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
DIALECT = "duckdb"


@dataclass(frozen=True, order=True)
class TableRef:
    """A table named in a statement: ``db.name``, or ``catalog.db.name``."""

    db: str
    name: str
    catalog: str = ""

    def __str__(self) -> str:
        parts = [p for p in (self.catalog, self.db, self.name) if p]
        return ".".join(parts)


def substitute_params(sql: str, params: Mapping[str, str], *, source: str = "SQL") -> str:
    """Replace ``${key}`` with its value; an unknown key is an error naming it."""

    def value(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in params:
            known = ", ".join(sorted(params)) or "none given"
            raise SqlError(
                f"{source}: parameter ${{{key}}} has no value; pass --param {key}=VALUE "
                f"(parameters given: {known})"
            )
        return params[key]

    return PARAM_RE.sub(value, sql)


def parse_one_statement(sql: str, *, source: str = "SQL") -> exp.Expr:
    """Parse exactly one statement, or raise a :class:`SqlError` saying where it broke."""
    try:
        statements = [s for s in sqlglot.parse(sql, read=DIALECT) if s is not None]
    except ParseError as exc:
        detail = exc.errors[0] if exc.errors else {}
        where = f" at line {detail.get('line')}, column {detail.get('col')}" if detail else ""
        message = str(detail.get("description") or exc).split(" <Token")[0]
        if detail.get("highlight"):
            message += f" (near {detail['highlight']!r})"
        raise SqlError(f"{source}: syntax error{where}: {message}") from exc
    if not statements:
        raise SqlError(f"{source}: no SQL statement found")
    if len(statements) > 1:
        raise SqlError(f"{source}: expected one statement, found {len(statements)}")
    return statements[0]


def table_refs(statement: exp.Expr) -> list[TableRef]:
    """Tables the statement reads, qualified by at least a database, without duplicates.

    Unqualified names are left to the engine: they are CTEs, or names it will report.
    """
    cte_names = {cte.alias_or_name for cte in statement.find_all(exp.CTE)}
    refs: set[TableRef] = set()
    for table in statement.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            continue  # a table function such as read_csv(...)
        if not table.db:
            continue
        if not table.catalog and table.name in cte_names:
            continue
        refs.add(
            TableRef(
                db=_folded(table, "db"), name=_folded(table, "this"), catalog=table.catalog or ""
            )
        )
    return sorted(refs)


def _folded(table: exp.Table, part: str) -> str:
    """SQL folds unquoted names to lower case (``RAW.SALES`` is ``raw.sales``)."""
    identifier = table.args.get(part)
    if isinstance(identifier, exp.Identifier) and not identifier.quoted:
        return str(identifier.name).lower()
    return str(identifier.name if isinstance(identifier, exp.Identifier) else "")


def is_query(statement: exp.Expr) -> bool:
    """True for statements that return rows without changing anything."""
    return isinstance(statement, exp.Query | exp.Describe | exp.Pragma) or (
        isinstance(statement, exp.Command) and str(statement.this).upper() in {"SHOW", "DESCRIBE"}
    )


def copied_input(statement: exp.Expr) -> TableRef | None:
    """The table a ``SELECT * FROM table`` copies whole, as it is (else ``None``): its
    rows can go to the output without passing through a query engine."""
    kept = row_preserving_input(statement)
    if kept is None or statement.args.get("order"):
        return None
    projections = statement.expressions if isinstance(statement, exp.Select) else []
    if len(projections) != 1 or not isinstance(projections[0], exp.Star):
        return None
    return kept


def row_preserving_input(statement: exp.Expr) -> TableRef | None:
    """The one table a query turns row for row into its result, if it does.

    A plain ``SELECT`` of expressions over one table (``SELECT *``, renames, casts,
    ``ORDER BY``) returns each row it reads once: no filter, join, grouping, aggregate,
    ``DISTINCT``, ``LIMIT``, sample, set operation, ``UNNEST`` or subquery. For such a query the
    rows written are the rows taken from that table.
    """
    if not isinstance(statement, exp.Select):
        return None
    changing = ("where", "group", "having", "qualify", "distinct", "limit", "offset", "joins")
    if any(statement.args.get(key) for key in (*changing, "laterals", "with", "with_")):
        return None
    source = statement.args.get("from_") or statement.args.get("from")
    table = source.this if source is not None else None
    if not isinstance(table, exp.Table) or not isinstance(table.this, exp.Identifier):
        return None
    if table.args.get("sample") or statement.args.get("sample"):
        return None
    for projection in statement.expressions:
        for node in projection.walk():
            if isinstance(node, exp.Unnest | exp.Explode | exp.Subquery | exp.Select):
                return None
            if isinstance(node, exp.AggFunc) and not isinstance(node.parent, exp.Window):
                return None
    refs = table_refs(statement)
    return refs[0] if len(refs) == 1 else None
