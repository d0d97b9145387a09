"""JSON lines inference: one object per line; nested objects → STRUCT, arrays → LIST.

Lines are read as text, so a malformed line (or one that is not an object) is counted,
not fatal; the schema is DuckDB's ``json_group_structure`` over the valid objects of the
first ~20k lines of every file. Strings that are dates or timestamps, and top-level
keys whose values mix types, are typed by the majority rule of
:mod:`lakelet.crawler.schema`; numbers inside strings stay strings (``"01234"`` is a
code, not a number).
"""

from __future__ import annotations

import json
from typing import Any

from lakelet.catalog.rawscan import sql_ident, sql_literal
from lakelet.crawler.schema import Field, FileSchema, candidate_checks, majority_type

SAMPLE_LINES = 20480
SCALARS = {
    "UBIGINT": "BIGINT",
    "BIGINT": "BIGINT",
    "DOUBLE": "DOUBLE",
    "BOOLEAN": "BOOLEAN",
    "VARCHAR": "VARCHAR",
}
MIXED = "JSON"


def structure_type(structure: Any) -> str | None:
    """A DuckDB type for a ``json_structure`` node; ``None`` when only nulls were seen."""
    if isinstance(structure, dict):
        if not structure:
            return "VARCHAR"
        members = ", ".join(
            f"{sql_ident(k)} {structure_type(v) or 'VARCHAR'}" for k, v in structure.items()
        )
        return f"STRUCT({members})"
    if isinstance(structure, list):
        inner = structure_type(structure[0]) if structure else None
        return f"{inner or 'VARCHAR'}[]"
    if structure == "NULL":
        return None
    if structure == MIXED:
        return MIXED
    return SCALARS.get(str(structure), "VARCHAR")


def _lines(urls: list[str]) -> str:
    files = "[" + ", ".join(sql_literal(u) for u in urls) + "]"
    return f"""
SELECT filename, text,
       CASE WHEN json_valid(text) THEN json_type(CAST(text AS JSON)) = 'OBJECT' ELSE false END
         AS is_object
FROM (
  SELECT filename, rtrim(unnest(l[1:{SAMPLE_LINES}]), chr(13)) AS text
  FROM (SELECT filename, string_split(content, chr(10)) AS l FROM read_text({files}))
)
WHERE trim(text) <> ''"""


def count_lines(con: Any, urls: list[str]) -> dict[str, tuple[int, int]]:
    """Per file: its data (non-blank) lines, and the JSON objects among the sampled ones."""
    files = "[" + ", ".join(sql_literal(u) for u in urls) + "]"
    totals = con.execute(
        f"SELECT filename, count(*) FROM (SELECT filename, "
        f"unnest(string_split(content, chr(10))) AS t FROM read_text({files})) "
        "WHERE trim(t) <> '' GROUP BY filename"
    ).fetchall()
    objects = dict(
        con.execute(
            f"SELECT filename, count(*) FILTER (WHERE is_object) FROM ({_lines(urls)}) "
            "GROUP BY filename"
        ).fetchall()
    )
    lines = dict(totals)
    return {u: (int(lines.get(u, 0)), int(objects.get(u, 0))) for u in urls}


def infer_jsonl(con: Any, urls: list[str]) -> FileSchema:
    """The schema of the files' objects, merged (rows: their sampled object count)."""
    (structure, objects) = con.execute(
        f"SELECT json_group_structure(CAST(text AS JSON)), count(*) "
        f"FROM ({_lines(urls)}) WHERE is_object"
    ).fetchone()
    nodes = json.loads(structure) if structure is not None else {}
    if not isinstance(nodes, dict):
        return FileSchema([], 0)
    fields = [Field(name, structure_type(node)) for name, node in nodes.items()]
    return FileSchema(_majority(con, urls, fields), int(objects))


def infer_jsonl_each(con: Any, urls: list[str]) -> dict[str, FileSchema | str]:
    """Per file, its schema (rows: its data lines) or why it has none: what
    :func:`count_lines` and :func:`infer_jsonl` give one file at a time, in three
    queries for all the files (a crawl of thousands of small files pays per query)."""
    files = "[" + ", ".join(sql_literal(u) for u in urls) + "]"
    lines = dict(
        con.execute(
            f"SELECT filename, count(*) FROM (SELECT filename, "
            f"unnest(string_split(content, chr(10))) AS t FROM read_text({files})) "
            "WHERE trim(t) <> '' GROUP BY filename"
        ).fetchall()
    )
    structures = con.execute(
        f"SELECT filename, json_group_structure(CAST(text AS JSON)) "
        f"FROM ({_lines(urls)}) WHERE is_object GROUP BY filename"
    ).fetchall()
    fields: dict[str, list[Field]] = {}
    for url, structure in structures:
        nodes = json.loads(structure) if structure is not None else {}
        if isinstance(nodes, dict):
            fields[url] = [Field(name, structure_type(node)) for name, node in nodes.items()]
    # A key mixed in one file and text in another is measured both ways: each file's
    # decision is the one its own values would give alone.
    undecided = {(f.name, f.type): f for found in fields.values() for f in found if _undecided(f)}
    decided: dict[str, dict[tuple[str, str | None], str]] = {}
    if undecided:
        measures, keys = _measures(list(undecided.values()))
        for url, *row in con.execute(
            f"SELECT filename, {', '.join(measures)} FROM ({_lines(urls)}) "
            "WHERE is_object GROUP BY filename"
        ).fetchall():
            decided[url] = _decisions(keys, row)
    found = {str(url) for url, _ in structures}
    result: dict[str, FileSchema | str] = {}
    for url in urls:
        if url not in found:
            result[url] = "no JSON object on its first lines (expected JSON lines: one per line)"
        elif not fields.get(url):
            result[url] = "no JSON object with keys"
        else:
            types = decided.get(url, {})
            schema = [
                Field(f.name, types.get((f.name, f.type), "VARCHAR")) if _undecided(f) else f
                for f in fields[url]
            ]
            result[url] = FileSchema(schema, int(lines.get(url, 0)))
    return result


def _undecided(field: Field) -> bool:
    return field.type in ("VARCHAR", MIXED)


Measured = tuple[str, str | None]
"""A measured key: its name and the type its structure gave (VARCHAR or JSON)."""


def _measures(undecided: list[Field]) -> tuple[list[str], list[tuple[Measured, str | None]]]:
    """Counts that decide mixed keys and date-like strings: per key its non-null values,
    then per candidate type the values that cast."""
    measures: list[str] = []
    keys: list[tuple[Measured, str | None]] = []
    for f in undecided:
        path = sql_literal('$."' + f.name.replace("\\", "\\\\").replace('"', '\\"') + '"')
        raw = f"json_extract(CAST(text AS JSON), {path})"
        value = f"json_extract_string(CAST(text AS JSON), {path})"
        measures.append(f"count(*) FILTER (WHERE {raw} IS NOT NULL AND json_type({raw}) <> 'NULL')")
        keys.append(((f.name, f.type), None))
        checks = candidate_checks(value, numbers=f.type == MIXED)
        for type_, check in checks.items():
            measures.append(f"count(*) FILTER (WHERE json_type({raw}) <> 'NULL' AND {check})")
            keys.append(((f.name, f.type), type_))
    return measures, keys


def _decisions(keys: list[tuple[Measured, str | None]], row: Any) -> dict[Measured, str]:
    """Each measured key's type by the majority rule (VARCHAR when none wins)."""
    nonnull: dict[Measured, int] = {}
    castable: dict[Measured, dict[str, int]] = {}
    for (column, candidate), count in zip(keys, row, strict=True):
        if candidate is None:
            nonnull[column] = int(count)
        else:
            castable.setdefault(column, {})[candidate] = int(count)
    return {
        column: majority_type(total, castable.get(column, {})) or "VARCHAR"
        for column, total in nonnull.items()
    }


def _majority(con: Any, urls: list[str], fields: list[Field]) -> list[Field]:
    """Type mixed keys and date-like strings by the values most lines hold."""
    undecided = [f for f in fields if _undecided(f)]
    if not undecided:
        return fields
    measures, keys = _measures(undecided)
    row = con.execute(
        f"SELECT {', '.join(measures)} FROM ({_lines(urls)}) WHERE is_object"
    ).fetchone()
    types = _decisions(keys, row)
    return [
        Field(f.name, types.get((f.name, f.type), f.type)) if _undecided(f) else f for f in fields
    ]
