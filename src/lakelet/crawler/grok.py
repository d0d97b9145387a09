"""Grok patterns: named building blocks for log lines, compiled to one regular expression.

``%{NAME}`` inserts a pattern, ``%{NAME:field}`` captures it as column ``field`` and
``%{NAME:field:int}`` / ``:float`` also types it. The result uses only syntax that both
Python's ``re`` and RE2 (DuckDB's ``regexp_*`` functions) accept, so a crawler can test
lines in Python and a scan can parse them in DuckDB with the same expression.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from lakelet.errors import ConfigError

# Built-in patterns, in the spirit of Logstash's core set (written for RE2: no look-around,
# no atomic groups, no possessive quantifiers).
BUILTIN_PATTERNS: dict[str, str] = {
    "USERNAME": r"[a-zA-Z0-9._-]+",
    "USER": r"%{USERNAME}",
    "INT": r"[+-]?[0-9]+",
    "BASE10NUM": r"[+-]?(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)",
    "NUMBER": r"%{BASE10NUM}",
    "POSINT": r"[1-9][0-9]*",
    "NONNEGINT": r"[0-9]+",
    "WORD": r"[A-Za-z0-9_]+",
    "NOTSPACE": r"\S+",
    "SPACE": r"\s*",
    "DATA": r".*?",
    "GREEDYDATA": r".*",
    "QUOTEDSTRING": r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'",
    "QS": r"%{QUOTEDSTRING}",
    "UUID": r"[A-Fa-f0-9]{8}-(?:[A-Fa-f0-9]{4}-){3}[A-Fa-f0-9]{12}",
    "IPV4": r"(?:(?:25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])",
    "IPV6": r"(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}",
    "IP": r"(?:%{IPV4}|%{IPV6})",
    "HOSTNAME": r"[0-9A-Za-z](?:[0-9A-Za-z-]{0,62})(?:\.[0-9A-Za-z](?:[0-9A-Za-z-]{0,62}))*\.?",
    "IPORHOST": r"(?:%{IP}|%{HOSTNAME})",
    "HOSTPORT": r"%{IPORHOST}:%{POSINT}",
    "PATH": r"(?:/[^\s]*)+",
    "URIPATHPARAM": r"/[^\s?#]*(?:\?[^\s#]*)?",
    "URI": r"[A-Za-z][A-Za-z0-9+.-]*://[^\s]+",
    "MONTH": r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|"
    r"Aug(?:ust)?|Sep(?:tember)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)",
    "MONTHNUM": r"(?:0?[1-9]|1[0-2])",
    "MONTHDAY": r"(?:(?:0[1-9])|(?:[12][0-9])|(?:3[01])|[1-9])",
    "DAY": r"(?:Mon(?:day)?|Tue(?:sday)?|Wed(?:nesday)?|Thu(?:rsday)?|Fri(?:day)?|"
    r"Sat(?:urday)?|Sun(?:day)?)",
    "YEAR": r"[0-9]{4}",
    "HOUR": r"(?:2[0123]|[01]?[0-9])",
    "MINUTE": r"[0-5][0-9]",
    "SECOND": r"(?:[0-5]?[0-9]|60)(?:[.,][0-9]+)?",
    "TIME": r"%{HOUR}:%{MINUTE}(?::%{SECOND})?",
    "DATE_US": r"%{MONTHNUM}[/-]%{MONTHDAY}[/-]%{YEAR}",
    "DATE_EU": r"%{MONTHDAY}[./-]%{MONTHNUM}[./-]%{YEAR}",
    "ISO8601_TIMEZONE": r"(?:Z|[+-]%{HOUR}(?::?%{MINUTE}))",
    "TIMESTAMP_ISO8601": r"%{YEAR}-%{MONTHNUM}-%{MONTHDAY}[T ]%{HOUR}:?%{MINUTE}"
    r"(?::?%{SECOND})?%{ISO8601_TIMEZONE}?",
    "HTTPDATE": r"%{MONTHDAY}/%{MONTH}/%{YEAR}:%{TIME} [+-][0-9]{4}",
    "LOGLEVEL": r"(?:[Tt]race|TRACE|[Dd]ebug|DEBUG|[Nn]otice|NOTICE|[Ii]nfo|INFO|"
    r"[Ww]arn(?:ing)?|WARN(?:ING)?|[Ee]rr(?:or)?|ERR(?:OR)?|[Cc]rit(?:ical)?|CRIT(?:ICAL)?|"
    r"[Ff]atal|FATAL|[Ss]evere|SEVERE)",
    "COMMONAPACHELOG": r"%{IPORHOST:clientip} %{USER:ident} %{USER:auth} "
    r"\[%{HTTPDATE:timestamp}\] \"(?:%{WORD:verb} %{NOTSPACE:request}"
    r"(?: HTTP/%{NUMBER:httpversion})?|%{DATA:rawrequest})\" %{NUMBER:response:int} "
    r"(?:%{NUMBER:bytes:int}|-)",
    "COMBINEDAPACHELOG": r"%{COMMONAPACHELOG} %{QS:referrer} %{QS:agent}",
}

REFERENCE_RE = re.compile(r"%\{([A-Z0-9_]+)(?::([A-Za-z_][A-Za-z0-9_]*))?(?::(int|float))?\}")
MAX_DEPTH = 20


@dataclass(frozen=True)
class GrokField:
    name: str
    type: str  # DuckDB type: VARCHAR, BIGINT or DOUBLE


@dataclass(frozen=True)
class CompiledGrok:
    """A grok expression as one regular expression with named groups, and its columns."""

    regex: str
    fields: list[GrokField]

    def match(self, line: str) -> dict[str, str | None] | None:
        found = re.fullmatch(self.regex, line)
        return None if found is None else found.groupdict()


def compile_grok(pattern: str, custom: Mapping[str, str] | None = None) -> CompiledGrok:
    """Expand ``%{…}`` references; raise :class:`ConfigError` naming a bad reference."""
    library = {**BUILTIN_PATTERNS, **(custom or {})}
    fields: list[GrokField] = []

    def expand(text: str, depth: int) -> str:
        if depth > MAX_DEPTH:
            raise ConfigError(f"grok pattern {pattern!r}: references nest too deep (a cycle?)")

        def replace(match: re.Match[str]) -> str:
            name, field, kind = match.group(1), match.group(2), match.group(3)
            if name not in library:
                raise ConfigError(
                    f"grok pattern {pattern!r}: unknown pattern %{{{name}}}; "
                    "define it under custom_patterns"
                )
            body = expand(library[name], depth + 1)
            if field is None:
                return f"(?:{body})"
            if any(f.name == field for f in fields):
                raise ConfigError(f"grok pattern {pattern!r}: field {field!r} captured twice")
            fields.append(
                GrokField(field, {"int": "BIGINT", "float": "DOUBLE"}.get(kind or "", "VARCHAR"))
            )
            return f"(?P<{field}>{body})"

        return REFERENCE_RE.sub(replace, text)

    regex = expand(pattern, 0)
    try:
        re.compile(regex)
    except re.error as exc:
        raise ConfigError(f"grok pattern {pattern!r}: not a valid expression: {exc}") from exc
    return CompiledGrok(regex, fields)


def compile_regex(pattern: str) -> CompiledGrok:
    """A plain regular expression whose named groups ``(?P<name>…)`` become columns."""
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ConfigError(f"regex classifier {pattern!r}: not a valid expression: {exc}") from exc
    if not compiled.groupindex:
        raise ConfigError(
            f"regex classifier {pattern!r}: name the columns with groups like (?P<level>\\w+)"
        )
    names = sorted(compiled.groupindex, key=lambda n: compiled.groupindex[n])
    return CompiledGrok(pattern, [GrokField(n, "VARCHAR") for n in names])
