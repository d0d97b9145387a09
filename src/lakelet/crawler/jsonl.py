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


def _majority(con: Any, urls: list[str], fields: list[Field]) -> list[Field]:
    """Type mixed keys and date-like strings by the values most lines hold."""
    undecided = [f for f in fields if f.type in ("VARCHAR", MIXED)]
    if not undecided:
        return fields
    measures: list[str] = []
    keys: list[tuple[str, str | None]] = []
    for f in undecided:
        path = sql_literal('$."' + f.name.replace("\\", "\\\\").replace('"', '\\"') + '"')
        raw = f"json_extract(CAST(text AS JSON), {path})"
        value = f"json_extract_string(CAST(text AS JSON), {path})"
        measures.append(f"count(*) FILTER (WHERE {raw} IS NOT NULL AND json_type({raw}) <> 'NULL')")
        keys.append((f.name, None))
        checks = candidate_checks(value, numbers=f.type == MIXED)
        for type_, check in checks.items():
            measures.append(f"count(*) FILTER (WHERE json_type({raw}) <> 'NULL' AND {check})")
            keys.append((f.name, type_))
    row = con.execute(
        f"SELECT {', '.join(measures)} FROM ({_lines(urls)}) WHERE is_object"
    ).fetchone()
    nonnull: dict[str, int] = {}
    castable: dict[str, dict[str, int]] = {f.name: {} for f in undecided}
    for (column, candidate), count in zip(keys, row, strict=True):
        if candidate is None:
            nonnull[column] = int(count)
        else:
            castable[column][candidate] = int(count)
    result = []
    for f in fields:
        if f.name in castable:
            chosen = majority_type(nonnull[f.name], castable[f.name])
            f = Field(f.name, chosen or "VARCHAR")
        result.append(f)
    return result
