"""The catalog: Iceberg tables (owned data) and crawled raw tables (files) by name.

Databases are Iceberg namespaces. Iceberg tables live in the lake under
``BUCKET=<database>/<table>/`` so a ``curated.daily_sales`` table sits in the
``curated`` bucket. Raw tables are recorded in the same database as the Iceberg
catalog's own tables (see :mod:`lakelet.catalog.raw`). pyiceberg is imported lazily:
it costs a second at start-up and most commands do not need it.
"""

from __future__ import annotations

import struct
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from lakelet.catalog.names import TableName, check_identifier
from lakelet.catalog.raw import RawTable, RawTableRegistry
from lakelet.config import S3Section
from lakelet.errors import CatalogError, ConflictError, TableNotFoundError, TableSchemaError
from lakelet.metadata import open_engine, resolve_sqlalchemy_uri
from lakelet.storage.base import ObjectStore

if TYPE_CHECKING:
    import pyarrow as pa

TableKind = Literal["raw", "iceberg"]
WriteMode = Literal["overwrite", "append"]


@dataclass(frozen=True)
class TableEntry:
    name: TableName
    kind: TableKind


@dataclass(frozen=True)
class ReplaceRows:
    """Rows an append replaces: those whose ``column`` holds one of ``values``."""

    column: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class WriteResult:
    table: TableName
    snapshot_id: int | None
    rows: int
    created: bool


class Catalog:
    """Names → tables, for every room that reads or writes tables."""

    def __init__(
        self,
        uri: str,
        *,
        base: Path,
        name: str,
        store: ObjectStore,
        s3: S3Section | None = None,
    ) -> None:
        self._uri = uri
        self._base = base
        self._name = name
        self._store = store
        self._s3 = s3 or S3Section()
        self._engine = open_engine(uri, base)

    @cached_property
    def raw(self) -> RawTableRegistry:
        return RawTableRegistry(self._engine)

    @cached_property
    def iceberg(self) -> Any:
        """The pyiceberg ``SqlCatalog`` (imported on first use)."""
        from pyiceberg.catalog.sql import SqlCatalog

        props: dict[str, str] = {
            "uri": resolve_sqlalchemy_uri(self._uri, self._base),
            "warehouse": self._store.root,
        }
        if self._store.root.startswith("s3://"):
            from lakelet.storage.s3 import resolved_s3_settings

            props.update(iceberg_s3_properties(resolved_s3_settings(self._s3)))
        self.raw  # noqa: B018 -- create our tables first so SQLite is already in WAL mode
        return SqlCatalog(self._name, **props)

    # --- databases ---------------------------------------------------------------

    def databases(self) -> list[str]:
        names = {ns[0] for ns in self.iceberg.list_namespaces()}
        names.update(t.database for t in self.raw.names())
        return sorted(names)

    def create_database(self, database: str) -> None:
        check_identifier(database, "database")
        self.iceberg.create_namespace_if_not_exists(database)

    # --- tables ------------------------------------------------------------------

    def tables(self, database: str | None = None) -> list[TableEntry]:
        entries = [TableEntry(n, "raw") for n in self.raw.names(database)]
        namespaces = [database] if database else [ns[0] for ns in self.iceberg.list_namespaces()]
        for ns in namespaces:
            try:
                identifiers = self.iceberg.list_tables(ns)
            except Exception as exc:  # pyiceberg raises NoSuchNamespaceError
                if type(exc).__name__ == "NoSuchNamespaceError":
                    continue
                raise
            entries.extend(TableEntry(TableName(i[0], i[1]), "iceberg") for i in identifiers)
        return sorted(entries, key=lambda e: (e.name.database, e.name.name))

    def kind(self, name: TableName) -> TableKind | None:
        if self.raw.find(name) is not None:
            return "raw"
        if self.iceberg.table_exists((name.database, name.name)):
            return "iceberg"
        return None

    def require_kind(self, name: TableName) -> TableKind:
        kind = self.kind(name)
        if kind is None:
            known = ", ".join(str(e.name) for e in self.tables()) or "none yet"
            raise TableNotFoundError(f"no table {name} in the catalog (tables: {known})")
        return kind

    def raw_table(self, name: TableName) -> RawTable:
        return self.raw.get(name)

    def register_raw(self, table: RawTable) -> RawTable:
        """Store a new version of a crawled table (creating its database if needed)."""
        if self.iceberg.table_exists((table.database, table.name)):
            raise ConflictError(
                f"{table.table_name} is an Iceberg table; a crawler cannot overwrite it"
            )
        self.create_database(table.database)
        return self.raw.register(table)

    def load_iceberg(self, name: TableName) -> Any:
        from pyiceberg.exceptions import NoSuchTableError

        try:
            return self.iceberg.load_table((name.database, name.name))
        except NoSuchTableError as exc:
            raise TableNotFoundError(f"no Iceberg table {name}") from exc

    def current_snapshot_id(self, name: TableName) -> int | None:
        snapshot = self.load_iceberg(name).current_snapshot()
        return None if snapshot is None else int(snapshot.snapshot_id)

    def data_files(self, name: TableName, snapshot_id: int | None = None) -> list[str] | None:
        """The Parquet files of a snapshot, or ``None`` when delete files need merging.

        Handing these files to DuckDB is several times faster and leaner than
        materialising ``scan().to_arrow()``.
        """
        scan = self.load_iceberg(name).scan(snapshot_id=snapshot_id)
        tasks = list(scan.plan_files())
        if any(task.delete_files for task in tasks):
            return None
        return [task.file.file_path for task in tasks]

    def read_arrow(self, name: TableName, snapshot_id: int | None = None) -> pa.Table:
        return self.load_iceberg(name).scan(snapshot_id=snapshot_id).to_arrow()

    def write(
        self,
        name: TableName,
        data: pa.Table,
        mode: WriteMode,
        *,
        properties: Mapping[str, str] | None = None,
        replace: ReplaceRows | None = None,
    ) -> WriteResult:
        """Write ``data`` as one atomic Iceberg commit, creating the table if needed.

        ``append`` adds new columns to the table's schema in the same commit;
        ``overwrite`` also drops the columns the data no longer has. ``replace`` (with
        ``append``) first deletes the rows it names, in the same commit, rewriting the
        data files that hold some of them (copy-on-write). ``properties`` go into the
        summary of every snapshot of the commit. A type change that Iceberg cannot
        widen, or column names equal but for case, fail with a message and leave the
        table as it was (a table the write created is dropped again).
        """
        import pyarrow as pa
        from pyiceberg.exceptions import TableAlreadyExistsError

        if mode not in ("overwrite", "append"):
            raise CatalogError(f"unknown write mode {mode!r}: use overwrite or append")
        if replace is not None and (mode != "append" or replace.column not in data.schema.names):
            raise CatalogError(
                f"cannot write to {name}: replacing rows needs mode append and a "
                f"{replace.column!r} column in the data"
            )
        if self.raw.find(name) is not None:
            raise ConflictError(f"{name} is a crawled raw table; write to another name")
        _check_column_names(name, data.schema.names)
        self.create_database(name.database)
        created = False
        if not self.iceberg.table_exists((name.database, name.name)):
            self._store.create_bucket(name.database)
            location = self._store.url(name.database, name.name)
            try:
                self.iceberg.create_table(
                    (name.database, name.name), schema=data.schema, location=location
                )
                created = True
            except TableAlreadyExistsError:
                pass  # another run created it meanwhile: write into it
            except (ValueError, TypeError, pa.ArrowException) as exc:
                raise TableSchemaError(f"cannot create {name}: {exc}") from exc
        table = self.load_iceberg(name)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "delete did not match"
                with table.transaction() as tx:
                    if not created:
                        with tx.update_schema() as update:
                            update.union_by_name(data.schema)
                            if mode == "overwrite":
                                kept = set(data.schema.names)
                                for field in table.schema().fields:
                                    if field.name not in kept:
                                        update.delete_column(field.name)
                    summary = dict(properties or {})  # recorded in the snapshot's summary
                    if replace is not None and replace.values:
                        from pyiceberg.expressions import In

                        # pyiceberg's pydantic model hides In's __init__ from mypy
                        rows = In(replace.column, replace.values)  # type: ignore[call-arg,arg-type]
                        tx.delete(rows, snapshot_properties=summary)
                    if mode == "overwrite":
                        tx.overwrite(data, snapshot_properties=summary)
                    else:
                        tx.append(data, snapshot_properties=summary)
        except (ValueError, TypeError, OverflowError, struct.error, pa.ArrowException) as exc:
            if created:
                self.iceberg.drop_table((name.database, name.name))
            raise TableSchemaError(f"cannot write to {name}: {exc}") from exc
        except Exception:
            if created:
                self.iceberg.drop_table((name.database, name.name))
            raise
        table = self.load_iceberg(name)
        snapshot = table.current_snapshot()
        return WriteResult(
            table=name,
            snapshot_id=None if snapshot is None else int(snapshot.snapshot_id),
            rows=data.num_rows,
            created=created,
        )

    def drop(self, name: TableName) -> None:
        kind = self.require_kind(name)
        if kind == "raw":
            self.raw.drop(name)
        else:
            self.iceberg.drop_table((name.database, name.name))


def _check_column_names(name: TableName, columns: list[str]) -> None:
    """Iceberg and DuckDB match names ignoring case: two such columns would mix up."""
    seen: dict[str, str] = {}
    for column in columns:
        other = seen.setdefault(column.lower(), column)
        if other != column:
            raise TableSchemaError(
                f"cannot write to {name}: columns {other!r} and {column!r} differ only in "
                "case; rename one (e.g. with AS in the SQL)"
            )


def iceberg_s3_properties(s3: S3Section) -> dict[str, str]:
    """pyiceberg FileIO properties for an S3-compatible endpoint."""
    props = {
        "s3.endpoint": s3.endpoint_url,
        "s3.region": s3.region,
        "s3.access-key-id": s3.access_key_id,
        "s3.secret-access-key": s3.secret_access_key,
        "s3.session-token": s3.session_token,
    }
    return {k: v for k, v in props.items() if v}
