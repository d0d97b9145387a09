"""CSV scans: text read by DuckDB, each column converted by its recorded type decision;
structural and conversion failures become rejects with file, line and reason."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lakelet.catalog.raw import Column, RawTable

if TYPE_CHECKING:
    from lakelet.crawler.values import TypeDecision
from lakelet.catalog.rawscan.core import (
    REJECT_COLUMNS,
    UNCLOSED,
    RawScan,
    Relocation,
    assemble,
    every_column_read,
    file_columns,
    relative_to_location,
    sql_ident,
    sql_literal,
)
from lakelet.catalog.rawscan.staging import compression_of


def plan_csv(table: RawTable, files: list[str], scan_id: str) -> RawScan:
    """Read every column as text, then convert it by its recorded :class:`TypeDecision`.

    DuckDB's reader would round ``1.5`` into an integer column and truncate a timestamp
    in a DATE column; converting the text ourselves turns such a value into a rejected
    row instead. Structural errors (field counts, quotes, encoding) still come from
    DuckDB's rejects tables. A row failing conversion has no line number in DuckDB's
    output: its file is read again to number its lines as DuckDB does (see
    :func:`_locate_rows`), and the n-th row read is put on the n-th line that holds a
    row. That second read is paid only for a file with such a row: the scan's
    ``counts_sql`` (or a ``total_sql`` that equals the rows accepted) tells which.
    """
    names = _CsvTables(scan_id)
    layouts = csv_layouts(table)
    own = csv_file_dialects(table)
    known = {c.name.lower(): c for c in table.columns}
    default = [c.name for c in table.columns]
    stored = table.dialect.get("types", {})
    parts, counts, totals = [], [], []
    located: dict[str, str] = {}
    relocated: dict[str, Relocation] = {}
    before: dict[str, int] = {}
    for url in files:
        relative = relative_to_location(url, table.location)
        file_names = layouts.get(relative, default)
        dialect = own.get(relative, table.dialect)
        # A file's columns take the table's spelling and type (positions are the file's).
        typed = [known.get(n.lower(), Column(n, "VARCHAR")) for n in file_names]
        decisions = [column_decision(c, dialect, stored.get(c.name)) for c in typed]
        options = csv_options(dialect)
        read = _read_csv(url, typed, options, names.errors, names.scans)
        values, ok = _converted_row(typed, decisions)
        data = ", ".join(sql_ident(c.name) for c in typed)
        checked = _checked(values, read, ok)
        # Every column read, whatever the query uses: DuckDB checks UTF-8 only in the
        # columns it reads, and a row must not be good for one query and not another.
        # The typed columns are read by the flag already; naming them here would also
        # compute their conversions twice (see _checked).
        read_all = every_column_read(_text_columns(typed, decisions))
        where = f" WHERE {OK_COLUMN} AND {read_all}" if ok else f" WHERE {read_all}"
        parts.append(f"SELECT {file_columns(table, url, data=data)} FROM ({checked}){where}")
        good = f"count(*) FILTER (WHERE {OK_COLUMN})" if ok else "count(*)"
        bad = f"count(*) FILTER (WHERE NOT {OK_COLUMN})" if ok else "0"
        counts.append(
            f"SELECT {sql_literal(url)} AS file, {good} AS good, {bad} AS failed "
            f"FROM ({checked}) WHERE {read_all}"
        )
        text_read = _text_read(url, typed, options)
        every = every_column_read([c.name for c in typed])  # all text here: nothing converts
        totals.append(f"SELECT count(*) AS n FROM {text_read} WHERE {every}")
        if ok:
            failed = _conversion_failures(url, typed, decisions, dialect)
            located[url] = (
                f"SELECT * FROM ({_locate_rows(url, failed, dialect, len(typed), names)})"
            )
            lines = f"{names.scan_id}_lines_{len(relocated)}"
            again = _locate_rows(url, failed, dialect, len(typed), names, lines=lines)
            relocated[url] = Relocation(
                _line_table(url, dialect, lines),
                f"SELECT * FROM ({again})",
                tuple(f"DROP TABLE IF EXISTS {t}" for t in (lines, *_line_table_parts(lines))),
            )
        if "://" not in url and compression_of(url) is None:
            before[url] = int(dialect.get("skip", 0)) + (1 if dialect.get("header", True) else 0)
    select = assemble(table, parts, whole_rows=False)
    structural = f"SELECT {REJECT_COLUMNS} FROM ({_structural_rejects(names)})"
    union = "\nUNION ALL\n".join([structural, *located.values()])
    union_totals = "\nUNION ALL\n".join(totals)
    return RawScan(
        select,
        f"SELECT {REJECT_COLUMNS} FROM (\n{union}\n) ORDER BY file, line",
        list(files),
        counts_sql="\nUNION ALL\n".join(counts),
        total_sql=f"SELECT CAST(sum(n) AS BIGINT) FROM (\n{union_totals}\n)",
        structural_sql=structural,
        located_sql=located,
        relocated=relocated,
        lines_before_rows=before,
    )


@dataclass(frozen=True)
class _CsvTables:
    """Names of one scan's DuckDB rejects tables."""

    scan_id: str

    @property
    def errors(self) -> str:
        return f"{self.scan_id}_errors"

    @property
    def scans(self) -> str:
        return f"{self.scan_id}_scans"


def column_decision(
    column: Column, dialect: dict[str, Any], stored: dict[str, Any] | None
) -> TypeDecision:
    """How a CSV column's text converts: what the crawler recorded in
    ``dialect["types"]``, else the column type with the dialect's date formats."""
    from lakelet.crawler.values import decision_for_column

    if stored is None:
        stored = {}
        fmt = {"DATE": dialect.get("dateformat"), "TIMESTAMP": dialect.get("timestampformat")}
        if fmt.get(column.type.upper()):
            stored = {"format": str(fmt[column.type.upper()])}
    return decision_for_column(column.type, stored)


OK_COLUMN = "__lakelet_ok"


def _text_columns(columns: list[Column], decisions: list[TypeDecision]) -> list[str]:
    """The columns that stay text (the flag of :func:`_converted_row` reads the rest)."""
    return [
        c.name for c, d in zip(columns, decisions, strict=True) if d.sql_type.upper() == "VARCHAR"
    ]


def _checked(values: str, read: str, ok: str) -> str:
    """The converted row with ``OK_COLUMN``: whether every value converted.

    The flag is computed from the converted columns, one level above them, and ANDed
    with ``random() >= 0`` (always true): a volatile expression keeps DuckDB from
    pushing the filter on the flag down through the conversions, which would then be
    computed twice (once to filter, once to return), a third of the scan's time.
    """
    if not ok:
        return f"{values} FROM {read}"
    return f"SELECT *, {ok} AND random() >= 0 AS {OK_COLUMN} FROM ({values} FROM {read})"


def _converted_row(columns: list[Column], decisions: list[TypeDecision]) -> tuple[str, str]:
    """``SELECT`` converting a file's text columns (each conversion computed once, with
    the raw text kept beside it), and the condition, over its columns, that every value
    converted (``""`` when every column is text).

    The condition looks at the text again only on a row with a NULL typed value (a CASE
    evaluates its ELSE for those rows alone): on clean rows it is a few NULL checks.
    """
    from lakelet.crawler.values import null_token_sql

    values, raws, present, fits = [], [], [], []
    for i, (column, decision) in enumerate(zip(columns, decisions, strict=True)):
        name = sql_ident(column.name)
        values.append(f"{value_sql(decision, name)} AS {name}")
        if decision.sql_type.upper() != "VARCHAR":
            raw = sql_ident(f"__lakelet_raw_{i}")
            raws.append(f"{name} AS {raw}")
            present.append(f"{name} IS NOT NULL")
            fits.append(f"({name} IS NOT NULL OR {null_token_sql(raw)})")
    if not fits:
        return f"SELECT {', '.join(values)}", ""
    ok = f"(CASE WHEN {' AND '.join(present)} THEN true ELSE {' AND '.join(fits)} END)"
    return f"SELECT {', '.join([*values, *raws])}", ok


def value_sql(decision: TypeDecision, column_sql: str) -> str:
    """The typed value of a text column: a value already written as DuckDB writes that
    value takes one cast; any other goes through the recorded conversion.

    DuckDB's own casts are lenient (``'1.5'`` becomes the integer 2, a timestamp becomes
    its date), so a cast alone is never trusted: its result is kept only when it turns
    back into exactly the text it came from. Such a value is one the recorded
    conversion reads the same way, and the check costs a fraction of that conversion's
    patterns. Formats other than the plain one (dates in another order, currency,
    percentages, decimal commas) always take the conversion.
    """
    from lakelet.crawler.values import conversion_sql

    slow = conversion_sql(decision, column_sql)
    guard = _canonical_guard(decision, column_sql)
    if guard is None:
        return slow
    cast = f"TRY_CAST({column_sql} AS {decision.sql_type})"
    check = f"CAST({cast} AS VARCHAR) = {column_sql}"
    return f"CASE WHEN {check}{guard} THEN {cast} ELSE {slow} END"


_CANONICAL_TYPES = frozenset(
    {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "DOUBLE", "FLOAT", "REAL"}
    | {"DATE", "TIMESTAMP", "TIME", "BOOLEAN"}
)
_FLOATS = frozenset({"DOUBLE", "FLOAT", "REAL"})


def _canonical_guard(decision: TypeDecision, column_sql: str) -> str | None:
    """Extra conditions for the cast's fast path (``""``: none), or ``None`` when the
    column's values must always take the recorded conversion."""
    from lakelet.crawler.values import ISO

    sql_type = decision.sql_type.upper()
    if not (sql_type in _CANONICAL_TYPES or re.fullmatch(r"DECIMAL\(\d+,\s*\d+\)", sql_type)):
        return None
    if sql_type == "DATE":
        if decision.format not in (None, "%Y-%m-%d"):
            return None
        return f" AND length({column_sql}) = 10"  # four-digit years, no era suffix
    if decision.format not in (None, ISO):
        return None
    if sql_type == "TIMESTAMP":  # four-digit years, no era suffix
        return f" AND substr({column_sql}, 5, 1) = '-' AND NOT ends_with({column_sql}, ')')"
    if sql_type in _FLOATS:  # NaN is written "nan", a null token
        return f" AND NOT isnan(TRY_CAST({column_sql} AS {decision.sql_type}))"
    return ""


def _read_csv(url: str, columns: list[Column], options: str, errors: str, scans: str) -> str:
    text = ", ".join(f"{sql_literal(c.name)}: 'VARCHAR'" for c in columns)
    return (
        f"read_csv({sql_literal(url)}, columns={{{text}}}, {options}, store_rejects=true, "
        f"rejects_table={sql_literal(errors)}, rejects_scan={sql_literal(scans)})"
    )


def _text_read(url: str, columns: list[Column], options: str) -> str:
    """The file's well-formed rows as text, malformed ones skipped (nothing recorded)."""
    text = ", ".join(f"{sql_literal(c.name)}: 'VARCHAR'" for c in columns)
    return f"read_csv({sql_literal(url)}, columns={{{text}}}, {options}, ignore_errors=true)"


def _structural_rejects(names: _CsvTables) -> str:
    errors, scans = names.errors, names.scans
    return f"""
  SELECT file, line,
         arg_min(column_name, column_idx) AS column_name,
         string_agg(reason, '; ' ORDER BY column_idx) AS reason,
         arg_min(raw_row, column_idx) AS raw_row
  FROM (
    SELECT file, line, min(column_idx) AS column_idx,
           arg_min(column_name, column_idx) AS column_name,
           arg_min(reason, column_idx) AS reason, arg_min(raw_row, column_idx) AS raw_row
    FROM (
      SELECT file, first_line + i - 1 AS line, kind, column_idx, raw_row,
             CASE WHEN i = 1 THEN column_name END AS column_name,
             CASE WHEN i = 1 THEN kind || ': ' || message
                  ELSE 'UNQUOTED VALUE: part of the unterminated quoted value from line '
                       || CAST(first_line AS VARCHAR)
             END AS reason
      FROM (
        SELECT file, first_line, column_idx, column_name, kind, message,
               unnest(range(1, len(pieces) + 1)) AS i, unnest(pieces) AS raw_row
        FROM (
          SELECT s.file_path AS file, e.line AS first_line, e.column_idx, e.column_name,
                 CAST(e.error_type AS VARCHAR) AS kind, e.error_message AS message,
                 CASE WHEN e.error_type = 'UNQUOTED VALUE'
                      THEN string_split(rtrim(e.csv_line, chr(10) || chr(13)), chr(10))
                      ELSE [rtrim(e.csv_line, chr(10) || chr(13))] END AS pieces
          FROM {errors} AS e JOIN {scans} AS s USING (scan_id, file_id)
        )
      )
    )
    -- one reason per kind of error, except one per column for values that do not cast
    GROUP BY file, line, kind, CASE WHEN kind = 'CAST' THEN column_idx END
  )
  GROUP BY file, line"""


def _conversion_failures(
    url: str, columns: list[Column], decisions: list[TypeDecision], dialect: dict[str, Any]
) -> str:
    """Well-formed rows of one file with a value that does not convert: ``n`` (the n-th
    row read), the first such column and every reason."""
    from lakelet.crawler.values import describe, failed_sql

    values, ok = _converted_row(columns, decisions)
    read = f"{_text_read(url, columns, csv_options(dialect))} WITH ORDINALITY"
    checks = []
    for i, (column, decision) in enumerate(zip(columns, decisions, strict=True)):
        if decision.sql_type.upper() != "VARCHAR":
            raw = sql_ident(f"__lakelet_raw_{i}")
            head = sql_literal(f'CAST: column {sql_ident(column.name)}: value "')
            tail = sql_literal(f'" is not {describe(decision)}')
            checks.append(
                (column, failed_sql(sql_ident(column.name), raw), f"{head} || {raw} || {tail}")
            )
    reasons = ", ".join(f"CASE WHEN {fails} THEN {why} END" for _, fails, why in checks)
    first = " ".join(
        ["CASE", *(f"WHEN {fails} THEN {sql_literal(c.name)}" for c, fails, _ in checks), "END"]
    )
    read_all = every_column_read(_text_columns(columns, decisions))  # as the scan reads rows
    return (
        f"SELECT n, {first} AS column_name, concat_ws('; ', {reasons}) AS reason "
        f"FROM ({values}, ordinality AS n FROM {read}) WHERE NOT {ok} AND {read_all}"
    )


def _line_options(dialect: dict[str, Any]) -> list[str]:
    """read_csv options that read a file's physical lines as one text column ``t``."""
    options = [
        "columns={'t': 'VARCHAR'}",
        "delim=chr(1)",
        "quote=''",
        "escape=''",
        "header=false",
        "skip=0",
        "comment=''",
        "auto_detect=false",
        "strict_mode=false",
        "hive_partitioning=false",
    ]
    if dialect.get("encoding"):
        options.append(f"encoding={sql_literal(str(dialect['encoding']))}")
    return options


def _line_table_parts(lines: str) -> tuple[str, str, str]:
    """The temporary tables :func:`_line_table` makes beside ``lines``."""
    return f"{lines}_read", f"{lines}_errors", f"{lines}_scans"


def _line_table(url: str, dialect: dict[str, Any], lines: str) -> tuple[str, ...]:
    """Statements making the temporary table ``lines`` (``p, t``) of a file's physical
    lines, those DuckDB refuses to read as text included, in their place.

    The lines are read skipping the refused ones, which DuckDB's rejects table records
    with their line number and their text (bytes that are not UTF-8 shown as ``?``);
    the k-th line read is then on line ``k`` plus the refused lines before it."""
    read, errors, scans = _line_table_parts(lines)
    options = ", ".join(_line_options(dialect))
    rejects = (
        f"ignore_errors=true, store_rejects=true, rejects_table={sql_literal(errors)}, "
        f"rejects_scan={sql_literal(scans)}"
    )
    return (
        f"CREATE OR REPLACE TEMP TABLE {read} AS SELECT ordinality AS k, t FROM "
        f"read_csv({sql_literal(url)}, {options}, {rejects}) WITH ORDINALITY",
        f"""CREATE OR REPLACE TEMP TABLE {lines} AS
  WITH refused AS (
    SELECT line, t, row_number() OVER (ORDER BY line) AS i
    FROM (SELECT line, rtrim(min(csv_line), chr(10) || chr(13)) AS t FROM {errors} GROUP BY line)
  )
  SELECT k + (SELECT count(*) FROM refused AS r WHERE r.line - r.i < k) AS p, t FROM {read}
  UNION ALL
  SELECT line AS p, t FROM refused""",
    )


def _locate_rows(
    url: str,
    failed: str,
    dialect: dict[str, Any],
    width: int,
    names: _CsvTables,
    *,
    lines: str | None = None,
) -> str:
    """Put the rows of ``failed`` (``n, column_name, reason``: the n-th row read) on
    their line, as DuckDB numbers lines, with the line's text.

    DuckDB numbers lines from the top of the file (skipped rows and the header
    included), counting a quoted value spanning several lines once, and blank and
    comment lines too. The file is read once more as bare lines (same compression and
    encoding). A line with an odd number of quotes opens a quoted value that the next
    such line closes (a *span*); the lines between continue it. The n-th row read is
    then on line ``first + n`` plus the lines before it that hold no row: blank lines
    (unless the file has a single column: there a blank line is a NULL row), comments
    and the rows DuckDB rejected. Only the spans and those lines are windowed, so the
    cost stays one read of the file. ``lines`` names a table of the file's lines
    (``p, t``, see :func:`_line_table`) to take them from instead.
    """
    quote = str(dialect.get("quote", ""))
    escape = str(dialect.get("escape", ""))
    comment = str(dialect.get("comment", ""))
    counted = "t"
    if escape and escape != quote:
        pairs = f"replace(t, {sql_literal(escape * 2)}, '')"
        counted = f"replace({pairs}, {sql_literal(escape + quote)}, '')"
    quotes = (
        f"length({counted}) - length(replace({counted}, {sql_literal(quote)}, ''))"
        if quote
        else "0"
    )
    source = lines or (
        f"(SELECT ordinality AS p, t FROM read_csv({sql_literal(url)}, "
        f"{', '.join(_line_options(dialect))}) WITH ORDINALITY)"
    )
    first = int(dialect.get("skip", 0)) + (1 if dialect.get("header", True) else 0)
    holds_no_row = [f"starts_with(t, {sql_literal(comment)})"] if comment else []
    if width > 1:
        holds_no_row.append("t IS NULL OR rtrim(t, chr(13)) = ''")
    no_row = " OR ".join(f"({c})" for c in holds_no_row) or "false"
    return f"""
  WITH failed AS ({failed}),
  phys AS (SELECT p, t, coalesce({quotes}, 0) AS q FROM {source} AS lines),
  odd AS (SELECT p, row_number() OVER (ORDER BY p) AS k FROM phys WHERE q % 2 = 1),
  spans AS (
    SELECT open, close, close - open AS len,
           open - coalesce(sum(close - open) OVER (ORDER BY open ROWS BETWEEN UNBOUNDED
                                                   PRECEDING AND 1 PRECEDING), 0) AS line
    FROM (
      SELECT o.p AS open, coalesce(c.p, {UNCLOSED}) AS close
      FROM odd AS o LEFT JOIN odd AS c ON c.k = o.k + 1
      WHERE o.k % 2 = 1
    )
  ),
  empty AS (
    SELECT x.p - coalesce((SELECT sum(len) FROM spans WHERE close < x.p), 0) AS line
    FROM phys AS x
    WHERE ({no_row})
      AND NOT EXISTS (SELECT 1 FROM spans WHERE open < x.p AND x.p <= close)
  ),
  excluded AS (
    SELECT line, row_number() OVER (ORDER BY line) AS i
    FROM (
      SELECT line FROM empty WHERE line > {first}
      UNION
      SELECT e.line FROM {names.errors} AS e JOIN {names.scans} AS s USING (scan_id, file_id)
      WHERE s.file_path = {sql_literal(url)}
    )
  ),
  located AS (
    SELECT f.*, {first} + f.n
           + (SELECT count(*) FROM excluded AS x WHERE x.line - {first} - x.i < f.n) AS line
    FROM failed AS f
  ),
  placed AS (
    SELECT l.*, l.line + coalesce((SELECT sum(len) FROM spans WHERE spans.line < l.line), 0)
             AS start,
           coalesce((SELECT max(len) FROM spans WHERE spans.line = l.line), 0) AS extra
    FROM located AS l
  )
  SELECT {sql_literal(url)} AS file, CAST(line AS BIGINT) AS line, column_name, reason,
         (SELECT string_agg(coalesce(rtrim(t, chr(13)), ''), chr(10) ORDER BY p) FROM phys
          WHERE p BETWEEN placed.start AND placed.start + placed.extra) AS raw_row
  FROM placed"""


def csv_layouts(table: RawTable) -> dict[str, list[str]]:
    """Files whose header differs from the table's column order → their column names.

    CSV is read with explicit columns (DuckDB's sniffer gives up on malformed files), so
    each file's own order must be known: the crawler records the files that deviate
    from the table's order (as Glue records a schema per partition), keyed by their path
    relative to the location; any other file is read in the table's order.
    """
    layouts: dict[str, list[str]] = {}
    for layout in table.dialect.get("layouts", []):
        for relative in layout["files"]:
            layouts[str(relative)] = [str(n) for n in layout["columns"]]
    return layouts


def csv_file_dialects(table: RawTable) -> dict[str, dict[str, Any]]:
    """Files read with options of their own → their whole dialect.

    A table's files may differ in layout (one with a title line above its header, one
    without a header): the crawler records, per such file, the read options where it
    differs from the table's (``None``: the file does not set that option), keyed by its
    path relative to the location; any other file is read with the table's dialect.
    """
    dialects: dict[str, dict[str, Any]] = {}
    for entry in table.dialect.get("file_options", []):
        dialect = dict(table.dialect)
        for key, value in entry.items():
            if key == "files":
                continue
            if value is None:
                dialect.pop(key, None)
            else:
                dialect[key] = value
        for relative in entry["files"]:
            dialects[str(relative)] = dialect
    return dialects


def csv_options(d: dict[str, Any]) -> str:
    """read_csv options from a crawled dialect; nothing is sniffed at read time.

    Each file is read on its own, with its own column order, and the reads are combined
    by name: ``union_by_name`` cannot be combined with DuckDB's rejects tables.
    """
    opts = [
        "auto_detect=false",
        f"delim={sql_literal(str(d.get('delimiter', ',')))}",
        f"quote={sql_literal(str(d.get('quote', '')))}",
        f"escape={sql_literal(str(d.get('escape', '')))}",
        f"header={'true' if d.get('header', True) else 'false'}",
        f"skip={int(d.get('skip', 0))}",
        f"comment={sql_literal(str(d.get('comment', '')))}",
        "hive_partitioning=false",
    ]
    # The recorded newline is not passed: DuckDB reads \n and \r\n alike, and a file with
    # the other ending would otherwise read as one long malformed row.
    for key, option in (
        ("dateformat", "dateformat"),
        ("timestampformat", "timestampformat"),
        ("encoding", "encoding"),
    ):
        if d.get(key):
            opts.append(f"{option}={sql_literal(str(d[key]))}")
    return ", ".join(opts)
