"""Crawling by content: custom classifiers, logs, Avro, ORC and files without suffixes."""

from __future__ import annotations

import io

import fastavro
import pyarrow as pa
import pyarrow.orc as orc

from lakelet.catalog import TableName
from lakelet.crawler import crawler_spec, run_crawler
from lakelet.jobs import Session, query
from lakelet.jobs.sqltext import TableRef
from lakelet.project import Project

ACCESS_LOG = (
    b'10.0.0.1 - - [27/Nov/2026:10:00:00 +0000] "GET /buy HTTP/1.1" 200 512\n'
    b'10.0.0.2 - ann [27/Nov/2026:10:00:01 +0000] "POST /buy HTTP/1.1" 201 -\n'
    b"this line is not an access log line\n"
    b'10.0.0.3 - - [27/Nov/2026:10:00:02 +0000] "GET /x HTTP/1.1" 404 17\n'
)


def configure(project: Project, text: str) -> Project:
    with (project.root / "lakelet.toml").open("a") as f:
        f.write(text)
    return Project.open(project.root)


def crawl(project: Project, name: str) -> None:
    run_crawler(project, name, crawler_spec(project, name))


def test_grok_classified_logs_are_a_table_with_rejects(tmp_project: Project) -> None:
    project = configure(
        tmp_project,
        '\n[classifiers.apache]\nkind = "grok"\npattern = "%{COMMONAPACHELOG}"\n'
        '[crawlers.web]\npath = "raw/web/"\nclassifiers = ["apache"]\n',
    )
    project.store.put("raw", "web/access/day=1/access.log", ACCESS_LOG)
    crawl(project, "web")
    table = project.catalog.raw_table(TableName("raw", "access"))
    assert table.format == "log" and table.classification == "apache"
    assert table.properties["classifier"] == "custom:apache"
    assert table.properties["certainty"] == 0.75  # 3 of 4 sampled lines match
    rows = query(project, "SELECT clientip, response, bytes FROM raw.access ORDER BY clientip")
    assert rows.to_pylist() == [
        {"clientip": "10.0.0.1", "response": 200, "bytes": 512},
        {"clientip": "10.0.0.2", "response": 201, "bytes": None},
        {"clientip": "10.0.0.3", "response": 404, "bytes": 17},
    ]
    with Session(project) as session:
        session.execute("SELECT count(*) FROM raw.access")
        assert session.count(TableRef("raw", "access")) == 3
        (reject,) = session.rejects()
    assert (reject.line, reject.reason) == (3, "line does not match the log pattern")


def test_avro_and_orc_are_crawled_and_queried(tmp_project: Project) -> None:
    schema = {
        "type": "record",
        "name": "Restock",
        "fields": [{"name": "machine", "type": "string"}, {"name": "units", "type": "int"}],
    }
    for day, units in (("2026-11-26", 5), ("2026-11-27", 7)):
        buffer = io.BytesIO()
        fastavro.writer(buffer, schema, [{"machine": "m1", "units": units}])
        tmp_project.store.put("raw", f"restocks/date={day}/part.avro", buffer.getvalue())
    buffer = io.BytesIO()
    orc.write_table(pa.table({"machine": ["m1", "m2"], "temp_c": [4.5, 5.0]}), buffer)
    tmp_project.store.put("raw", "sensors/readings.orc", buffer.getvalue())
    project = configure(
        tmp_project,
        '\n[crawlers.restocks]\npath = "raw/restocks/"\n'
        '[crawlers.sensors]\npath = "raw/sensors/"\n',
    )
    crawl(project, "restocks")
    crawl(project, "sensors")
    restocks = project.catalog.raw_table(TableName("raw", "restocks"))
    assert restocks.format == "avro"
    assert [(c.name, c.type) for c in restocks.all_columns] == [
        ("machine", "VARCHAR"),
        ("units", "INTEGER"),
        ("date", "DATE"),
    ]
    rows = query(
        project,
        "SELECT r.date, r.units, s.temp_c FROM raw.restocks r "
        "JOIN raw.sensors s USING (machine) ORDER BY r.date",
    )
    assert [(str(r["date"]), r["units"], r["temp_c"]) for r in rows.to_pylist()] == [
        ("2026-11-26", 5, 4.5),
        ("2026-11-27", 7, 4.5),
    ]


def test_files_without_suffix_and_custom_delimited(tmp_project: Project) -> None:
    tmp_project.store.put("raw", "exports/dump.txt", b"id;name\n1;cola\n2;water\n")
    tmp_project.store.put("raw", "exports/blob.bin", bytes(range(256)))
    project = configure(tmp_project, '\n[crawlers.exports]\npath = "raw/exports/"\n')
    crawl(project, "exports")
    table = project.catalog.raw_table(TableName("raw", "exports"))
    assert table.format == "csv" and table.properties["classifier"] == "builtin:csv"
    assert query(project, "SELECT name FROM raw.exports ORDER BY id").to_pylist() == [
        {"name": "cola"},
        {"name": "water"},
    ]
    report = run_crawler(project, "exports", crawler_spec(project, "exports"), full=True)
    (skipped,) = report.skipped
    assert skipped.key == "raw/exports/blob.bin" and "unknown format" in skipped.reason


def test_a_custom_delimited_classifier_sets_delimiter_and_header(tmp_project: Project) -> None:
    # Left to vote, "code|qty" over numbers would be a header; the classifier says none.
    data = b"code|qty\nA1|1\nB2|2\nC3|3\n"
    tmp_project.store.put("raw", "feed/f.txt", data)
    tmp_project.store.put("raw", "auto/f.txt", data)
    project = configure(
        tmp_project,
        '\n[classifiers.pipes]\nkind = "delimited"\ndelimiter = "|"\nheader = "absent"\n'
        '[crawlers.feed]\npath = "raw/feed/"\nclassifiers = ["pipes"]\n'
        '[crawlers.auto]\npath = "raw/auto/"\n',
    )
    crawl(project, "feed")
    crawl(project, "auto")
    table = project.catalog.raw_table(TableName("raw", "feed"))
    assert table.classification == "pipes" and table.dialect["header"] is False
    assert [c.name for c in table.columns] == ["col_0", "col_1"]
    rows = query(project, "SELECT col_0 FROM raw.feed ORDER BY col_0").to_pylist()
    assert [r["col_0"] for r in rows] == ["A1", "B2", "C3", "code"]
    auto = project.catalog.raw_table(TableName("raw", "auto"))
    assert [c.name for c in auto.columns] == ["code", "qty"]


def test_compressed_files_of_every_kind_are_crawled_and_read(tmp_project: Project) -> None:
    import bz2
    import gzip

    import zstandard

    # 40 rows; row 2 (file line 3) has an amount that is not a number.
    lines = [f"{i},{'x' if i == 2 else f'{i}.50'}" for i in range(1, 41)]
    csv_body = ("id,amount\n" + "\n".join(lines) + "\n").encode()
    jsonl = b'{"id": 1, "ok": true}\n{"id": 2, "ok": false}\nnot json\n'
    zstd = zstandard.ZstdCompressor().compress
    store = tmp_project.store
    files = {
        "c/cgz/a.csv.gz": gzip.compress(csv_body),
        "c/cbz/a.csv.bz2": bz2.compress(csv_body),
        "c/czst/a.csv.zst": zstd(csv_body),
        "j/jgz/a.jsonl.gz": gzip.compress(jsonl),
        "j/jbz/a.jsonl.bz2": bz2.compress(jsonl),
        "j/jzst/a.jsonl.zst": zstd(jsonl),
    }
    for key, data in files.items():
        store.put("raw", key, data)
    project = configure(
        tmp_project,
        '\n[crawlers.c]\npath = "raw/c/"\ngrouping = "folder"\n'
        '[crawlers.j]\npath = "raw/j/"\ngrouping = "folder"\n',
    )
    crawl(project, "c")
    crawl(project, "j")
    for key in files:
        name = key.split("/")[1]
        table = project.catalog.raw_table(TableName("raw", name))
        with Session(project) as session:
            if key.startswith("c/"):
                assert table.format == "csv", key
                rows = session.execute(f"SELECT id FROM raw.{name} ORDER BY id").to_pylist()
                assert [r["id"] for r in rows] == [1, *range(3, 41)], key
            else:
                assert table.format == "json", key
                rows = session.execute(f"SELECT id, ok FROM raw.{name} ORDER BY id").to_pylist()
                assert rows == [{"id": 1, "ok": True}, {"id": 2, "ok": False}], key
            (reject,) = session.rejects()
        assert reject.line == 3 and reject.file.endswith(key), (key, reject)


def test_cp1252_text_reads_back_exactly(tmp_project: Project) -> None:
    # "€" is 0x80 in CP1252: Latin-1 would turn it into a control character.
    rows = [f"VM-{i:03d};Caf\u00e9 cr\u00e8me;{i},50 \u20ac" for i in range(30)]
    data = ("machine;product;price\r\n" + "\r\n".join(rows) + "\r\n").encode("cp1252")
    tmp_project.store.put("raw", "win/export.csv", data)
    project = configure(tmp_project, '\n[crawlers.win]\npath = "raw/win/"\n')
    crawl(project, "win")
    table = project.catalog.raw_table(TableName("raw", "win"))
    assert table.dialect["encoding"] == "cp1252"
    assert table.dialect["types"]["price"] == {
        "format": "currency decimal-comma",
        "currency": "\u20ac",
    }
    got = query(project, "SELECT product, price FROM raw.win ORDER BY machine LIMIT 2").to_pylist()
    from decimal import Decimal

    assert got == [
        {"product": "Caf\u00e9 cr\u00e8me", "price": Decimal("0.50")},
        {"product": "Caf\u00e9 cr\u00e8me", "price": Decimal("1.50")},
    ]
