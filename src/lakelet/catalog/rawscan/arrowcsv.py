"""A strict Arrow read of CSV files: exactly the rows the checked scan returns, or a
refusal.

The checked scan (:mod:`lakelet.catalog.rawscan.csv`) reads every value as text and
converts it in DuckDB, because DuckDB's typed reader silently changes values (``1.5``
into the integer 2). pyarrow's CSV reader converts while it parses, on every core, and
is strict where DuckDB is lenient: it refuses ``1.5`` for an integer, ``1.234`` for
DECIMAL(18,2), a timestamp for a date. It is not strict in the same places as Lakelet's
conversion, though, so a read here takes only what the two agree on:

* per table: plain formats (ISO dates and timestamps, numbers without grouping or
  currency), UTF-8 files on local disk, uncompressed, without comment or preamble
  lines, quotes escaped by doubling;
* per file: no byte pattern pyarrow reads otherwise (:mod:`.divergence`); the check
  also cuts the file into pieces of whole records, which are parsed in parallel
  (pyarrow's streaming reader alone keeps about one core busy);
* per value: doubles refuse NaN (a null token for Lakelet), text keeps no empty string
  (DuckDB reads one as NULL), null tokens and booleans in any letter case.

Anything else pyarrow cannot convert (a malformed row, a value of the wrong type)
raises :class:`ArrowReadRefused`: the caller drops what it wrote and runs the checked
scan, which rejects those rows with their line and reason. Tests compare both readers.
"""

from __future__ import annotations

import itertools
import mmap
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakelet.catalog.raw import Column, RawTable
from lakelet.catalog.rawscan.core import file_partitions, relative_to_location
from lakelet.catalog.rawscan.csv import column_decision, csv_file_dialects, csv_layouts
from lakelet.catalog.rawscan.divergence import Divergences, Diverges, checked_ranges
from lakelet.catalog.rawscan.staging import compression_of
from lakelet.errors import LakeletError

if TYPE_CHECKING:
    import pyarrow as pa

BLOCK_BYTES = 1 << 20
"""Text parsed per block. Read with threads, pyarrow's reader parses dozens of blocks
ahead (16 MB blocks took 700 MB for a 766 MB file); read serially, as here, it holds
one. Each block returns to Python, where two readers and the writers take turns with
the interpreter lock: 1 MB blocks take a tenth less CPU than 256 KB ones on a busy
machine, and 16 MB ones more (they leave the CPU's caches)."""
CONVERT_ROWS = 65_536
"""Rows converted together: per-batch work costs more than the conversion of small
blocks (a 766 MB file parses into thousands of them)."""
_INTEGERS = {"TINYINT": "int8", "SMALLINT": "int16", "INTEGER": "int32", "BIGINT": "int64"}
_FLOATS = {"DOUBLE": "float64", "FLOAT": "float32", "REAL": "float32"}
_DECIMAL_RE = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)")
_UTF8 = ("", "utf-8", "utf8")


class ArrowReadRefused(LakeletError):
    """The Arrow read cannot vouch for a file: read it with the checked scan instead."""


@dataclass(frozen=True)
class _Column:
    """One table column as a file holds it: how pyarrow reads it, and the Arrow type."""

    name: str
    arrow: pa.DataType
    read_as: pa.DataType


@dataclass(frozen=True)
class Piece:
    """Whole records of one file (bytes ``start:end``), checked, and how to read them."""

    url: str
    start: int
    end: int
    names: list[str]
    dialect: dict[str, Any]
    read: dict[str, _Column]


@dataclass(frozen=True)
class ArrowCsvRead:
    """The plan of a read: the table's columns (then its partition keys, then the
    provenance column when asked) as Arrow batches, file by file."""

    table: RawTable
    files: list[str]
    schema: pa.Schema
    provenance: Callable[[str], str] | None = None

    def batches(self) -> Iterator[pa.RecordBatch]:
        """Every row of every file, converted, in order; raises
        :class:`ArrowReadRefused`."""
        for piece in self.pieces():
            yield from self.read_piece(piece)

    def pieces(self) -> Iterator[Piece]:
        """The files cut into byte ranges of whole records, each checked by
        :func:`checked_ranges` (which is the work done here): the ranges can be read
        apart, in parallel, with :meth:`read_piece`. Raises :class:`ArrowReadRefused`."""
        layouts = csv_layouts(self.table)
        dialects = csv_file_dialects(self.table)
        by_name = {c.name.lower(): c for c in self.table.columns}
        for url in self.files:
            relative = relative_to_location(url, self.table.location)
            dialect = dialects.get(relative, self.table.dialect)
            names = layouts.get(relative, [c.name for c in self.table.columns])
            kept = [n for n in names if n.lower() in by_name]
            columns = {n: _arrow_column(by_name[n.lower()], dialect) for n in kept}
            read = {n: c for n, c in columns.items() if c is not None}
            if len(read) != len(columns):
                raise ArrowReadRefused(f"{url}: a column's format is not plain")
            quote = str(dialect.get("quote", ""))
            delimiter = str(dialect.get("delimiter", ","))
            ranges = checked_ranges(
                Path(url), quote=quote, delimiter=delimiter, kinds=_kinds(list(read.values()))
            )
            try:
                for start, end in ranges:
                    yield Piece(url, start, end, names, dialect, read)
            except Diverges as found:
                raise ArrowReadRefused(f"{url}: {found}") from None
            except OSError as exc:  # vanished or unreadable: the checked scan will say
                raise ArrowReadRefused(f"{url}: {exc}") from exc

    def read_piece(self, piece: Piece) -> Iterator[pa.RecordBatch]:
        """The rows of one piece, converted; raises :class:`ArrowReadRefused`."""
        import pyarrow as pa
        import pyarrow.csv as pacsv

        dialect, read, names = piece.dialect, piece.read, piece.names
        quote = str(dialect.get("quote", ""))
        header = 1 if dialect.get("header", True) and piece.start == 0 else 0
        try:
            with _mapped(piece) as data:
                reader = pacsv.open_csv(
                    pa.BufferReader(data),
                    read_options=pacsv.ReadOptions(
                        column_names=names,
                        skip_rows=header,
                        block_size=BLOCK_BYTES,
                        use_threads=False,  # the writers run one reader per core already
                    ),
                    parse_options=pacsv.ParseOptions(
                        delimiter=str(dialect.get("delimiter", ",")),
                        quote_char=quote or False,
                        double_quote=True,
                        escape_char=False,
                        newlines_in_values=bool(quote),
                        ignore_empty_lines=len(names) > 1,  # DuckDB: a NULL row in one column
                    ),
                    convert_options=pacsv.ConvertOptions(
                        column_types={n: c.read_as for n, c in read.items()},
                        include_columns=list(read),
                        null_values=_spellings(_null_tokens()),
                        true_values=_spellings(_true_tokens()),
                        false_values=_spellings(_false_tokens()),
                        strings_can_be_null=False,
                        quoted_strings_can_be_null=True,
                        check_utf8=False,  # the byte check did (a tenth of the parse)
                    ),
                )
                constants = self._constants(piece.url)
                gathered: list[pa.RecordBatch] = []
                for batch in reader:  # small blocks (memory), converted in bulk (speed)
                    gathered.append(batch)
                    if sum(b.num_rows for b in gathered) >= CONVERT_ROWS:
                        yield from self._converted(piece.url, gathered, read, constants)
                        gathered = []
                if gathered:
                    yield from self._converted(piece.url, gathered, read, constants)
        except pa.ArrowInvalid as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unreadable"
            raise ArrowReadRefused(f"{piece.url}: {first}") from exc

    def _constants(self, url: str) -> dict[str, pa.Scalar]:
        """The file's partition values (typed as the table types them) and provenance."""
        import pyarrow as pa

        values = file_partitions(url, self.table.location)
        out: dict[str, pa.Scalar] = {}
        for key in self.table.partition_keys:
            arrow = self.schema.field(key.name).type
            value = values.get(key.name)
            try:
                out[key.name] = pa.scalar(value, pa.string()).cast(arrow)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise ArrowReadRefused(f"{url}: partition value {value!r}: {exc}") from exc
        if self.provenance is not None:
            from lakelet.jobs.bookmarks import PROVENANCE_COLUMN

            out[PROVENANCE_COLUMN] = pa.scalar(self.provenance(url), pa.string())
        return out

    def _converted(
        self,
        url: str,
        batches: list[pa.RecordBatch],
        read: dict[str, _Column],
        constants: dict[str, pa.Scalar],
    ) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        parsed = pa.Table.from_batches(batches)
        rows = parsed.num_rows
        by_lower = {n.lower(): n for n in read}
        columns = []
        for field in self.schema:
            if field.name in constants:
                columns.append(pa.chunked_array([pa.repeat(constants[field.name], rows)]))
                continue
            name = by_lower.get(field.name.lower())
            if name is None:  # a column this file does not have
                columns.append(pa.chunked_array([pa.nulls(rows, field.type)]))
                continue
            columns.append(_finished(url, parsed.column(name), read[name], field.type))
        yield from pa.Table.from_arrays(columns, schema=self.schema).to_batches()


@contextmanager
def _mapped(piece: Piece) -> Iterator[pa.Buffer]:
    """The piece's bytes, mapped rather than copied (a 16 MB copy costs a third as
    much as parsing it); its pages are dropped from the process afterwards, so memory
    stays about a piece per reader. The converted batches own their values."""
    import pyarrow as pa

    if piece.end == piece.start:
        yield pa.py_buffer(b"")
        return
    offset = piece.start - piece.start % mmap.ALLOCATIONGRANULARITY
    try:
        with open(piece.url, "rb") as source:
            view = mmap.mmap(
                source.fileno(), piece.end - offset, access=mmap.ACCESS_READ, offset=offset
            )
    except (OSError, ValueError) as exc:  # gone or shorter since it was checked
        raise ArrowReadRefused(f"{piece.url}: {exc}") from exc
    try:
        yield pa.py_buffer(memoryview(view)[piece.start - offset :])
    finally:
        view.madvise(mmap.MADV_DONTNEED)
        with suppress(BufferError):  # the reader still holds the buffer: closed with it
            view.close()


def _kinds(columns: list[_Column]) -> Divergences:
    import pyarrow as pa

    return Divergences(
        integers=any(pa.types.is_integer(c.read_as) for c in columns),
        timestamps=any(pa.types.is_timestamp(c.read_as) for c in columns),
        trimmed=any(not pa.types.is_string(c.arrow) for c in columns),
    )


def plan_arrow_read(
    table: RawTable, files: list[str], *, provenance: Callable[[str], str] | None = None
) -> ArrowCsvRead | str:
    """The Arrow read of ``files`` of ``table``, or why it cannot take them."""
    import pyarrow as pa

    if table.format != "csv":
        return f"{table.format} files"
    dialects = [table.dialect, *csv_file_dialects(table).values()]
    for dialect in dialects:
        reason = _dialect_refusal(dialect)
        if reason is not None:
            return reason
    for url in files:
        if "://" in url:
            return "files not on local disk"
        if compression_of(url) is not None:
            return "compressed files"
    fields = []
    for column in table.columns:
        arrow = _arrow_column(column, table.dialect)
        if arrow is None:
            return f"column {column.name} ({column.type}) has a format only DuckDB converts"
        fields.append(pa.field(column.name, arrow.arrow))
    for key in table.partition_keys:
        arrow_type = _arrow_type(key.type)
        if arrow_type is None:
            return f"partition key {key.name} is {key.type}"
        fields.append(pa.field(key.name, arrow_type))
    if provenance is not None:
        from lakelet.jobs.bookmarks import PROVENANCE_COLUMN

        fields.append(pa.field(PROVENANCE_COLUMN, pa.string()))
    return ArrowCsvRead(table, list(files), pa.schema(fields), provenance)


def _dialect_refusal(dialect: dict[str, Any]) -> str | None:
    quote = str(dialect.get("quote", ""))
    escape = str(dialect.get("escape", ""))
    if str(dialect.get("encoding", "") or "").lower() not in _UTF8:
        return f"{dialect.get('encoding')} text"
    if dialect.get("comment"):
        return "comment lines"
    if int(dialect.get("skip", 0) or 0):
        return "lines above the header"
    if escape not in ("", quote):
        return "quotes escaped by another character"
    delimiter = str(dialect.get("delimiter", ","))
    if len(delimiter) != 1:
        return "a delimiter of several characters"
    if not (delimiter + quote).isascii():  # pyarrow's are one byte; UTF-8 spells them in more
        return "a delimiter or quote outside ASCII"
    return None


def _arrow_column(column: Column, dialect: dict[str, Any]) -> _Column | None:
    """How pyarrow reads ``column``, or ``None`` when only DuckDB's conversion can."""
    import pyarrow as pa

    from lakelet.crawler.values.decision import ISO

    stored = dialect.get("types", {}).get(column.name)
    decision = column_decision(column, dialect, stored)
    sql_type = decision.sql_type.upper()
    arrow = _arrow_type(sql_type)
    if arrow is None or decision.currency:
        return None
    plain = {"DATE": ("%Y-%m-%d",), "TIMESTAMP": (ISO,)}.get(sql_type, ())
    if decision.format is not None and decision.format not in plain:
        return None
    if pa.types.is_decimal(arrow):  # read as text and cast: see _decimal
        return _Column(column.name, arrow, pa.string())
    return _Column(column.name, arrow, arrow)


def _arrow_type(sql_type: str) -> pa.DataType | None:
    import pyarrow as pa

    sql_type = sql_type.upper()
    if sql_type in _INTEGERS:
        return pa.type_for_alias(_INTEGERS[sql_type])
    if sql_type in _FLOATS:
        return pa.type_for_alias(_FLOATS[sql_type])
    decimal = _DECIMAL_RE.fullmatch(sql_type)
    if decimal:
        precision, scale = int(decimal.group(1)), int(decimal.group(2))
        return pa.decimal128(precision, scale) if precision <= 38 else None
    simple = {
        "VARCHAR": pa.string(),
        "BOOLEAN": pa.bool_(),
        "DATE": pa.date32(),
        "TIMESTAMP": pa.timestamp("us"),
    }
    return simple.get(sql_type)


def _finished(url: str, array: Any, column: _Column, arrow: pa.DataType) -> Any:
    """A column as the checked scan returns it (see the module docstring)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_decimal(arrow):
        return _decimal(url, array, column, arrow)
    if pa.types.is_string(column.read_as):  # DuckDB reads an empty value as NULL
        empty = pc.equal(pc.binary_length(array), 0)  # from the offsets: no text read
        if pc.any(empty).as_py():
            return pc.if_else(empty, pa.scalar(None, pa.string()), array)
        return array
    if pa.types.is_floating(arrow) and pc.any(pc.is_nan(array)).as_py():
        raise ArrowReadRefused(f"{url}: column {column.name} has a NaN spelling")
    return array


def _decimal(url: str, text: Any, column: _Column, arrow: pa.DataType) -> Any:
    """A decimal column's text cast to its type. pyarrow's CSV conversion of decimals
    costs twice the cast (a third of the parse of TPC-H lineitem) and does not check
    the precision (17 integer digits pass for DECIMAL(18,2)); the cast does. As the CSV
    conversion, null tokens are nulls and spaces around a value are trimmed."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        return pc.cast(text, arrow)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass  # null tokens or spaces (rare, so only looked for now), or a bad value
    nulls = pc.is_in(text, value_set=pa.array(_spellings(_null_tokens()), pa.string()))
    kept = pc.if_else(nulls, pa.scalar("0", pa.string()), pc.utf8_trim(text, " \t"))
    try:
        return pc.if_else(nulls, pa.scalar(None, arrow), pc.cast(kept, arrow))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "not a decimal"
        raise ArrowReadRefused(f"{url}: column {column.name}: {first}") from exc


def _spellings(tokens: tuple[str, ...]) -> list[str]:
    """Every upper/lower-case spelling of ``tokens`` (pyarrow matches them exactly;
    Lakelet compares them case-insensitively)."""
    out: set[str] = set()
    for token in tokens:
        choices = [(c.lower(), c.upper()) if c.isalpha() else (c,) for c in token]
        out.update("".join(p) for p in itertools.product(*choices))
    return sorted(out)


def _null_tokens() -> tuple[str, ...]:
    from lakelet.crawler.values.decision import NULL_TOKENS

    return NULL_TOKENS


def _true_tokens() -> tuple[str, ...]:
    from lakelet.crawler.values.decision import TRUE_TOKENS

    return TRUE_TOKENS


def _false_tokens() -> tuple[str, ...]:
    from lakelet.crawler.values.decision import FALSE_TOKENS

    return FALSE_TOKENS
