"""The default warehouse: one DuckDB file, opened for each operation and closed after it.

A DuckDB file admits one writing process at a time, so no connection outlives the call
that opened it: a long-running ``lakelet up`` and a ``lakelet load`` take turns instead
of locking each other out. A call that finds the file locked retries for
``lock_timeout`` seconds before failing with the holder's PID. Reads never create the
file. Every load runs in one transaction, so a failed load leaves the table as it was.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakelet.errors import LoadError, TableNotFoundError, WarehouseError
from lakelet.warehouse.base import LOAD_ERRORS_TABLE, LoadMode, LoadResult, RowError
from lakelet.warehouse.ddl import column_type, create_table_sql, qualified_name, quote_identifier
from lakelet.warehouse.request import LoadRequest, Target
from lakelet.warehouse.validation import (
    RejectedRowsError,
    TargetColumn,
    check_rows,
    errors_table,
    new_load_id,
)
from lakelet.warehouse.widening import widens

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

INCOMING = "lakelet_incoming"
ATTACH_ALIAS = "lakelet_warehouse"
SYSTEM_SCHEMAS = ("information_schema", "pg_catalog")
# Messages of errors that go away when the other holder of the file lets go of it.
_BUSY_MARKERS = ("Could not set lock", "different configuration", "Unique file handle conflict")


class DuckDBWarehouse:
    """Schema-on-write tables in a DuckDB file (``.lakelet/warehouse.duckdb``)."""

    def __init__(self, path: Path, *, lock_timeout: float = 10.0) -> None:
        self.path = path
        self.lock_timeout = lock_timeout

    def __repr__(self) -> str:
        return f"DuckDBWarehouse({str(self.path)!r})"

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
        ddl = create_table_sql(
            request.target.schema, request.target.table, data.schema, request.keys
        )
        import duckdb

        load_id = new_load_id()
        # A dry run against a warehouse that does not exist yet must not create the file:
        # an empty in-memory database behaves the same.
        in_memory = dry_run and not self.path.exists()
        if not in_memory:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect(read_only=False, in_memory=in_memory) as con:
            con.begin()
            try:
                result = _run_load(con, request, ddl, data, load_id, dry_run=dry_run)
                if result.errors and not dry_run:
                    _record_errors(con, load_id, request.target, source, result.errors)
                if dry_run:
                    _rollback(con)
                else:
                    con.commit()
            except RejectedRowsError as exc:
                _rollback(con)
                if not dry_run:
                    con.begin()
                    _record_errors(con, load_id, request.target, source, exc.errors)
                    con.commit()
                raise
            except duckdb.Error as exc:
                _rollback(con)
                raise _load_error(exc, request.target) from exc
            except BaseException:
                _rollback(con)
                raise
        return result

    # --- reading -------------------------------------------------------------------

    def tables(self) -> list[str]:
        if not self.path.exists():
            return []
        with self._connect(read_only=True) as con:
            return [str(t) for t in _tables(con)]

    def has_table(self, target: str) -> bool:
        parsed = Target.parse(target)
        if not self.path.exists():
            return False
        with self._connect(read_only=True) as con:
            return _exists(con, parsed)

    def read_arrow(self, target: str) -> pa.Table:
        parsed = Target.parse(target)
        if not self.path.exists():
            raise self._not_found(parsed, [])
        with self._connect(read_only=True) as con:
            if not _exists(con, parsed):
                raise self._not_found(parsed, _tables(con))
            table: pa.Table = con.sql(f"SELECT * FROM {_sql_name(parsed)}").to_arrow_table()
            return table

    def register(self, con: Any, target: str, as_name: str) -> None:
        """Make ``target`` readable as the view ``as_name`` (dotted, e.g. ``analytics.t``).

        The file is attached to ``con`` read-only (once per connection), so the view reads
        the table's current rows without copying them. The attachment lasts as long as
        ``con``: while it is open, this process cannot load into the warehouse, so close
        the connection once its queries are done.
        """
        parsed = Target.parse(target)
        if not as_name:
            raise WarehouseError(f"register {parsed}: the view needs a name")
        if not self.path.exists():
            raise self._not_found(parsed, [])
        alias = self._attach(con)
        if not _exists(con, parsed, catalog=alias):
            raise self._not_found(parsed, _tables(con, catalog=alias))
        # A plain name becomes a temporary view (works on read-only connections too); a
        # dotted one is created in its schema, which the caller has made.
        view = ".".join(quote_identifier(part) for part in as_name.split("."))
        kind = "VIEW" if "." in as_name else "TEMP VIEW"
        con.execute(
            f"CREATE OR REPLACE {kind} {view} AS "
            f"SELECT * FROM {quote_identifier(alias)}.{_sql_name(parsed)}"
        )

    # --- connections ---------------------------------------------------------------

    @contextmanager
    def _connect(
        self, *, read_only: bool, in_memory: bool = False
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        import duckdb

        deadline = time.monotonic() + self.lock_timeout
        delay = 0.05
        while True:
            try:
                con = duckdb.connect(
                    ":memory:" if in_memory else str(self.path), read_only=read_only
                )
                break
            except duckdb.Error as exc:
                busy = any(marker in str(exc) for marker in _BUSY_MARKERS)
                if busy and time.monotonic() < deadline:
                    time.sleep(delay)
                    delay = min(delay * 2, 0.5)
                    continue
                if busy:
                    raise WarehouseError(
                        f"the warehouse {self.path} is in use (waited {self.lock_timeout:g} s): "
                        f"{exc}. A DuckDB file admits one writer at a time; retry when the "
                        "other process (or an open connection registered with it) is done"
                    ) from exc
                raise WarehouseError(f"cannot open the warehouse {self.path}: {exc}") from exc
        try:
            con.execute("SET SESSION TimeZone = 'UTC'")
            yield con
        finally:
            con.close()

    def _attach(self, con: Any) -> str:
        """The name under which ``con`` sees the warehouse file, attaching it if needed."""
        import duckdb

        path = self.path.resolve()
        databases = con.execute("SELECT database_name, path FROM duckdb_databases()").fetchall()
        for name, attached in databases:
            if attached and Path(attached).resolve() == path:
                return str(name)
        taken = {name for name, _ in databases}
        alias, n = ATTACH_ALIAS, 1
        while alias in taken:
            n += 1
            alias = f"{ATTACH_ALIAS}_{n}"
        literal = "'" + str(path).replace("'", "''") + "'"
        try:
            con.execute(f"ATTACH {literal} AS {quote_identifier(alias)} (READ_ONLY)")
        except duckdb.Error as exc:
            raise WarehouseError(f"cannot attach the warehouse {self.path}: {exc}") from exc
        return alias

    def _not_found(self, target: Target, existing: Sequence[Target]) -> TableNotFoundError:
        known = ", ".join(str(t) for t in existing) or "none yet"
        return TableNotFoundError(
            f"no table {target} in the warehouse {self.path} (tables: {known}); "
            f"load one with: lakelet load DATABASE.TABLE --into {target}"
        )


# --- one load, inside its transaction ----------------------------------------------


def _run_load(
    con: duckdb.DuckDBPyConnection,
    request: LoadRequest,
    ddl: str,
    data: pa.Table,
    load_id: str,
    *,
    dry_run: bool,
) -> LoadResult:
    target = request.target
    exists = _exists(con, target)
    inserted = updated = 0
    fresh = request.mode == "replace" or not exists
    if fresh:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(target.schema)}")
        con.execute(f"DROP TABLE IF EXISTS {_sql_name(target)}")
        con.execute(ddl)
    checked = check_rows(data, request, _target_columns(con, target), _accepts)
    if checked.rows_rejected > request.max_errors:
        raise RejectedRowsError(target, checked, request.max_errors)
    con.register(INCOMING, checked.data)
    if fresh or request.mode == "append":
        inserted = _insert(con, target, checked.columns)
    else:
        inserted, updated = _merge(con, target, checked.columns, request.keys)
    return LoadResult(
        target=str(target),
        mode=request.mode,
        rows_loaded=checked.data.num_rows,
        rows_inserted=inserted,
        rows_updated=updated,
        rows_in_target=_count(con, f"SELECT count(*) FROM {_sql_name(target)}"),
        created=not exists,
        rows_rejected=checked.rows_rejected,
        dry_run=dry_run,
        load_id=load_id,
        errors=checked.errors,
    )


def _record_errors(
    con: duckdb.DuckDBPyConnection,
    load_id: str,
    target: Target,
    source: str,
    errors: Sequence[RowError],
) -> None:
    """Append a load's rejected rows to ``lakelet.load_errors`` (created on first use)."""
    table = errors_table(load_id, target, source, errors)
    where = Target.parse(LOAD_ERRORS_TABLE)
    if not _exists(con, where):
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(where.schema)}")
        con.execute(create_table_sql(where.schema, where.table, table.schema))
    con.register("lakelet_load_errors", table)
    con.execute(f"INSERT INTO {_sql_name(where)} SELECT * FROM lakelet_load_errors")
    con.unregister("lakelet_load_errors")


def _insert(con: duckdb.DuckDBPyConnection, target: Target, columns: dict[str, str]) -> int:
    """Bulk-insert the incoming Arrow table; ``columns`` maps incoming → target names."""
    into = ", ".join(quote_identifier(c) for c in columns.values())
    select = ", ".join(quote_identifier(c) for c in columns)
    return _count(con, f"INSERT INTO {_sql_name(target)} ({into}) SELECT {select} FROM {INCOMING}")


def _merge(
    con: duckdb.DuckDBPyConnection,
    target: Target,
    columns: dict[str, str],
    keys: Sequence[str],
) -> tuple[int, int]:
    """Upsert by ``keys``; returns (rows inserted, rows updated)."""
    on = " AND ".join(
        f"tgt.{quote_identifier(columns[k])} = src.{quote_identifier(k)}" for k in keys
    )
    new_rows = _count(
        con,
        f"SELECT count(*) FROM {INCOMING} AS src "
        f"WHERE NOT EXISTS (SELECT 1 FROM {_sql_name(target)} AS tgt WHERE {on})",
    )
    values = [c for c in columns if c not in keys]
    when_matched = ""
    if values:
        assignments = ", ".join(
            f"{quote_identifier(columns[c])} = src.{quote_identifier(c)}" for c in values
        )
        when_matched = f"WHEN MATCHED THEN UPDATE SET {assignments} "
    into = ", ".join(quote_identifier(c) for c in columns.values())
    select = ", ".join(f"src.{quote_identifier(c)}" for c in columns)
    affected = _count(
        con,
        f"MERGE INTO {_sql_name(target)} AS tgt USING {INCOMING} AS src ON ({on}) "
        f"{when_matched}WHEN NOT MATCHED THEN INSERT ({into}) VALUES ({select})",
    )
    return new_rows, affected - new_rows


def _target_columns(con: duckdb.DuckDBPyConnection, target: Target) -> list[TargetColumn]:
    """The target's columns: DuckDB's type names, and the Arrow types they come back as."""
    arrow = con.sql(f"SELECT * FROM {_sql_name(target)} LIMIT 0").to_arrow_table().schema
    described = con.execute(f"DESCRIBE {_sql_name(target)}").fetchall()
    return [
        TargetColumn(str(row[0]), str(row[1]), arrow.field(i).type, nullable=row[2] == "YES")
        for i, row in enumerate(described)
    ]


def _accepts(incoming: pa.DataType, column: TargetColumn) -> bool:
    return widens(column_type(column.name, incoming), column.sql_type)


# --- catalog queries ---------------------------------------------------------------


def _tables(con: Any, catalog: str | None = None) -> list[Target]:
    rows = con.execute(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_catalog = coalesce(?, current_database()) AND table_type = 'BASE TABLE' "
        "AND table_schema NOT IN (?, ?) ORDER BY 1, 2",
        [catalog, *SYSTEM_SCHEMAS],
    ).fetchall()
    return [Target(str(schema), str(table)) for schema, table in rows]


def _exists(con: Any, target: Target, catalog: str | None = None) -> bool:
    rows = con.execute(
        "SELECT count(*) FROM information_schema.tables "
        "WHERE table_catalog = coalesce(?, current_database()) AND table_type = 'BASE TABLE' "
        "AND table_schema = ? AND table_name = ?",
        [catalog, target.schema, target.table],
    ).fetchall()
    return bool(rows[0][0])


def _count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    # fetchall: DuckDB refuses new work on a connection with an unfinished result
    return int(con.execute(sql).fetchall()[0][0])


def _sql_name(target: Target) -> str:
    return qualified_name(target.schema, target.table)


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    """Roll back if a transaction is still open; the load's own error is the one to report."""
    import duckdb

    with suppress(duckdb.Error):
        con.rollback()


def _load_error(exc: Exception, target: Target) -> Exception:
    """A database error during a load, as a user error when the data caused it."""
    import duckdb

    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, duckdb.ConstraintException):
        return LoadError(f"the data violates a constraint of {target}, nothing loaded: {reason}")
    data_errors = (
        duckdb.ConversionException,
        duckdb.OutOfRangeException,
        duckdb.InvalidInputException,
        duckdb.TypeMismatchException,
    )
    if isinstance(exc, data_errors):
        return LoadError(f"cannot load the data into {target}, nothing loaded: {reason}")
    return WarehouseError(f"loading into {target} failed, nothing loaded: {reason}")
