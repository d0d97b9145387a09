"""One SQL surface: a DuckDB connection where raw, curated and warehouse tables have names.

Before a statement runs, every ``db.table`` it names is bound as a view:

* a crawled raw table reads its files straight from the lake with the crawled schema
  (malformed rows go to the scan's rejects, never silently dropped);
* an Iceberg table reads the Parquet files its current (or pinned) snapshot plans,
  which is several times faster than materialising the scan;
* otherwise a warehouse table ``schema.table`` (or ``warehouse.schema.table``) is
  attached read-only, and released when the session closes.

Catalog names win over warehouse names; ``warehouse.schema.table`` reaches a warehouse
table that shares its name with a catalog table.

A session with a bookmark (a bookmarked job's run) reads only the raw files and Iceberg
data files the bookmark has not seen, and tags every raw row with its file's lake key
(``_lakelet_file``), so the run can replace a changed file's rows in its output.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from lakelet.catalog.names import TableName
from lakelet.errors import LakeletError, SqlError, TableNotFoundError
from lakelet.jobs.runs import Reject
from lakelet.jobs.sqltext import TableRef, parse_one_statement, substitute_params, table_refs

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

    from lakelet.catalog.raw import RawTable
    from lakelet.catalog.rawscan import RawScan, ScanCount
    from lakelet.jobs.bookmarks import BookmarkedRead
    from lakelet.project import Project

WAREHOUSE_CATALOG = "warehouse"
BoundKind = Literal["raw", "iceberg", "warehouse"]


@dataclass(frozen=True)
class BoundTable:
    """A name the session resolved, and what it resolved to."""

    ref: TableRef
    kind: BoundKind
    snapshot_id: int | None = None
    scan: RawScan | None = None
    partial: bool = False
    """Only part of the table is read: what was added since the bookmark."""


class Session:
    """A short-lived DuckDB connection bound to a project's tables.

    Use it as a context manager; it holds no file lock on the warehouse after closing.
    """

    def __init__(
        self,
        project: Project,
        *,
        snapshots: Mapping[str, int] | None = None,
        bookmark: BookmarkedRead | None = None,
    ) -> None:
        import duckdb

        self._project = project
        self._bookmark = bookmark
        self._pinned = dict(snapshots or {})
        self._con: duckdb.DuckDBPyConnection = duckdb.connect(":memory:")
        self._bound: dict[TableRef, BoundTable] = {}
        self._scan_ids = 0
        self._counted: dict[TableRef, ScanCount] = {}
        self._stage_dir: tempfile.TemporaryDirectory[str] | None = None
        if project.store.root.startswith("s3://"):
            self._con.register_filesystem(project.store.filesystem())

    @property
    def project_root(self) -> Path:
        return self._project.root

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        return self._con

    @property
    def bound(self) -> list[BoundTable]:
        return list(self._bound.values())

    def __enter__(self) -> Session:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._con.close()
        if self._stage_dir is not None:
            self._stage_dir.cleanup()
            self._stage_dir = None

    def _staging(self) -> Path:
        """A folder for decompressed copies of files DuckDB cannot read, removed on close."""
        if self._stage_dir is None:
            self._stage_dir = tempfile.TemporaryDirectory(prefix="lakelet-stage-")
        return Path(self._stage_dir.name)

    # --- binding -------------------------------------------------------------------

    def bind_statement(self, sql: str, *, source: str = "SQL") -> None:
        """Bind every table the statement names; unknown names fail before running."""
        statement = parse_one_statement(sql, source=source)
        for ref in table_refs(statement):
            self.bind(ref)

    def bind(self, ref: TableRef) -> BoundTable:
        if ref in self._bound:
            return self._bound[ref]
        if ref.catalog == WAREHOUSE_CATALOG:
            bound = self._bind_warehouse(ref)
        elif ref.catalog:
            raise SqlError(
                f"unknown catalog {ref.catalog!r} in {ref}: use DB.TABLE for the lake's "
                f"catalog or {WAREHOUSE_CATALOG}.SCHEMA.TABLE for the warehouse"
            )
        else:
            bound = self._bind_catalog_or_warehouse(ref)
        self._bound[ref] = bound
        return bound

    def _bind_catalog_or_warehouse(self, ref: TableRef) -> BoundTable:
        catalog = self._project.catalog
        try:
            name = TableName.parse(f"{ref.db}.{ref.name}")
        except LakeletError:
            name = None
        kind = catalog.kind(name) if name is not None else None
        if name is not None and kind == "raw":
            return self._bind_raw(ref, name)
        if name is not None and kind == "iceberg":
            return self._bind_iceberg(ref, name)
        warehouse = self._project.warehouse
        if warehouse.has_table(f"{ref.db}.{ref.name}"):
            return self._bind_warehouse(ref)
        known = [str(e.name) for e in catalog.tables()]
        known += [f"{t} (warehouse)" for t in warehouse.tables()]
        raise TableNotFoundError(
            f"no table {ref.db}.{ref.name} in the catalog or the warehouse; "
            f"known tables: {', '.join(known) or 'none yet (crawl or run a job first)'}"
        )

    def _bind_raw(self, ref: TableRef, name: TableName) -> BoundTable:
        from lakelet.catalog.rawscan import plan_raw_scan, raw_files

        table = self._project.catalog.raw_table(name)
        files = raw_files(self._project.store, table)
        if not files:
            raise SqlError(f"raw table {name} has no data files under {table.location}")
        self._scan_ids += 1
        scan_id = f"lakelet_scan_{self._scan_ids}"
        filesystem = self._project.store.filesystem()
        if self._bookmark is None:
            scan = plan_raw_scan(
                table, files, scan_id=scan_id, filesystem=filesystem, stage_dir=self._staging()
            )
        else:
            from lakelet.catalog.rawscan.binary import default_opener

            files = self._bookmark.new_raw_files(
                str(name), table.location, files, default_opener(filesystem)
            )
            scan = self._provenance_scan(table, files, scan_id, filesystem)
        for relation, load in scan.arrow_tables.items():
            self._con.register(relation, load())
        self._create_view(ref, scan.select_sql)
        return BoundTable(ref, "raw", scan=scan)

    def _provenance_scan(
        self, table: RawTable, files: list[str], scan_id: str, filesystem: Any
    ) -> RawScan:
        """A scan of ``files`` whose rows carry their file's lake key: one scan per file,
        each with its key as a literal column, unioned."""
        from lakelet.catalog.rawscan import plan_raw_scan, sql_ident, sql_literal
        from lakelet.catalog.rawscan.core import union_scans
        from lakelet.jobs.bookmarks import PROVENANCE_COLUMN, lake_key

        if PROVENANCE_COLUMN in {c.name for c in table.all_columns}:
            raise SqlError(
                f"raw table {table.table_name} has a column {PROVENANCE_COLUMN}, the name a "
                "bookmarked job gives each row's file; rename that column in the files"
            )
        column = sql_ident(PROVENANCE_COLUMN)
        if not files:
            empty = plan_raw_scan(table, [], scan_id=scan_id)
            select = f"SELECT *, CAST(NULL AS VARCHAR) AS {column} FROM ({empty.select_sql})"
            return replace(empty, select_sql=select)
        scans = [
            plan_raw_scan(
                table,
                [url],
                scan_id=f"{scan_id}_{index}",
                filesystem=filesystem,
                stage_dir=self._staging(),
            )
            for index, url in enumerate(files)
        ]
        selects = [
            f"SELECT *, {sql_literal(lake_key(url, table.location))} AS {column} "
            f"FROM ({scan.select_sql})"
            for url, scan in zip(files, scans, strict=True)
        ]
        return union_scans(scans, selects)

    def _bind_iceberg(self, ref: TableRef, name: TableName) -> BoundTable:
        catalog = self._project.catalog
        snapshot_id = self._pinned.get(str(name)) or catalog.current_snapshot_id(name)
        files = catalog.data_files(name, snapshot_id) if snapshot_id is not None else []
        schema = catalog.load_iceberg(name).schema()
        schema_names = [f.name for f in schema.fields]
        partial = False
        if self._bookmark is not None and snapshot_id is not None and files is not None:
            every = len(files)
            files = self._bookmark.new_iceberg_files(str(name), catalog, snapshot_id, files)
            partial = len(files) < every
            if not files:  # nothing new since the bookmark
                relation = f"lakelet_arrow_{len(self._bound)}"
                self._con.register(relation, schema.as_arrow().empty_table())
                self._create_view(ref, f"SELECT * FROM {relation}")
                return BoundTable(ref, "iceberg", snapshot_id=snapshot_id, partial=every > 0)
        if files:
            from pyiceberg.schema import make_compatible_name

            # pyiceberg writes names Avro cannot hold (spaces, "count_star()") escaped
            # into the Parquet files; read them so and give them their names back.
            columns = ", ".join(
                f"{_quote(make_compatible_name(c))} AS {_quote(c)}" for c in schema_names
            )
            listing = ", ".join(_literal(f) for f in files)
            select = f"SELECT {columns} FROM read_parquet([{listing}], union_by_name = true)"
        else:
            # No files (empty table) or delete files to merge: let pyiceberg read it.
            arrow = catalog.read_arrow(name, snapshot_id) if snapshot_id is not None else None
            if arrow is None:
                arrow = catalog.load_iceberg(name).schema().as_arrow().empty_table()
            relation = f"lakelet_arrow_{len(self._bound)}"
            self._con.register(relation, arrow)
            select = f"SELECT * FROM {relation}"
        self._create_view(ref, select)
        return BoundTable(ref, "iceberg", snapshot_id=snapshot_id, partial=partial)

    def _bind_warehouse(self, ref: TableRef) -> BoundTable:
        warehouse = self._project.warehouse
        target = f"{ref.db}.{ref.name}"
        if not warehouse.has_table(target):
            raise TableNotFoundError(
                f"no table {target} in the warehouse; warehouse tables: "
                f"{', '.join(warehouse.tables()) or 'none yet (load one with lakelet load)'}"
            )
        if ref.catalog:
            attached = {
                r[0]
                for r in self._con.execute(
                    "SELECT database_name FROM duckdb_databases()"
                ).fetchall()
            }
            if ref.catalog not in attached:
                self._con.execute(f"ATTACH ':memory:' AS {_quote(ref.catalog)}")
        self._con.execute(f"CREATE SCHEMA IF NOT EXISTS {_view_schema(ref)}")
        warehouse.register(self._con, target, str(ref))
        return BoundTable(ref, "warehouse")

    def _create_view(self, ref: TableRef, select_sql: str) -> None:
        import duckdb

        try:
            self._con.execute(f"CREATE SCHEMA IF NOT EXISTS {_view_schema(ref)}")
            self._con.execute(f"CREATE OR REPLACE VIEW {_view_name(ref)} AS {select_sql}")
        except duckdb.Error as exc:
            raise SqlError(f"cannot read {ref}: {duckdb_message(exc)}") from exc

    # --- running -------------------------------------------------------------------

    def execute(
        self, sql: str, *, params: Mapping[str, str] | None = None, source: str = "SQL"
    ) -> pa.Table:
        """Bind the names a statement uses, run it and return its rows as Arrow."""
        import duckdb

        text = substitute_params(sql, params or {}, source=source)
        self.bind_statement(text, source=source)
        try:
            relation: Any = self._con.sql(text)
            if relation is None:  # a statement that returns no rows
                import pyarrow as pa

                return pa.table({})
            table: pa.Table = relation.to_arrow_table()
            return table
        except duckdb.Error as exc:
            raise SqlError(f"{source}: {duckdb_message(exc)}") from exc

    def count(self, ref: TableRef) -> int:
        """Rows of ``ref`` a query sees (for a raw table: its rows that were not rejected)."""
        bound = self._bound.get(ref)
        if bound is not None and bound.scan is not None:
            return self._scan_count(bound).accepted
        row = self._con.execute(f"SELECT count(*) FROM {_view_name(ref)}").fetchone()
        return int(row[0]) if row else 0

    def rejects(self) -> list[Reject]:
        """Rows the raw scans so far could not read, with file, line and reason."""
        found: list[Reject] = []
        for bound in self._bound.values():
            if bound.scan is None:
                continue
            for file, line, column, reason, raw in self._scan_count(bound).rejects:
                found.append(
                    Reject(
                        table=f"{bound.ref.db}.{bound.ref.name}",
                        file=bound.scan.originals.get(str(file), str(file)),
                        line=None if line is None else int(line),
                        column=column,
                        reason=str(reason),
                        raw=raw,
                    )
                )
        return found

    def _scan_count(self, bound: BoundTable) -> ScanCount:
        """One pass counts a raw scan's rows and finds its rejects (run after the query:
        the reader records its rejects when a scan ends)."""
        from lakelet.catalog.rawscan import count_scan

        assert bound.scan is not None
        if bound.ref not in self._counted:
            self._counted[bound.ref] = count_scan(self._con, bound.scan)
        return self._counted[bound.ref]


def query(project: Project, sql: str, *, params: Mapping[str, str] | None = None) -> pa.Table:
    """Run one statement across raw, curated and warehouse tables; return Arrow."""
    with Session(project) as session:
        return session.execute(sql, params=params)


def _view_schema(ref: TableRef) -> str:
    return f"{_quote(ref.catalog)}.{_quote(ref.db)}" if ref.catalog else _quote(ref.db)


def _view_name(ref: TableRef) -> str:
    return f"{_view_schema(ref)}.{_quote(ref.name)}"


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def duckdb_message(exc: Any) -> str:
    """DuckDB's first line, without the internal 'LINE 1:' caret dump."""
    text = str(exc).strip()
    return re.split(r"\n\s*\n|\nLINE \d+:", text)[0].strip()
