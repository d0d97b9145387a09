"""The classifier chain: which format a file is in, and how sure we are.

As in Glue, custom classifiers (``[classifiers.NAME]``) run first, in the order a crawler
lists them; a classifier that is certain (1.0) wins at once, otherwise the highest
certainty of all classifiers wins, custom before built-in on a tie. Built-ins recognise
Parquet, ORC and Avro by their magic bytes, JSON / JSON lines and delimited text by
reading a sample; gzip, bz2 and zstd are looked through. The winner, its certainty and
the runner-up's are recorded on the table so a decision can be explained.
"""

from __future__ import annotations

import bz2
import csv
import fnmatch
import io
import json
import zlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from lakelet.config import ClassifierSection
from lakelet.crawler.grok import CompiledGrok, compile_grok, compile_regex
from lakelet.crawler.schema import FileSchema

SAMPLE_LINES = 200
DELIMITERS = (",", ";", "\t", "|", ":")
MAGIC = {b"PAR1": "parquet", b"ORC": "orc", b"Obj\x01": "avro"}
COMPRESSION_MAGIC = {b"\x1f\x8b": "gzip", b"BZh": "bz2", b"\x28\xb5\x2f\xfd": "zstd"}
COMPRESSION_SUFFIXES = {".gz": "gzip", ".gzip": "gzip", ".bz2": "bz2", ".zst": "zstd"}


@dataclass(frozen=True)
class Classification:
    """What a classifier says of one file."""

    format: str  # csv | json | jsonl | parquet | orc | avro | log
    classification: str  # the name recorded on the table ("csv", or a custom name)
    certainty: float  # 0.0 … 1.0
    classifier: str  # "builtin:csv", "custom:apache", …
    compression: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    reason: str = ""


@dataclass(frozen=True)
class ChainResult:
    """The winner and every classifier's answer, for the record and for --explain."""

    winner: Classification | None
    candidates: list[Classification]

    def to_dict(self) -> dict[str, Any]:
        return {
            "winner": None if self.winner is None else _summary(self.winner),
            "candidates": [_summary(c) for c in self.candidates],
        }


class Classifier(Protocol):
    name: str

    def classify(self, key: str, sample: bytes, text: str | None) -> Classification | None:
        """Say what the file is, or ``None`` when the classifier does not apply at all."""


# --- sample handling ------------------------------------------------------------------


def compression_of(key: str, head: bytes) -> str | None:
    for magic, name in COMPRESSION_MAGIC.items():
        if head.startswith(magic):
            return name
    lower = key.lower()
    return next((n for s, n in COMPRESSION_SUFFIXES.items() if lower.endswith(s)), None)


def decompress_head(head: bytes, compression: str | None, limit: int = 1 << 20) -> bytes:
    """Decompress as much of a compressed head as it holds (a truncated stream is fine).

    A head that does not start with the compression's magic bytes is returned as it is:
    it was decompressed already (the crawler's probe does so).
    """
    magic = next((m for m, name in COMPRESSION_MAGIC.items() if name == compression), None)
    if compression is None or magic is None or not head.startswith(magic):
        return head
    try:
        if compression == "gzip":
            return zlib.decompressobj(wbits=47).decompress(head, limit)
        if compression == "bz2":
            return bz2.BZ2Decompressor().decompress(head, limit)
        if compression == "zstd":
            import zstandard

            try:
                return zstandard.ZstdDecompressor().decompressobj().decompress(head)[:limit]
            except zstandard.ZstdError:
                return b""
    except (OSError, EOFError, zlib.error, ValueError):
        return b""
    return head


def decode_sample(sample: bytes) -> str | None:
    """Text of a sample, or ``None`` when it looks binary."""
    if sample.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return sample.decode("utf-16", errors="replace")
        except UnicodeDecodeError:
            return None
    if b"\x00" in sample[:4096]:
        return None
    try:
        return sample.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if exc.start >= len(sample) - 4:  # a character cut by the sample's end
            return sample[: exc.start].decode("utf-8-sig")
        return sample.decode("cp1252", errors="replace")


def _lines(text: str) -> list[str]:
    lines = text.splitlines()
    if text and not text.endswith(("\n", "\r")) and len(lines) > 1:
        lines = lines[:-1]  # the sample may cut the last line
    return [line for line in lines[:SAMPLE_LINES] if line.strip()]


# --- built-in classifiers ----------------------------------------------------------------


class MagicClassifier:
    """Parquet, ORC and Avro start with magic bytes: certain or not at all."""

    name = "builtin:binary"

    def classify(self, key: str, sample: bytes, text: str | None) -> Classification | None:
        for magic, fmt in MAGIC.items():
            if sample.startswith(magic):
                return Classification(fmt, fmt, 1.0, f"builtin:{fmt}", reason="magic bytes")
        return None


class JsonClassifier:
    """JSON lines (one object per line) or one JSON document."""

    name = "builtin:json"

    def classify(self, key: str, sample: bytes, text: str | None) -> Classification | None:
        if text is None:
            return None
        stripped = text.lstrip()
        if not stripped.startswith(("{", "[")):
            return None
        lines = _lines(text)
        parsed = sum(1 for line in lines if _is_json_object(line))
        if lines and parsed == len(lines):
            return Classification("json", "json", 1.0, self.name, reason="every line a JSON object")
        if stripped.startswith("[") or (len(lines) > 1 and parsed == 0):
            try:
                json.loads(text)
                return Classification(
                    "json",
                    "json",
                    1.0,
                    self.name,
                    options={"document": True},
                    reason="one JSON document",
                )
            except ValueError:
                if stripped.startswith("["):
                    return Classification(
                        "json",
                        "json",
                        0.5,
                        self.name,
                        options={"document": True},
                        reason="starts like a JSON array (sample cut or invalid)",
                    )
        certainty = parsed / len(lines) if lines else 0.0
        return Classification(
            "json",
            "json",
            round(certainty, 3),
            self.name,
            reason=f"{parsed} of {len(lines)} sampled lines are JSON objects",
        )


def _is_json_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


class DelimitedClassifier:
    """Delimited text: certainty is how consistently lines split into the same width."""

    name = "builtin:csv"

    def __init__(
        self,
        *,
        name: str = "builtin:csv",
        classification: str = "csv",
        delimiter: str | None = None,
        quote: str | None = None,
        escape: str | None = None,
        header: str = "auto",
    ) -> None:
        self.name = name
        self._classification = classification
        self._delimiter = delimiter
        self._quote = quote
        self._escape = escape
        self._header = header

    def classify(self, key: str, sample: bytes, text: str | None) -> Classification | None:
        if text is None:
            return None
        lines = _lines(text)
        if not lines:
            return None
        candidates = [self._delimiter] if self._delimiter else list(DELIMITERS)
        best: tuple[float, str, int] | None = None
        for delimiter in candidates:
            widths = [
                len(row)
                for row in csv.reader(
                    io.StringIO("\n".join(lines)), delimiter=delimiter, quotechar=self._quote or '"'
                )
            ]
            width, count = Counter(widths).most_common(1)[0]
            if width < 2:
                continue
            score = count / len(widths)
            if best is None or score > best[0]:
                best = (score, delimiter, width)
        if best is None:
            return Classification(
                "csv",
                self._classification,
                0.1,
                self.name,
                reason="no delimiter splits the lines into two or more fields",
            )
        score, delimiter, width = best
        # Delimited text is the fallback format: never fully certain unless configured.
        certainty = score if self._delimiter else min(score, 0.9)
        options: dict[str, Any] = {"delimiter": delimiter, "header": self._header}
        if self._quote:
            options["quote"] = self._quote
        if self._escape:
            options["escape"] = self._escape
        return Classification(
            "csv",
            self._classification,
            round(certainty, 3),
            self.name,
            options=options,
            reason=f"{score:.0%} of sampled lines split into {width} fields on {delimiter!r}",
        )


class LineClassifier:
    """Logs: every line must match a regular expression or grok pattern."""

    def __init__(self, name: str, classification: str, compiled: CompiledGrok) -> None:
        self.name = name
        self._classification = classification
        self._compiled = compiled

    def classify(self, key: str, sample: bytes, text: str | None) -> Classification | None:
        if text is None:
            return None
        lines = _lines(text)
        if not lines:
            return None
        matched = sum(1 for line in lines if self._compiled.match(line) is not None)
        return Classification(
            "log",
            self._classification,
            round(matched / len(lines), 3),
            self.name,
            options={
                "regex": self._compiled.regex,
                "fields": [[f.name, f.type] for f in self._compiled.fields],
            },
            reason=f"{matched} of {len(lines)} sampled lines match",
        )


class _Scoped:
    """Applies a custom classifier only to keys matching its glob."""

    def __init__(self, inner: Classifier, pattern: str) -> None:
        self.name = inner.name
        self._inner = inner
        self._pattern = pattern

    def classify(self, key: str, sample: bytes, text: str | None) -> Classification | None:
        name = key.rsplit("/", 1)[-1]
        if not (
            fnmatch.fnmatchcase(key, self._pattern) or fnmatch.fnmatchcase(name, self._pattern)
        ):
            return None
        return self._inner.classify(key, sample, text)


BUILTIN: tuple[Classifier, ...] = (MagicClassifier(), JsonClassifier(), DelimitedClassifier())


def custom_classifier(name: str, section: ClassifierSection) -> Classifier:
    """Build a classifier from its ``[classifiers.NAME]`` section."""
    classification = section.classification or name
    inner: Classifier
    if section.kind == "delimited":
        inner = DelimitedClassifier(
            name=f"custom:{name}",
            classification=classification,
            delimiter=section.delimiter,
            quote=section.quote,
            escape=section.escape,
            header=section.header,
        )
    else:
        if not section.pattern:
            from lakelet.errors import ConfigError

            raise ConfigError(f"classifiers.{name}: kind = {section.kind!r} needs a pattern")
        compiled = (
            compile_grok(section.pattern, section.custom_patterns)
            if section.kind == "grok"
            else compile_regex(section.pattern)
        )
        inner = LineClassifier(f"custom:{name}", classification, compiled)
    return _Scoped(inner, section.match) if section.match else inner


def custom_classifiers(
    names: Sequence[str], sections: Mapping[str, ClassifierSection]
) -> list[Classifier]:
    return [custom_classifier(n, sections[n]) for n in names]


def classify(key: str, head: bytes, custom: Sequence[Classifier] = ()) -> ChainResult:
    """Run custom classifiers, then the built-ins, over a file's first bytes."""
    compression = compression_of(key, head)
    sample = decompress_head(head, compression)
    text = decode_sample(sample)
    candidates: list[Classification] = []
    for classifier in (*custom, *BUILTIN):
        result = classifier.classify(key, sample, text)
        if result is None:
            continue
        if compression and result.format not in ("parquet", "orc", "avro"):
            result = Classification(
                result.format,
                result.classification,
                result.certainty,
                result.classifier,
                compression,
                result.options,
                result.reason,
            )
        candidates.append(result)
        if result.certainty >= 1.0:
            return ChainResult(result, candidates)
    best = max(candidates, key=lambda c: c.certainty, default=None)  # first wins a tie
    if best is None or best.certainty <= 0.0:
        return ChainResult(None, candidates)
    return ChainResult(best, candidates)


def _summary(c: Classification) -> dict[str, Any]:
    return {
        "classifier": c.classifier,
        "classification": c.classification,
        "format": c.format,
        "certainty": c.certainty,
        "compression": c.compression,
        "reason": c.reason,
    }


# --- a crawl's files ----------------------------------------------------------------------

SUFFIX_CLASSIFIER = "builtin:suffix"


def by_suffix(fmt: str) -> Classification:
    """A known file suffix, trusted without reading the file (the fast path)."""
    return Classification(fmt, fmt, 1.0, SUFFIX_CLASSIFIER, reason="file name suffix")


def classify_file(
    key: str, suffix_format: str | None, head: bytes, custom: Sequence[Classifier]
) -> ChainResult:
    """Classify one file: by content when custom classifiers exist or the suffix is
    unknown; otherwise the suffix decides (reading 10,000 heads twice costs seconds)."""
    if custom or suffix_format is None:
        return classify(key, head, custom)
    winner = by_suffix(suffix_format)
    return ChainResult(winner, [winner])


def unclassified_reason(result: ChainResult) -> str:
    best = max(result.candidates, key=lambda c: c.certainty, default=None)
    if best is None:
        return "unknown format: no classifier recognised it (binary data?)"
    return (
        f"unknown format: no classifier was sure enough (best: {best.classifier} "
        f"at {best.certainty:.0%}: {best.reason})"
    )


def with_classification(schema: FileSchema, winner: Classification) -> FileSchema:
    """Record the winner on a file's schema (the manifest keeps it for later crawls)."""
    notes: dict[str, Any] = {
        "classification": winner.classification,
        "classifier": winner.classifier,
        "certainty": winner.certainty,
    }
    if winner.classifier != SUFFIX_CLASSIFIER:
        notes["format"] = winner.format
    if winner.compression:
        notes["compression"] = winner.compression
    if winner.format == "log":
        notes["regex"] = winner.options["regex"]
    return replace(schema, dialect={**schema.dialect, **notes})
