"""A lenient RFC 4180 parser: any delimiter, quote and escape; \\n, \\r\\n and \\r.

Python's ``csv`` module cannot say where a record started nor recover from a stray
quote without swallowing the rest of the file, so records are parsed here with regular
expressions, one field at a time:

* A field that starts with the quote character is quoted: it may span lines, doubles
  its quote (or uses the escape character) and ends at a quote followed by a delimiter
  or a line end. Text after a closing quote that is not a delimiter is kept as text.
* **Stray quotes.** When the table's width is known and a record with quote trouble
  (an unterminated quote, text after a closing quote, or a record spanning lines) does
  not have that width, its first physical line alone is parsed again with quotes
  honoured only where they enclose a whole field on that line; the other quotes are
  text. If that reading has the table's width it wins. A stray quote thus costs one
  line, never the rest of the file.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass

NEWLINE_RE = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class Dialect:
    """How fields are written: ``delimiter`` ``""`` means one column per line; ``quote``
    ``""`` no quoting; ``escape`` ``""`` means a quote inside quotes is doubled."""

    delimiter: str
    quote: str = '"'
    escape: str = ""

    def describe(self) -> str:
        def show(c: str) -> str:
            return {"": "none", "\t": "tab", " ": "space", ", ": "comma+space"}.get(c, repr(c))

        escape = show(self.escape) if self.escape else "doubled quote" if self.quote else "none"
        return f"delimiter {show(self.delimiter)}, quote {show(self.quote)}, escape {escape}"


@dataclass(frozen=True)
class Record:
    """One parsed record: its first physical line (1-based), last line and fields.

    ``quote_trouble`` says a quote did not behave (unterminated, text after the closing
    quote); ``repaired`` that the stray-quote re-reading of the line was used.
    """

    line: int
    end_line: int
    fields: list[str]
    start: int
    end: int
    quote_trouble: bool = False
    repaired: bool = False

    @property
    def blank(self) -> bool:
        return len(self.fields) == 1 and self.fields[0] == "" and self.end == self.start

    @property
    def width(self) -> int:
        return len(self.fields)


class Parser:
    """Compiled patterns for one dialect over one text."""

    def __init__(self, text: str, dialect: Dialect) -> None:
        self.text = text
        self.dialect = dialect
        d, q, e = dialect.delimiter, dialect.quote, dialect.escape
        self._line_starts = [0] + [m.end() for m in NEWLINE_RE.finditer(text)]
        if d:
            ed = re.escape(d)
            if len(d) == 1:
                self._unquoted = re.compile(f"[^{ed}\\r\\n]*")
            else:
                self._unquoted = re.compile(f"(?:(?!{ed})[^\\r\\n])*")
        else:
            self._unquoted = re.compile("[^\\r\\n]*")
        self._after = re.compile(
            f"{re.escape(d)}|\\r\\n|\\r|\\n|\\Z" if d else "\\r\\n|\\r|\\n|\\Z"
        )
        self._quoted: re.Pattern[str] | None = None
        self._quoted_line: re.Pattern[str] | None = None
        if q:
            eq = re.escape(q)
            if e:
                ee = re.escape(e)
                body = f"[^{eq}{ee}]*(?:{ee}[\\s\\S][^{eq}{ee}]*)*"
                line_body = f"[^{eq}{ee}\\r\\n]*(?:{ee}[^\\r\\n][^{eq}{ee}\\r\\n]*)*"
            else:
                body = f"[^{eq}]*(?:{eq}{eq}[^{eq}]*)*"
                line_body = f"[^{eq}\\r\\n]*(?:{eq}{eq}[^{eq}\\r\\n]*)*"
            boundary = f"(?={re.escape(d)}|\\r|\\n|\\Z)" if d else "(?=\\r|\\n|\\Z)"
            self._quoted = re.compile(f"{eq}({body}){eq}")
            self._quoted_line = re.compile(f"{eq}({line_body}){eq}{boundary}")

    def line_of(self, pos: int) -> int:
        """The 1-based physical line holding offset ``pos``."""
        return bisect_right(self._line_starts, pos)

    def records(self, width: int | None = None, limit: int | None = None) -> Iterator[Record]:
        """Records from the start of the text; ``width`` enables stray-quote repair."""
        pos, n, count = 0, len(self.text), 0
        while pos < n and (limit is None or count < limit):
            record = self._record(pos)
            if (
                width is not None
                and record.width != width
                and (record.quote_trouble or record.end_line > record.line)
            ):
                alternative = self._line_record(pos)
                if alternative.width == width or record.end_line > record.line:
                    record = alternative
            elif width is not None and record.quote_trouble:
                alternative = self._line_record(pos)
                if alternative.width == width:
                    record = alternative
            yield record
            count += 1
            pos = self._skip_newline(record.end)

    def _skip_newline(self, pos: int) -> int:
        if self.text.startswith("\r\n", pos):
            return pos + 2
        if pos < len(self.text) and self.text[pos] in "\r\n":
            return pos + 1
        return pos

    def _record(self, start: int) -> Record:
        """A record read the RFC 4180 way (quoted fields may span lines)."""
        text, d, q = self.text, self.dialect.delimiter, self.dialect.quote
        fields: list[str] = []
        trouble = False
        pos = start
        while True:
            if q and self._quoted is not None and text.startswith(q, pos):
                m = self._quoted.match(text, pos)
                if m is None:  # unterminated: the line alone, quote as text
                    trouble = True
                    u = self._unquoted.match(text, pos)
                    assert u is not None
                    fields.append(u.group())
                    pos = u.end()
                else:
                    value = self._unescape(m.group(1))
                    pos = m.end()
                    follow = self._after.match(text, pos)
                    if follow is None:  # text after the closing quote: keep it as text
                        trouble = True
                        u = self._unquoted.match(text, pos)
                        assert u is not None
                        value += u.group()
                        pos = u.end()
                    fields.append(value)
            else:
                u = self._unquoted.match(text, pos)
                assert u is not None
                fields.append(u.group())
                pos = u.end()
            if d and text.startswith(d, pos):
                pos += len(d)
                continue
            break
        return Record(
            self.line_of(start), self.line_of(max(start, pos - 1)), fields, start, pos, trouble
        )

    def _line_record(self, start: int) -> Record:
        """The physical line at ``start`` where a quote that does not enclose a whole
        field on the line is a stray character: kept as text, parsing goes on after it."""
        text, d = self.text, self.dialect.delimiter
        fields: list[str] = []
        pos = start
        while True:
            value, pos = self._line_field(pos)
            fields.append(value)
            if d and text.startswith(d, pos):
                pos += len(d)
                continue
            break
        line = self.line_of(start)
        return Record(line, line, fields, start, pos, quote_trouble=True, repaired=True)

    def _line_field(self, pos: int) -> tuple[str, int]:
        q = self.dialect.quote
        stray = ""
        while q and self.text.startswith(q, pos):
            m = self._quoted_line.match(self.text, pos) if self._quoted_line else None
            if m is not None:
                return stray + self._unescape(m.group(1)), m.end()
            stray += q
            pos += len(q)
        u = self._unquoted.match(self.text, pos)
        assert u is not None
        return stray + u.group(), u.end()

    def _unescape(self, body: str) -> str:
        q, e = self.dialect.quote, self.dialect.escape
        if not e:
            return body.replace(q + q, q) if q + q in body else body
        if e not in body:
            return body
        out: list[str] = []
        i = 0
        while i < len(body):
            c = body[i]
            if c == e and i + 1 < len(body) and body[i + 1] in (q, e):
                out.append(body[i + 1])
                i += 2
            else:
                out.append(c)
                i += 1
        return "".join(out)


def parse(
    text: str, dialect: Dialect, *, width: int | None = None, limit: int | None = None
) -> list[Record]:
    """All records of ``text`` (at most ``limit``); see :class:`Parser`."""
    return list(Parser(text, dialect).records(width, limit))
