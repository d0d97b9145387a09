"""The classifier chain: formats, compression, custom classifiers first, certainties."""

from __future__ import annotations

import bz2
import gzip
import io

import pyarrow as pa
import pyarrow.orc as orc
import pyarrow.parquet as pq
import pytest
import zstandard

from lakelet.config import ClassifierSection
from lakelet.crawler.classify import classify, custom_classifier
from lakelet.crawler.grok import compile_grok
from lakelet.errors import ConfigError

CSV = b"id,name,price\n1,cola,1.50\n2,water,0.99\n3,juice,2.10\n"
JSONL = b'{"id": 1, "tags": ["a"]}\n{"id": 2, "tags": []}\n'
APACHE = (
    b'127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /a.gif HTTP/1.0" 200 2326\n'
    b'10.0.0.2 - - [10/Oct/2000:13:55:37 -0700] "POST /buy HTTP/1.1" 201 -\n'
)


def parquet_bytes() -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.table({"a": [1]}), buffer)
    return buffer.getvalue()


def orc_bytes() -> bytes:
    buffer = io.BytesIO()
    orc.write_table(pa.table({"a": [1]}), buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("key", "data", "fmt", "certainty"),
    [
        ("t.parquet", parquet_bytes(), "parquet", 1.0),
        ("t.orc", orc_bytes(), "orc", 1.0),
        ("t.avro", b"Obj\x01\x04\x14avro.codec", "avro", 1.0),
        ("t.jsonl", JSONL, "json", 1.0),
        ("t.json", b'[{"id": 1}, {"id": 2}]', "json", 1.0),
        ("t.csv", CSV, "csv", 0.9),
        ("t.tsv", CSV.replace(b",", b"\t"), "csv", 0.9),
    ],
)
def test_builtin_formats(key: str, data: bytes, fmt: str, certainty: float) -> None:
    result = classify(key, data)
    assert result.winner is not None
    assert (result.winner.format, result.winner.certainty) == (fmt, certainty)


@pytest.mark.parametrize(
    ("key", "compress", "name"),
    [
        ("s.csv.gz", gzip.compress, "gzip"),
        ("s.csv.bz2", bz2.compress, "bz2"),
        ("s.csv.zst", zstandard.ZstdCompressor().compress, "zstd"),
    ],
)
def test_compressed_text_is_looked_through(key: str, compress: object, name: str) -> None:
    result = classify(key, compress(CSV))  # type: ignore[operator]
    assert result.winner is not None
    assert result.winner.format == "csv" and result.winner.compression == name
    assert result.winner.options["delimiter"] == ","


def test_delimiter_and_certainty_follow_the_data() -> None:
    ragged = b"a;b;c\n1;2;3\n4;5\n6;7;8\n"
    winner = classify("r.txt", ragged).winner
    assert winner is not None and winner.options["delimiter"] == ";"
    assert winner.certainty == 0.75


def test_binary_garbage_is_unclassified() -> None:
    result = classify("x.bin", bytes(range(256)) * 4)
    assert result.winner is None


def test_custom_classifiers_run_first_and_are_recorded() -> None:
    pipes = custom_classifier(
        "pipes", ClassifierSection(kind="delimited", delimiter="|", header="absent")
    )
    result = classify("p.txt", b"1|a|x\n2|b|y\n", [pipes])
    assert result.winner is not None
    assert result.winner.classifier == "custom:pipes"
    assert result.winner.classification == "pipes"
    assert result.winner.options == {"delimiter": "|", "header": "absent"}
    assert result.winner.certainty == 1.0


def test_grok_log_classifier() -> None:
    apache = custom_classifier(
        "apache", ClassifierSection(kind="grok", pattern="%{COMMONAPACHELOG}", match="*.log")
    )
    winner = classify("web/access.log", APACHE, [apache]).winner
    assert winner is not None and winner.format == "log" and winner.certainty == 1.0
    assert ["response", "BIGINT"] in winner.options["fields"]
    # Outside its glob the classifier does not apply; the built-ins decide.
    other = classify("web/access.txt", APACHE, [apache]).winner
    assert other is None or other.classifier.startswith("builtin:")


def test_a_partial_match_loses_to_a_better_builtin() -> None:
    levels = custom_classifier(
        "levels", ClassifierSection(kind="regex", pattern=r"(?P<level>INFO|WARN) (?P<msg>.*)")
    )
    result = classify("c.csv", CSV, [levels])
    assert result.winner is not None and result.winner.classifier == "builtin:csv"
    assert result.candidates[0].classifier == "custom:levels"


def test_grok_fields_and_errors() -> None:
    compiled = compile_grok("%{IP:client} %{INT:status:int} %{GREEDYDATA:rest}")
    assert [(f.name, f.type) for f in compiled.fields] == [
        ("client", "VARCHAR"),
        ("status", "BIGINT"),
        ("rest", "VARCHAR"),
    ]
    assert compiled.match("10.1.2.3 404 not found") == {
        "client": "10.1.2.3",
        "status": "404",
        "rest": "not found",
    }
    with pytest.raises(ConfigError, match="unknown pattern %\\{NOPE\\}"):
        compile_grok("%{NOPE:x}")
    with pytest.raises(ConfigError, match="captured twice"):
        compile_grok("%{INT:x} %{INT:x}")
    with pytest.raises(ConfigError, match="nest too deep"):
        compile_grok("%{A}", {"A": "%{B}", "B": "%{A}"})
