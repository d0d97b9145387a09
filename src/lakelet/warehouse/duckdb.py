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
from lakelet.warehouse.base import LoadMode, LoadResult
from lakelet.warehouse.ddl import create_table_sql, qualified_name, quote_identifier
from lakelet.warehouse.request import LoadRequest, Target
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
        self, data: pa.Table, target: str, *, mode: LoadMode = "replace", keys: Sequence[str] = ()
    ) -> LoadResult:
        request = LoadRequest.check(data, target, mode, keys)
        ddl = create_table_sql(
            request.target.schema, request.target.table, data.schema, request.keys
        )
        import duckdb

        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect(read_only=False) as con:
            con.register(INCOMING, data)
            con.begin()
            try:
                result = _run_load(con, request, ddl, data)
                con.commit()
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
    def _connect(self, *, read_only: bool) -> Iterator[duckdb.DuckDBPyConnection]:
        import duckdb

        deadline = time.monotonic() + self.lock_timeout
        delay = 0.05
        while True:
            try:
                con = duckdb.connect(str(self.path), read_only=read_only)
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
    con: duckdb.DuckDBPyConnection, request: LoadRequest, ddl: str, data: pa.Table
) -> LoadResult:
    target = request.target
    exists = _exists(con, target)
    inserted = updated = 0
    if request.mode == "replace" or not exists:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(target.schema)}")
        con.execute(f"DROP TABLE IF EXISTS {_sql_name(target)}")
        con.execute(ddl)
        inserted = _insert(con, target, {c: c for c in data.column_names})
    elif request.mode == "append":
        columns = _matching_columns(con, target)
        inserted = _insert(con, target, columns)
    else:
        columns = _matching_columns(con, target)
        inserted, updated = _merge(con, target, columns, request.keys)
    return LoadResult(
        target=str(target),
        mode=request.mode,
        rows_loaded=data.num_rows,
        rows_inserted=inserted,
        rows_updated=updated,
        rows_in_target=_count(con, f"SELECT count(*) FROM {_sql_name(target)}"),
        created=not exists,
    )


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


def _matching_columns(con: duckdb.DuckDBPyConnection, target: Target) -> dict[str, str]:
    """Incoming → target column names, if every incoming column fits its target column.

    Names match as SQL matches them (ignoring case); target columns missing from the
    data are left to their default (NULL).
    """
    existing = {name.lower(): (name, sql_type) for name, sql_type in _describe(con, target)}
    matched: dict[str, str] = {}
    for name, sql_type in _incoming_types(con).items():
        if name.lower() not in existing:
            known = ", ".join(n for n, _ in existing.values())
            raise LoadError(
                f"column {name!r} is not in the warehouse table {target} (columns: {known}); "
                "load with --mode replace to recreate the table with the new columns"
            )
        target_name, target_type = existing[name.lower()]
        if not widens(sql_type, target_type):
            raise LoadError(
                f"column {name!r} is {sql_type} in the data but {target_type} in {target}, "
                "and converting it could change values; cast it in the job that writes "
                "the data, or load with --mode replace to change the column's type"
            )
        matched[name] = target_name
    return matched


def _incoming_types(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    rows = con.execute(f"DESCRIBE SELECT * FROM {INCOMING}").fetchall()
    return {str(row[0]): str(row[1]) for row in rows}


def _describe(con: duckdb.DuckDBPyConnection, target: Target) -> list[tuple[str, str]]:
    rows = con.execute(f"DESCRIBE {_sql_name(target)}").fetchall()
    return [(str(row[0]), str(row[1])) for row in rows]


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
