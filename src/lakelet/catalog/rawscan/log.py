"""Scanning log files: each line parsed by the regular expression its classifier recorded.

The crawler stores the classifier's expression (``dialect["regex"]``, RE2-compatible,
named groups) and its typed fields. A line that does not match, or whose typed field
does not cast, is a reject with its file, line and reason; nothing is dropped.
"""

from __future__ import annotations

from lakelet.catalog.raw import RawTable


def plan_log(table: RawTable, files: list[str]) -> tuple[str, str]:
    """``(select_sql, rejects_sql)`` for a log table over ``files``."""
    from lakelet.catalog.rawscan.core import (
        REJECT_COLUMNS,
        assemble,
        file_columns,
        sql_ident,
        sql_literal,
    )
    from lakelet.catalog.rawscan.json import text_lines_sql

    regex = str(table.dialect.get("regex", ""))
    names = [c.name for c in table.columns]
    pattern = sql_literal(regex)
    groups = "[" + ", ".join(sql_literal(n) for n in names) + "]"
    extracted = f"regexp_extract(text, {pattern}, {groups})"
    checks = []
    values = []
    for column in table.columns:
        field = f"NULLIF(m.{sql_ident(column.name)}, '')"
        if column.type == "VARCHAR":
            values.append(f"{field} AS {sql_ident(column.name)}")
            continue
        values.append(f"TRY_CAST({field} AS {column.type}) AS {sql_ident(column.name)}")
        checks.append(
            (
                f"({field} IS NULL OR TRY_CAST({field} AS {column.type}) IS NOT NULL)",
                f"'field {column.name}: ' || {field} || ' is not a {column.type}'",
                column.name,
            )
        )
    fits = " AND ".join(["matched", *(ok for ok, _, _ in checks)])
    parts = []
    bad = []
    for url in files:
        lines = (
            f"SELECT file, line, text, regexp_full_match(text, {pattern}) AS matched, "
            f"{extracted} AS m FROM ({text_lines_sql(url)})"
        )
        parts.append(
            f"SELECT {file_columns(table, url, data=', '.join(values))} FROM ({lines}) WHERE {fits}"
        )
        failed_column = " ".join(
            [
                "CASE WHEN NOT matched THEN NULL",
                *(f"WHEN NOT ({ok}) THEN {sql_literal(n)}" for ok, _, n in checks),
                "END",
            ]
        )
        reason = " ".join(
            [
                "CASE WHEN NOT matched THEN 'line does not match the log pattern'",
                *(f"WHEN NOT ({ok}) THEN {why}" for ok, why, _ in checks),
                "END",
            ]
        )
        bad.append(
            f"SELECT file, line, {failed_column} AS column_name, {reason} AS reason, "
            f"text AS raw_row FROM ({lines}) WHERE NOT ({fits})"
        )
    rejects = f"SELECT {REJECT_COLUMNS} FROM ({' UNION ALL '.join(bad)}) ORDER BY file, line"
    return assemble(table, parts), rejects
