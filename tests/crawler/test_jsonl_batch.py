"""Small JSON-lines files inferred together get the schema each gets alone."""

from __future__ import annotations

from pathlib import Path

import duckdb

from lakelet.crawler.jsonl import count_lines, infer_jsonl, infer_jsonl_each
from lakelet.crawler.schema import FileSchema

FILES = {
    "plain": '{"id": 1, "name": "a"}\n{"id": 2, "name": "b"}\n',
    "dates": '{"id": 3, "day": "2026-11-27"}\n{"id": 4, "day": "2026-11-28"}\n',
    "numbers_as_text": '{"code": "007"}\n{"code": "123"}\n',
    "mixed": '{"code": 1}\n{"code": "2"}\n{"code": 3}\n',
    "nested": '{"order": {"id": 1, "items": [{"sku": "x"}]}}\n',
    "blank_and_bad": '{"id": 5}\n\nnot json\n{"id": 6}\n',
    "no_objects": "[1, 2]\n3\n",
    "empty_object": "{}\n",
}


def _alone(con: duckdb.DuckDBPyConnection, url: str) -> FileSchema | str:
    lines, objects = count_lines(con, [url])[url]
    if objects == 0:
        return "no JSON object on its first lines (expected JSON lines: one per line)"
    schema = infer_jsonl(con, [url])
    if not schema.fields:
        return "no JSON object with keys"
    return FileSchema(schema.fields, lines)


def test_each_file_gets_the_schema_it_gets_alone(tmp_path: Path) -> None:
    urls = []
    for name, text in FILES.items():
        path = tmp_path / f"{name}.jsonl"
        path.write_text(text)
        urls.append(str(path))
    con = duckdb.connect()
    together = infer_jsonl_each(con, urls)
    for url in urls:
        assert together[url] == _alone(con, url), url
    # the decisions that differ between files stay per file
    by_name = {Path(u).stem: together[u] for u in urls}
    assert isinstance(by_name["numbers_as_text"], FileSchema)
    assert isinstance(by_name["mixed"], FileSchema)
    assert by_name["numbers_as_text"].fields[0].type == "VARCHAR"  # "007" is a code
    assert by_name["mixed"].fields[0].type == "BIGINT"
    assert isinstance(by_name["dates"], FileSchema)
    assert dict((f.name, f.type) for f in by_name["dates"].fields)["day"] == "DATE"
    assert isinstance(by_name["no_objects"], str)
