"""How a DuckDB connection reads a crawled raw table straight from its files.

A scan is typed by the crawled schema, never re-inferred, and loses nothing: every data
row of the files is either returned by :attr:`RawScan.select_sql` or listed by
:attr:`RawScan.rejects_sql` with its file, line and reason. A row counts as good only when
*every* column of the table parses, whatever columns a query projects (so ``count(*)``
and ``SELECT price`` see the same rows).

Which files belong to a table is decided here too, because the crawler and every reader
must agree on it: data files under ``table.location`` with the table's format, ignoring
hidden and marker files (a path segment starting with ``.`` or ``_``), empty objects and
the table's ``exclude`` globs; a table with ``dialect["nested"] = False`` (the crawl
path's own table) holds only files at its location or in its ``key=value`` folders,
because its other sub-folders are tables of their own.

Partition values come from the ``key=value`` path segments below the table's location
and are added to each file's rows as typed literals (instead of DuckDB's
``hive_partitioning``, which also reads segments above the location and needs every
file to have the same keys). A value that does not cast to its crawled type fails the
query loudly rather than becoming NULL; re-crawling widens the key's type.

JSON lines are read as text lines, so a malformed line, a line that is not an object,
or a top-level value that does not fit its column's type is a reject, not an error.

CSV is read as text and each column converted by its :class:`TypeDecision` (recorded by
the crawler in ``dialect["types"]``, else derived from the column type and the
dialect's date formats): DuckDB's reader would round ``1.5`` read into an integer
column and truncate a timestamp read into a DATE column; here such a value rejects its
row. Null tokens (``N/A``, ``NULL``, ``-``, …) are NULL in typed columns.

Known limits: in JSON a value nested inside a STRUCT or LIST that does not fit becomes
NULL (only top-level values are checked); a file that cannot be read at all (corrupt
gzip or Parquet, JSON that is not UTF-8) fails the query, naming the file; a CSV scan
parses each file twice (the second parse only numbers lines for rejects).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from lakelet.catalog.raw import Column, RawTable
from lakelet.storage.base import ObjectStore, iter_objects, split_location

if TYPE_CHECKING:
    from lakelet.crawler.values import TypeDecision

FORMAT_SUFFIXES: dict[str, tuple[str, ...]] = {
    "csv": (".csv", ".tsv", ".csv.gz", ".tsv.gz"),
    "json": (".jsonl", ".ndjson", ".json"),
    "parquet": (".parquet", ".pq"),
    "avro": (".avro",),
    "orc": (".orc",),
}
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
INTEGER_TYPES = frozenset({"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT"})
NESTED_TYPE_RE = re.compile(r"(\[\]$|^STRUCT\(|^MAP\(|^UNION\()")
REJECT_COLUMNS = "file, line, column_name, reason, raw_row"
# A quoted value never closed runs to the end of the file: a line number past any file.
UNCLOSED = 10**15


@dataclass(frozen=True)
class RawScan:
    """SQL reading one crawled table: good rows, and the rows that failed.

    ``select_sql`` returns the table's columns then its partition keys, typed;
    ``rejects_sql`` returns ``file, line, column_name, reason, raw_row``, one row per
    rejected line, and must run after a result of ``select_sql`` was read to its end.
    """

    select_sql: str
    rejects_sql: str
    files: list[str]
    arrow_tables: dict[str, Callable[[], Any]] = field(default_factory=dict)
    """Arrow tables ``select_sql`` reads by name: register each (name → its data) first."""


# --- which files belong to a table ---------------------------------------------------


def format_of(key: str) -> str | None:
    """The format a key's suffix names (``csv``, ``json``, ``parquet``), or ``None``."""
    lower = key.lower()
    for fmt, suffixes in FORMAT_SUFFIXES.items():
        if lower.endswith(suffixes):
            return fmt
    return None


def is_hidden(relative_key: str) -> bool:
    """Hidden and marker files (``.lakelet-bucket``, ``_SUCCESS``, ``_temporary/…``)."""
    return any(part.startswith((".", "_")) for part in relative_key.split("/"))


def partition_segment(segment: str) -> tuple[str, str] | None:
    """``"date=2026-11-27"`` → ``("date", "2026-11-27")``; other segments → ``None``."""
    key, sep, value = segment.partition("=")
    if not sep or not key:
        return None
    return unquote(key), unquote(value)


def glob_regex(glob: str) -> re.Pattern[str]:
    """A glob as a regex: ``**`` crosses folders, ``*`` and ``?`` do not."""
    out = []
    i = 0
    while i < len(glob):
        if glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif glob[i] == "*":
            out.append("[^/]*")
            i += 1
        elif glob[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(glob[i]))
            i += 1
    return re.compile("".join(out).rstrip("/"))


def is_excluded(key: str, relative_key: str, globs: list[str]) -> bool:
    """Whether an exclusion glob drops a file.

    A glob without ``/`` matches any folder or file name below the crawled location
    (``*.tmp``, ``archive``); a glob with ``/`` matches the bucket-relative key or one of
    its folders (the crawler stores them prefixed with the crawl path).
    """
    parts = key.split("/")
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    names = relative_key.split("/")
    for glob in globs:
        pattern = glob_regex(glob)
        candidates = prefixes if "/" in glob.rstrip("/") else names
        if any(pattern.fullmatch(c) for c in candidates):
            return True
    return False


def belongs_to(relative_key: str, *, nested: bool) -> bool:
    """A non-nested table holds files at its location or in ``key=value`` folders only."""
    if nested:
        return True
    folders = relative_key.split("/")[:-1]
    return all(partition_segment(f) is not None for f in folders)


def raw_files(store: ObjectStore, table: RawTable) -> list[str]:
    """URLs of the data files currently under the table's location, in key order."""
    bucket, prefix = split_location(table.location)
    nested = bool(table.dialect.get("nested", True))
    exclude = [str(g) for g in table.dialect.get("exclude", [])]
    urls = []
    for info in iter_objects(store, bucket, prefix):
        relative = info.key[len(prefix) :]
        if (
            info.size > 0
            and not is_hidden(relative)
            and _of_format(info.key, table)
            and belongs_to(relative, nested=nested)
            and not is_excluded(info.key, relative, exclude)
        ):
            urls.append(store.url(bucket, info.key))
    return urls


def suffix_of(key: str) -> str:
    """``"a/b.log.1"`` → ``".1"``; ``"a/README"`` → ``""``."""
    name = key.rsplit("/", 1)[-1]
    return name[name.rfind(".") :].lower() if "." in name else ""


def _of_format(key: str, table: RawTable) -> bool:
    """A file of the table's format: by its suffix, or, for files the crawler classified
    by content, by one of the suffixes those files had (``.txt``, ``.log``, none)."""
    fmt = format_of(key)
    if fmt is not None:
        return fmt == table.format
    return suffix_of(key) in table.dialect.get("suffixes", [])


def attach_store(con: Any, store: ObjectStore) -> None:
    """Let a DuckDB connection read the store's URLs (S3 through fsspec, not httpfs)."""
    if store.root.startswith("s3://"):
        con.register_filesystem(store.filesystem())


# --- planning ------------------------------------------------------------------------


def plan_raw_scan(
    table: RawTable, files: list[str], *, scan_id: str, filesystem: Any | None = None
) -> RawScan:
    """The SQL reading ``files`` as ``table``; ``scan_id`` names this scan's temp tables.

    For CSV, run ``rejects_sql`` only after a result of ``select_sql`` has been consumed
    to the end (``fetchall``, a full Arrow read, ``CREATE TABLE … AS``): DuckDB writes a
    scan's malformed rows to its rejects tables when the scan finishes, so a result
    read with ``fetchone`` and left open has recorded none yet.
    """
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", scan_id):
        raise ValueError(f"scan_id {scan_id!r} must be a SQL identifier")
    if not files:
        return RawScan(_empty_select(table), _empty_rejects(), [])
    if table.format == "csv":
        return _plan_csv(table, files, scan_id)
    if table.format == "json":
        return _plan_json(table, files)
    if table.format == "parquet":
        return _plan_parquet(table, files)
    if table.format == "log":
        from lakelet.catalog.rawscan_log import plan_log

        return RawScan(*plan_log(table, files), list(files))
    if table.format in ("avro", "orc"):
        from lakelet.catalog.rawscan_arrow import arrow_loader, default_opener

        name = f"{scan_id}_arrow"
        select = _assemble(table, [f"SELECT * FROM {name}"])
        loader = arrow_loader(table, files, default_opener(filesystem))
        return RawScan(select, _empty_rejects(), list(files), {name: loader})
    raise ValueError(f"raw table {table.table_name} has unknown format {table.format!r}")


def _plan_csv(table: RawTable, files: list[str], scan_id: str) -> RawScan:
    """Read every column as text, then convert it by its recorded :class:`TypeDecision`.

    DuckDB's reader would round ``1.5`` into an integer column and truncate a timestamp
    in a DATE column; converting the text ourselves turns such a value into a rejected
    row instead. Structural errors (field counts, quotes, encoding) still come from
    DuckDB's rejects tables. A row failing conversion has no line number in DuckDB's
    output: ``rejects_sql`` numbers the file's lines as DuckDB does (see
    :func:`_locate_rows`) and puts the n-th row read on the n-th line that holds a row.
    """
    names = _CsvTables(scan_id)
    options = csv_options(table.dialect)
    layouts = csv_layouts(table)
    known = {c.name.lower(): c for c in table.columns}
    default = [c.name for c in table.columns]
    stored = table.dialect.get("types", {})
    parts, checked = [], []
    for url in files:
        file_names = layouts.get(relative_to_location(url, table.location), default)
        # A file's columns take the table's spelling and type (positions are the file's).
        typed = [known.get(n.lower(), Column(n, "VARCHAR")) for n in file_names]
        decisions = [column_decision(c, table.dialect, stored.get(c.name)) for c in typed]
        read = _read_csv(url, typed, options, names.errors, names.scans)
        values, failing = _converted_row(typed, decisions)
        where = f" WHERE NOT ({failing})" if failing else ""
        data = ", ".join(sql_ident(c.name) for c in typed)
        parts.append(
            f"SELECT {_file_columns(table, url, data=data)} FROM ({values} FROM {read}){where}"
        )
        if failing:
            checked.append((url, typed, decisions))
    select = _assemble(table, parts)
    rejects = [f"SELECT {REJECT_COLUMNS} FROM ({_structural_rejects(names)})"]
    rejects += [
        _conversion_rejects(url, typed, d, table.dialect, names) for url, typed, d in checked
    ]
    union = "\nUNION ALL\n".join(rejects)
    return RawScan(
        select, f"SELECT {REJECT_COLUMNS} FROM (\n{union}\n) ORDER BY file, line", list(files)
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


def _converted_row(columns: list[Column], decisions: list[TypeDecision]) -> tuple[str, str]:
    """``SELECT`` converting a file's text columns (each conversion computed once, with
    the raw text kept beside it), and the condition that some value failed."""
    # Imported here: the crawler package imports this module.
    from lakelet.crawler.values import conversion_sql, failed_sql

    values, raws, failing = [], [], []
    for i, (column, decision) in enumerate(zip(columns, decisions, strict=True)):
        name = sql_ident(column.name)
        values.append(f"{conversion_sql(decision, name)} AS {name}")
        if decision.sql_type.upper() != "VARCHAR":
            raw = sql_ident(f"__lakelet_raw_{i}")
            raws.append(f"{name} AS {raw}")
            failing.append(failed_sql(name, raw))
    return f"SELECT {', '.join([*values, *raws])}", " OR ".join(failing)


def _read_csv(url: str, columns: list[Column], options: str, errors: str, scans: str) -> str:
    text = ", ".join(f"{sql_literal(c.name)}: 'VARCHAR'" for c in columns)
    return (
        f"read_csv({sql_literal(url)}, columns={{{text}}}, {options}, store_rejects=true, "
        f"rejects_table={sql_literal(errors)}, rejects_scan={sql_literal(scans)})"
    )


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


def _conversion_rejects(
    url: str,
    columns: list[Column],
    decisions: list[TypeDecision],
    dialect: dict[str, Any],
    names: _CsvTables,
) -> str:
    """Well-formed rows of one file with a value that does not convert, at their line."""
    from lakelet.crawler.values import describe, failed_sql

    values, _ = _converted_row(columns, decisions)
    text = ", ".join(f"{sql_literal(c.name)}: 'VARCHAR'" for c in columns)
    read = (
        f"read_csv({sql_literal(url)}, columns={{{text}}}, {csv_options(dialect)}, "
        "ignore_errors=true) WITH ORDINALITY"
    )
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
    failing = " OR ".join(fails for _, fails, _ in checks)
    failed = (
        f"SELECT n, {first} AS column_name, concat_ws('; ', {reasons}) AS reason "
        f"FROM ({values}, ordinality AS n FROM {read}) WHERE {failing}"
    )
    return f"SELECT * FROM ({_locate_rows(url, failed, dialect, len(columns), names)})"


def _locate_rows(
    url: str, failed: str, dialect: dict[str, Any], width: int, names: _CsvTables
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
    cost stays one read of the file.
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
    first = int(dialect.get("skip", 0)) + (1 if dialect.get("header", True) else 0)
    holds_no_row = [f"starts_with(t, {sql_literal(comment)})"] if comment else []
    if width > 1:
        holds_no_row.append("t IS NULL OR rtrim(t, chr(13)) = ''")
    no_row = " OR ".join(f"({c})" for c in holds_no_row) or "false"
    return f"""
  WITH failed AS ({failed}),
  phys AS (
    SELECT ordinality AS p, t, coalesce({quotes}, 0) AS q
    FROM read_csv({sql_literal(url)}, {", ".join(options)}) WITH ORDINALITY
  ),
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


def _plan_json(table: RawTable, files: list[str]) -> RawScan:
    checks = [_json_check(c) for c in table.columns]
    good = " AND ".join(["is_object", *(ok for ok, _ in checks)])
    values = ", ".join(_json_value(c) for c in table.columns)
    lines = [_json_lines(url) for url in files]

    parts = [
        f"SELECT {_file_columns(table, url, data=values)} FROM ({sql}) WHERE {good}"
        for url, sql in zip(files, lines, strict=True)
    ]
    select = _assemble(table, parts)

    reasons = ", ".join(
        [
            "CASE WHEN NOT is_valid THEN 'invalid JSON' END",
            "CASE WHEN is_valid AND NOT is_object THEN 'not a JSON object' END",
            *(f"CASE WHEN is_object AND NOT ({ok}) THEN {why} END" for ok, why in checks),
        ]
    )
    failing = (
        f"WHEN NOT ({ok}) THEN {sql_literal(c.name)}"
        for c, (ok, _) in zip(table.columns, checks, strict=True)
    )
    columns = " ".join(["CASE WHEN NOT is_object THEN NULL", *failing, "END"])
    bad = " UNION ALL ".join(
        f"SELECT file, line, {columns} AS column_name, concat_ws('; ', {reasons}) AS reason, "
        f"text AS raw_row FROM ({sql}) WHERE NOT ({good})"
        for sql in lines
    )
    rejects = f"SELECT {REJECT_COLUMNS} FROM ({bad}) ORDER BY file, line"
    return RawScan(select, rejects, list(files))


def text_lines_sql(url: str) -> str:
    """``file, line, text``: one row per non-blank line of a text file, numbered from 1."""
    return f"""
SELECT file, line, text FROM (
  SELECT filename AS file, unnest(range(1, len(l) + 1)) AS line,
         rtrim(unnest(l), chr(13)) AS text
  FROM (SELECT filename, string_split(content, chr(10)) AS l FROM read_text({sql_literal(url)}))
)
WHERE trim(text) <> ''"""


def _json_lines(url: str) -> str:
    """One row per non-blank line of a file, numbered from 1, parsed when valid JSON."""
    return f"""
SELECT file, line, text, is_valid,
       CASE WHEN is_valid THEN json_type(CAST(text AS JSON)) = 'OBJECT' ELSE false END
         AS is_object,
       CASE WHEN is_valid THEN CAST(text AS JSON) END AS j
FROM (SELECT file, line, text, json_valid(text) AS is_valid FROM ({text_lines_sql(url)}))"""


def _json_path(column: Column) -> str:
    return sql_literal('$."' + column.name.replace("\\", "\\\\").replace('"', '\\"') + '"')


def _json_value(column: Column) -> str:
    """The typed value of a column in ``j``; VARCHAR takes any JSON as its text."""
    path = _json_path(column)
    if column.type == "VARCHAR":
        value = f"json_extract_string(j, {path})"
    elif NESTED_TYPE_RE.search(column.type):
        value = f"TRY_CAST(json_extract(j, {path}) AS {column.type})"
    else:
        value = f"TRY_CAST(json_extract_string(j, {path}) AS {column.type})"
    return f"{value} AS {sql_ident(column.name)}"


def _json_check(column: Column) -> tuple[str, str]:
    """(condition that the column's value fits its type, reason when it does not)."""
    path = _json_path(column)
    raw = f"json_extract(j, {path})"
    text = f"json_extract_string(j, {path})"
    absent = f"({raw} IS NULL OR json_type({raw}) = 'NULL')"
    if column.type == "VARCHAR":
        ok = "true"
    elif NESTED_TYPE_RE.search(column.type):
        ok = f"({absent} OR TRY_CAST({raw} AS {column.type}) IS NOT NULL)"
    elif column.type in INTEGER_TYPES:
        ok = (
            f"({absent} OR (regexp_full_match(trim({text}), '[+-]?[0-9]+') "
            f"AND TRY_CAST({text} AS {column.type}) IS NOT NULL))"
        )
    else:
        ok = f"({absent} OR TRY_CAST({text} AS {column.type}) IS NOT NULL)"
    why = (
        f"'column ' || {sql_literal(sql_ident(column.name))} || ': ' || "
        f"CAST({raw} AS VARCHAR) || ' is not a ' || {sql_literal(column.type)}"
    )
    return ok, why


def _plan_parquet(table: RawTable, files: list[str]) -> RawScan:
    parts = [
        f"SELECT {_file_columns(table, url)} "
        f"FROM read_parquet({sql_literal(url)}, hive_partitioning=false)"
        for url in files
    ]
    return RawScan(_assemble(table, parts), _empty_rejects(), list(files))


# --- shared SQL pieces ---------------------------------------------------------------


def _file_columns(table: RawTable, url: str, *, data: str = "*") -> str:
    """A file's data columns plus its partition values as typed literals."""
    values = file_partitions(url, table.location)
    literals = []
    for c in table.partition_keys:
        value = values.get(c.name)
        literal = "NULL" if value is None else sql_literal(value)
        literals.append(f"CAST({literal} AS {c.type}) AS {sql_ident(c.name)}")
    return ", ".join([data, *literals])


def relative_to_location(url: str, location: str) -> str:
    """The part of a file's URL below the table location (``date=…/f.csv``)."""
    marker = "/" + location.strip("/") + "/"
    at = url.rfind(marker)
    return url[at + len(marker) :] if at >= 0 else url.rsplit("/", 1)[-1]


def file_partitions(url: str, location: str) -> dict[str, str | None]:
    """``key=value`` segments of a file's path below the table location; any other
    folder level N below it is ``partition_N`` (Glue's name; the crawler's rule)."""
    values: dict[str, str | None] = {}
    for level, segment in enumerate(relative_to_location(url, location).split("/")[:-1]):
        pair = partition_segment(segment)
        if pair is not None:
            key, value = pair
            values[key] = None if value == HIVE_NULL else value
        else:
            values[f"partition_{level}"] = unquote(segment)
    return values


def _assemble(table: RawTable, parts: list[str]) -> str:
    """Union the per-file reads by name over a typed skeleton; keep whole-row-good rows.

    The skeleton guarantees every column exists with its crawled type; the filter names
    every column so DuckDB parses (and rejects) whole rows even under ``count(*)``.
    """
    columns = table.all_columns
    names = ", ".join(sql_ident(c.name) for c in columns)
    union = "\nUNION ALL BY NAME\n".join([_skeleton(columns), *parts])
    casts = ", ".join(
        f"CAST({sql_ident(c.name)} AS {c.type}) AS {sql_ident(c.name)}" for c in columns
    )
    return f"SELECT {casts} FROM (\n{union}\n) WHERE hash({names}) IS NOT NULL"


def _skeleton(columns: list[Column]) -> str:
    typed = ", ".join(f"CAST(NULL AS {c.type}) AS {sql_ident(c.name)}" for c in columns)
    return f"SELECT {typed} WHERE false"


def _empty_select(table: RawTable) -> str:
    return _skeleton(table.all_columns)


def _empty_rejects() -> str:
    return (
        "SELECT CAST(NULL AS VARCHAR) AS file, CAST(NULL AS BIGINT) AS line, "
        "CAST(NULL AS VARCHAR) AS column_name, CAST(NULL AS VARCHAR) AS reason, "
        "CAST(NULL AS VARCHAR) AS raw_row WHERE false"
    )


def sql_literal(text: str) -> str:
    """A SQL string literal (DuckDB and the crawler build SQL from file names)."""
    return "'" + text.replace("'", "''") + "'"


def sql_ident(name: str) -> str:
    """A quoted SQL identifier: column names come from files and may hold anything."""
    return '"' + name.replace('"', '""') + '"'
