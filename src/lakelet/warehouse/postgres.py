"""A PostgreSQL server as the warehouse: the path to Redshift, which speaks its protocol.

Each operation opens its own connection and closes it, so nothing is held between
calls. A load is one transaction: typed DDL (built with sqlglot, rendered in the
target dialect), then the checked rows streamed with one ``COPY … FROM STDIN`` (CSV),
never row by row. ``merge`` copies into a temporary staging table and then updates
matching rows and inserts the others from it. Statements that change the warehouse are
written once in PostgreSQL syntax and transpiled by sqlglot to the target dialect;
``COPY`` and the catalog queries are PostgreSQL protocol and go as they are.

With ``dialect="redshift"`` the DDL is Redshift's (``VARCHAR(MAX)``, ``SUPER``,
``DISTKEY``/``SORTKEY``) while the wire stays PostgreSQL's; a real Redshift cluster
loads ``COPY`` from S3, not from a client stream, so this targets PostgreSQL servers
that stand in for Redshift.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from lakelet.errors import LoadError, MissingExtraError, TableNotFoundError, WarehouseError
from lakelet.warehouse.base import LOAD_ERRORS_TABLE, LoadMode, LoadResult, RowError
from lakelet.warehouse.ddl import quote_identifier
from lakelet.warehouse.postgres_ddl import (
    Dialect,
    arrow_comment,
    arrow_from_comment,
    arrow_type,
    canonical_type,
    create_table,
    is_nested,
    sql_type,
)
from lakelet.warehouse.request import LoadRequest, Target
from lakelet.warehouse.validation import (
    RejectedRowsError,
    TargetColumn,
    arrow_widens,
    check_rows,
    errors_table,
    new_load_id,
)

if TYPE_CHECKING:
    import psycopg
    import pyarrow as pa

STAGING = "lakelet_staging"
COPY_BATCH_ROWS = 65536
_COLUMNS_SQL = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       col_description(a.attrelid, a.attnum)
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p')
  AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""
_TABLES_SQL = """
SELECT table_schema, table_name FROM information_schema.tables
WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('information_schema', 'pg_catalog')
  AND table_schema NOT LIKE 'pg\\_%'
ORDER BY 1, 2
"""


class PostgresWarehouse:
    """Schema-on-write tables in a PostgreSQL database (``postgresql://…``)."""

    def __init__(self, uri: str, *, dialect: Dialect = "postgres") -> None:
        self.uri = uri
        self.dialect: Dialect = dialect

    def __repr__(self) -> str:
        return f"PostgresWarehouse({_redacted(self.uri)!r}, dialect={self.dialect!r})"

    # --- loading -------------------------------------------------------------------

    def load(
        self,
        data: pa.Table,
        target: str,
        *,
        mode: LoadMode = "replace",
        keys: Sequence[str] = (),
        max_errors: int = 0,
        dry_run: bool = False,
        source: str = "",
        dist_key: str | None = None,
        sort_key: Sequence[str] = (),
    ) -> LoadResult:
        request = LoadRequest.check(
            data, target, mode, keys, max_errors=max_errors, dist_key=dist_key, sort_key=sort_key
        )
        ddl = create_table(
            request.target,
            data.schema,
            dialect=self.dialect,
            keys=request.keys,
            dist_key=request.dist_key,
            sort_key=request.sort_key,
        )
        psycopg = _psycopg()
        load_id = new_load_id()
        with self._connect() as conn:
            try:
                result = self._run_load(conn, request, ddl, data, load_id, dry_run=dry_run)
                if result.errors and not dry_run:
                    self._record_errors(conn, load_id, request.target, source, result.errors)
                if dry_run:
                    conn.rollback()
                else:
                    conn.commit()
            except RejectedRowsError as exc:
                conn.rollback()
                if not dry_run:
                    self._record_errors(conn, load_id, request.target, source, exc.errors)
                    conn.commit()
                raise
            except psycopg.Error as exc:
                _rollback(conn)
                raise _load_error(exc, request.target) from exc
            except BaseException:
                _rollback(conn)
                raise
        return result

    def _run_load(
        self,
        conn: psycopg.Connection[Any],
        request: LoadRequest,
        ddl: str,
        data: pa.Table,
        load_id: str,
        *,
        dry_run: bool,
    ) -> LoadResult:
        target = request.target
        name = _sql_name(target)
        exists = _exists(conn, target)
        fresh = request.mode == "replace" or not exists
        if fresh:
            self._execute(conn, f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(target.schema)}")
            self._execute(conn, f"DROP TABLE IF EXISTS {name}")
            conn.execute(ddl.encode())
            for field in data.schema:
                if is_nested(field.type):
                    comment = "'" + arrow_comment(field.type) + "'"
                    column = f"{name}.{quote_identifier(field.name)}"
                    self._execute(conn, f"COMMENT ON COLUMN {column} IS {comment}")
        checked = check_rows(data, request, _target_columns(conn, target), self._accepts)
        if checked.rows_rejected > request.max_errors:
            raise RejectedRowsError(target, checked, request.max_errors)
        inserted = updated = 0
        if fresh or request.mode == "append":
            inserted = _copy(conn, name, checked.data, checked.columns)
        else:
            inserted, updated = self._merge(conn, target, checked.data, checked.columns, request)
        if fresh:  # the table holds just what was copied: no need to count it
            in_target = inserted
        else:
            row = conn.execute(f"SELECT count(*) FROM {name}").fetchone()
            in_target = int(row[0]) if row else 0
        return LoadResult(
            target=str(target),
            mode=request.mode,
            rows_loaded=checked.data.num_rows,
            rows_inserted=inserted,
            rows_updated=updated,
            rows_in_target=in_target,
            created=not exists,
            rows_rejected=checked.rows_rejected,
            dry_run=dry_run,
            load_id=load_id,
            errors=checked.errors,
        )

    def _merge(
        self,
        conn: psycopg.Connection[Any],
        target: Target,
        data: pa.Table,
        columns: dict[str, str],
        request: LoadRequest,
    ) -> tuple[int, int]:
        """Upsert through a staging table; returns (rows inserted, rows updated)."""
        name = _sql_name(target)
        into = ", ".join(quote_identifier(c) for c in columns.values())
        self._execute(
            conn, f"CREATE TEMPORARY TABLE {STAGING} AS SELECT {into} FROM {name} WHERE FALSE"
        )
        staged = {target_name: target_name for target_name in columns.values()}
        _copy(conn, STAGING, data.rename_columns(list(columns.values())), staged)
        keys = [columns[k] for k in request.keys]
        on = " AND ".join(f"{name}.{quote_identifier(k)} = src.{quote_identifier(k)}" for k in keys)
        values = [c for c in columns.values() if c not in keys]
        updated = 0
        if values:
            assignments = ", ".join(
                f"{quote_identifier(c)} = src.{quote_identifier(c)}" for c in values
            )
            updated = self._execute(
                conn, f"UPDATE {name} SET {assignments} FROM {STAGING} AS src WHERE {on}"
            )
        matches = " AND ".join(
            f"tgt.{quote_identifier(k)} = src.{quote_identifier(k)}" for k in keys
        )
        select = ", ".join(f"src.{quote_identifier(c)}" for c in columns.values())
        inserted = self._execute(
            conn,
            f"INSERT INTO {name} ({into}) SELECT {select} FROM {STAGING} AS src "
            f"WHERE NOT EXISTS (SELECT 1 FROM {name} AS tgt WHERE {matches})",
        )
        self._execute(conn, f"DROP TABLE {STAGING}")
        return inserted, updated

    def _record_errors(
        self,
        conn: psycopg.Connection[Any],
        load_id: str,
        target: Target,
        source: str,
        errors: Sequence[RowError],
    ) -> None:
        """Append a load's rejected rows to ``lakelet.load_errors`` (created on first use)."""
        table = errors_table(load_id, target, source, errors)
        where = Target.parse(LOAD_ERRORS_TABLE)
        if not _exists(conn, where):
            self._execute(conn, f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(where.schema)}")
            conn.execute(create_table(where, table.schema, dialect=self.dialect).encode())
        _copy(conn, _sql_name(where), table, {c: c for c in table.column_names})

    def _accepts(self, incoming: pa.DataType, column: TargetColumn) -> bool:
        if is_nested(incoming):
            return False  # nested columns take exactly the type they were created with
        ours = sql_type(column.name, incoming, self.dialect).sql("postgres")
        return canonical_type(ours) == canonical_type(column.sql_type) or arrow_widens(
            incoming, column.arrow_type
        )

    def _execute(self, conn: psycopg.Connection[Any], sql: str) -> int:
        """Run a statement written in PostgreSQL syntax, transpiled to the target dialect."""
        import sqlglot

        (statement,) = sqlglot.transpile(sql, read="postgres", write=self.dialect)
        return conn.execute(statement.encode()).rowcount

    # --- reading -------------------------------------------------------------------

    def tables(self) -> list[str]:
        with self._connect() as conn:
            return [str(t) for t in _tables(conn)]

    def has_table(self, target: str) -> bool:
        parsed = Target.parse(target)
        with self._connect() as conn:
            return _exists(conn, parsed)

    def read_arrow(self, target: str) -> pa.Table:
        import pyarrow as pa

        parsed = Target.parse(target)
        with self._connect() as conn:
            columns = _target_columns(conn, parsed)
            if not columns:
                raise self._not_found(parsed, _tables(conn))
            select = ", ".join(_read_expression(c) for c in columns)
            rows = conn.execute(f"SELECT {select} FROM {_sql_name(parsed)}").fetchall()
        values = list(zip(*rows, strict=True)) if rows else [() for _ in columns]
        arrays = [
            pa.array(list(v), type=c.arrow_type) for c, v in zip(columns, values, strict=True)
        ]
        return pa.table(arrays, names=[c.name for c in columns])

    def register(self, con: Any, target: str, as_name: str) -> None:
        """Make ``target`` readable as the view ``as_name`` in the DuckDB connection ``con``.

        DuckDB cannot reach PostgreSQL here (its postgres extension cannot be
        downloaded), so the table's current rows are read into Arrow and the view
        reads them: later loads are not seen until the table is registered again.
        """
        parsed = Target.parse(target)
        if not as_name:
            raise WarehouseError(f"register {parsed}: the view needs a name")
        data = self.read_arrow(target)
        relation = f"lakelet_pg_{parsed.schema}_{parsed.table}"
        con.register(relation, data)
        view = ".".join(quote_identifier(part) for part in as_name.split("."))
        kind = "VIEW" if "." in as_name else "TEMP VIEW"
        con.execute(f"CREATE OR REPLACE {kind} {view} AS SELECT * FROM {relation}")

    # --- connections ---------------------------------------------------------------

    @contextmanager
    def _connect(self) -> Iterator[psycopg.Connection[Any]]:
        psycopg = _psycopg()
        from psycopg.types.json import set_json_loads

        try:
            conn = psycopg.connect(self.uri)
        except psycopg.Error as exc:
            raise WarehouseError(
                f"cannot connect to the warehouse {_redacted(self.uri)}: "
                f"{str(exc).strip().splitlines()[-1] if str(exc).strip() else exc}; "
                "check warehouse.uri and that the server is running"
            ) from exc
        try:
            set_json_loads(partial(json.loads, parse_float=Decimal), conn)
            conn.execute("SET TIME ZONE 'UTC'")
            yield conn
        finally:
            conn.close()

    def _not_found(self, target: Target, existing: Sequence[Target]) -> TableNotFoundError:
        known = ", ".join(str(t) for t in existing) or "none yet"
        return TableNotFoundError(
            f"no table {target} in the warehouse {_redacted(self.uri)} (tables: {known}); "
            f"load one with: lakelet load DATABASE.TABLE --into {target}"
        )


# --- COPY ------------------------------------------------------------------------------


def _copy(conn: psycopg.Connection[Any], into: str, data: pa.Table, columns: dict[str, str]) -> int:
    """Stream ``data`` into ``into`` with one ``COPY … FROM STDIN`` in CSV.

    Numbers, dates, timestamps, booleans and strings are written by Arrow's CSV writer
    as PostgreSQL reads them; other values are made PostgreSQL text by DuckDB first
    (nested values as JSON, bytes as ``\\x`` hex). Strings are always quoted, so an
    empty string stays distinct from a null (an empty unquoted field). Batches are
    made while earlier ones travel: a writer thread sends them, so the server parses
    one batch while the client makes the next.
    """
    import duckdb
    import pyarrow.csv as csv
    from psycopg.copy import QueuedLibpqWriter

    names = ", ".join(quote_identifier(columns[c]) for c in data.column_names)
    options = csv.WriteOptions(include_header=False, quoting_style="needed")
    statement = f"COPY {into} ({names}) FROM STDIN (FORMAT csv)".encode()
    renamed = data.rename_columns([f"c{i}" for i in range(data.num_columns)])
    with duckdb.connect() as con, conn.cursor() as cur:
        con.execute("SET TimeZone = 'UTC'")
        con.register("lakelet_incoming", renamed)
        text = con.sql(f"SELECT {_copy_columns(data)} FROM lakelet_incoming")
        with cur.copy(statement, writer=QueuedLibpqWriter(cur)) as copy:
            for batch in text.to_arrow_reader(COPY_BATCH_ROWS):
                buffer = io.BytesIO()
                csv.write_csv(batch, buffer, options)
                copy.write(buffer.getbuffer())
    return int(data.num_rows)


def _copy_columns(data: pa.Table) -> str:
    """DuckDB expressions for the columns of ``data`` (named ``c0``, ``c1``, …): as they
    are where Arrow writes them as PostgreSQL input, else as PostgreSQL text."""
    import pyarrow as pa

    expressions = []
    for i, field in enumerate(data.schema):
        column = quote_identifier(f"c{i}")
        dtype = field.type
        if _written_as_is(dtype):
            expressions.append(column)
            continue
        dtype = dtype.value_type if pa.types.is_dictionary(dtype) else dtype
        if is_nested(dtype):
            expressions.append(f"CAST(to_json({column}) AS VARCHAR)")
        elif (
            pa.types.is_binary(dtype)
            or pa.types.is_large_binary(dtype)
            or (pa.types.is_fixed_size_binary(dtype) or pa.types.is_binary_view(dtype))
        ):
            expressions.append(f"'\\x' || hex({column})")
        else:
            expressions.append(f"CAST({column} AS VARCHAR)")
    return ", ".join(expressions)


def _written_as_is(dtype: pa.DataType) -> bool:
    """Types whose Arrow CSV rendering PostgreSQL reads back as the same value."""
    import pyarrow as pa

    return (
        pa.types.is_integer(dtype)
        or pa.types.is_floating(dtype)
        or pa.types.is_decimal(dtype)
        or pa.types.is_boolean(dtype)
        or pa.types.is_date(dtype)
        or pa.types.is_string(dtype)
        or pa.types.is_large_string(dtype)
        or (pa.types.is_timestamp(dtype) and dtype.tz in (None, "UTC", "Etc/UTC"))
    )


# --- catalog queries -------------------------------------------------------------------


def _target_columns(conn: psycopg.Connection[Any], target: Target) -> list[TargetColumn]:
    found: list[TargetColumn] = []
    for name, sql, not_null, comment in conn.execute(
        _COLUMNS_SQL, [target.schema, target.table]
    ).fetchall():
        dtype, length = arrow_type(str(sql))
        dtype = arrow_from_comment(comment) or dtype
        found.append(TargetColumn(str(name), str(sql), dtype, not not_null, length))
    return found


def _read_expression(column: TargetColumn) -> str:
    """How to select a column so that psycopg returns values Arrow takes as its type."""
    import pyarrow as pa

    name = quote_identifier(column.name)
    native = canonical_type(column.sql_type) in ("JSONB", "JSON", "SUPER") and not (
        pa.types.is_string(column.arrow_type)
    )
    if pa.types.is_string(column.arrow_type) and not native:
        return f"CAST({name} AS TEXT)"
    return name


def _tables(conn: psycopg.Connection[Any]) -> list[Target]:
    rows = conn.execute(_TABLES_SQL).fetchall()
    return [Target(str(schema), str(table)) for schema, table in rows]


def _exists(conn: psycopg.Connection[Any], target: Target) -> bool:
    return bool(conn.execute(_COLUMNS_SQL, [target.schema, target.table]).fetchall())


def _sql_name(target: Target) -> str:
    return f"{quote_identifier(target.schema)}.{quote_identifier(target.table)}"


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError as exc:
        raise MissingExtraError("psycopg", "postgres", "a PostgreSQL warehouse") from exc
    return psycopg


def _redacted(uri: str) -> str:
    """The URI without its password, for messages."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


def _rollback(conn: psycopg.Connection[Any]) -> None:
    psycopg = _psycopg()
    with suppress(psycopg.Error):
        conn.rollback()


def _load_error(exc: Exception, target: Target) -> Exception:
    """A database error during a load, as a user error when the data caused it."""
    import psycopg.errors as pg

    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    diag = getattr(exc, "diag", None)
    if diag is not None and diag.message_detail:
        reason += f" ({diag.message_detail})"
    if isinstance(exc, pg.IntegrityError):
        return LoadError(f"the data violates a constraint of {target}, nothing loaded: {reason}")
    if isinstance(exc, pg.DataError):
        return LoadError(f"cannot load the data into {target}, nothing loaded: {reason}")
    return WarehouseError(f"loading into {target} failed, nothing loaded: {reason}")
