"""JSON lines scans: lines read as text, so a malformed line or a value of the wrong
type is a reject, not an error."""

from __future__ import annotations

from lakelet.catalog.raw import Column, RawTable
from lakelet.catalog.rawscan.core import (
    INTEGER_TYPES,
    NESTED_TYPE_RE,
    REJECT_COLUMNS,
    RawScan,
    assemble,
    file_columns,
    sql_ident,
    sql_literal,
)


def plan_json(table: RawTable, files: list[str]) -> RawScan:
    checks = [_json_check(c) for c in table.columns]
    good = " AND ".join(["is_object", *(ok for ok, _ in checks)])
    values = ", ".join(_json_value(c) for c in table.columns)
    lines = [_json_lines(url) for url in files]

    parts = [
        f"SELECT {file_columns(table, url, data=values)} FROM ({sql}) WHERE {good}"
        for url, sql in zip(files, lines, strict=True)
    ]
    select = assemble(table, parts)

    reasons = ", ".join(
        [
            "CASE WHEN NOT is_valid THEN 'invalid JSON' END",
            "CASE WHEN is_valid AND NOT is_object THEN 'not a JSON object' END",
            *(f"CASE WHEN is_object AND NOT ({ok}) THEN {why} END" for ok, why in checks),
        ]
    )
    failing = (
        f"WHEN NOT ({ok}) THEN {sql_literal(c.name)}"
        for c, (ok, _) in zip(table.columns, checks, strict=True)
    )
    columns = " ".join(["CASE WHEN NOT is_object THEN NULL", *failing, "END"])
    bad = " UNION ALL ".join(
        f"SELECT file, line, {columns} AS column_name, concat_ws('; ', {reasons}) AS reason, "
        f"text AS raw_row FROM ({sql}) WHERE NOT ({good})"
        for sql in lines
    )
    rejects = f"SELECT {REJECT_COLUMNS} FROM ({bad}) ORDER BY file, line"
    return RawScan(select, rejects, list(files))


def text_lines_sql(url: str) -> str:
    """``file, line, text``: one row per non-blank line of a text file, numbered from 1."""
    return f"""
SELECT file, line, text FROM (
  SELECT filename AS file, unnest(range(1, len(l) + 1)) AS line,
         rtrim(unnest(l), chr(13)) AS text
  FROM (SELECT filename, string_split(content, chr(10)) AS l FROM read_text({sql_literal(url)}))
)
WHERE trim(text) <> ''"""


def _json_lines(url: str) -> str:
    """One row per non-blank line of a file, numbered from 1, parsed when valid JSON."""
    return f"""
SELECT file, line, text, is_valid,
       CASE WHEN is_valid THEN json_type(CAST(text AS JSON)) = 'OBJECT' ELSE false END
         AS is_object,
       CASE WHEN is_valid THEN CAST(text AS JSON) END AS j
FROM (SELECT file, line, text, json_valid(text) AS is_valid FROM ({text_lines_sql(url)}))"""


def _json_path(column: Column) -> str:
    return sql_literal('$."' + column.name.replace("\\", "\\\\").replace('"', '\\"') + '"')


def _json_value(column: Column) -> str:
    """The typed value of a column in ``j``; VARCHAR takes any JSON as its text."""
    path = _json_path(column)
    if column.type == "VARCHAR":
        value = f"json_extract_string(j, {path})"
    elif NESTED_TYPE_RE.search(column.type):
        value = f"TRY_CAST(json_extract(j, {path}) AS {column.type})"
    else:
        value = f"TRY_CAST(json_extract_string(j, {path}) AS {column.type})"
    return f"{value} AS {sql_ident(column.name)}"


def _json_check(column: Column) -> tuple[str, str]:
    """(condition that the column's value fits its type, reason when it does not)."""
    path = _json_path(column)
    raw = f"json_extract(j, {path})"
    text = f"json_extract_string(j, {path})"
    absent = f"({raw} IS NULL OR json_type({raw}) = 'NULL')"
    if column.type == "VARCHAR":
        ok = "true"
    elif NESTED_TYPE_RE.search(column.type):
        ok = f"({absent} OR TRY_CAST({raw} AS {column.type}) IS NOT NULL)"
    elif column.type in INTEGER_TYPES:
        ok = (
            f"({absent} OR (regexp_full_match(trim({text}), '[+-]?[0-9]+') "
            f"AND TRY_CAST({text} AS {column.type}) IS NOT NULL))"
        )
    else:
        ok = f"({absent} OR TRY_CAST({text} AS {column.type}) IS NOT NULL)"
    why = (
        f"'column ' || {sql_literal(sql_ident(column.name))} || ': ' || "
        f"CAST({raw} AS VARCHAR) || ' is not a ' || {sql_literal(column.type)}"
    )
    return ok, why
