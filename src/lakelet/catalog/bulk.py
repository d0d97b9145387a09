"""Write a query's rows into an Iceberg table without holding them: DuckDB streams them
into Parquet files in the table's data folder, and one commit adds those files.

:meth:`Catalog.write` takes an Arrow table, so a job's whole result sits in memory
before pyiceberg writes it again. Here the rows go from the query to Parquet as DuckDB
produces them (memory stays within DuckDB's ``memory_limit`` whatever the size, and
DuckDB's writer uses every thread), and the files join the table in one atomic commit
(pyiceberg's ``add_files``) that also evolves the schema the way
:meth:`Catalog.write` does. A failed write removes its files and commits nothing.

The files are DuckDB's Parquet, named by column without Iceberg field ids: the table's
name mapping (set by ``add_files``) ties them to its fields. A query whose result
cannot be written that way raises :class:`BulkUnsupported` before anything is written,
and the caller falls back to :meth:`Catalog.write`: column names that Iceberg stores
escaped in Parquet (spaces, parentheses, …) and types Iceberg has no equivalent for
(unsigned integers, intervals, nanosecond timestamps, enums, UUIDs, …).
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from lakelet.catalog.catalog import WriteMode, WriteResult
from lakelet.catalog.names import TableName
from lakelet.catalog.writers import (
    DEFAULT_CODEC,
    DEFAULT_FILE_BYTES,
    ParquetOptions,
    write_parallel,
)
from lakelet.errors import CatalogError, ConflictError, TableSchemaError
from lakelet.storage.base import ObjectStore

if TYPE_CHECKING:
    import pyarrow as pa

    from lakelet.catalog.catalog import Catalog

_CODECS = {"zstd", "snappy", "gzip", "lz4", "uncompressed"}
_PLAIN_TYPES = frozenset(
    {"boolean", "tinyint", "smallint", "integer", "bigint", "float", "double", "decimal"}
    | {"varchar", "blob", "date", "time", "timestamp", "timestamp with time zone"}
)
_NESTED_TYPES = frozenset({"list", "struct", "map"})
T = TypeVar("T")


class BulkUnsupported(CatalogError):
    """The query's result cannot be written as plain Parquet files; use Catalog.write."""


@dataclass(frozen=True)
class _Plan:
    """What a query writes: its Arrow schema and the SELECT that writes it."""

    schema: pa.Schema
    select: str


def write_query(
    catalog: Catalog,
    store: ObjectStore,
    name: TableName,
    con: Any,
    sql: str,
    mode: WriteMode,
    *,
    properties: Mapping[str, str] | None = None,
    file_bytes: int = DEFAULT_FILE_BYTES,
    before_commit: Callable[[int], None] | None = None,
) -> WriteResult:
    """Write the rows of ``sql`` (run on the DuckDB connection ``con``) to ``name``.

    One atomic commit, creating the table if needed: ``append`` adds the rows (and any
    new columns), ``overwrite`` replaces the rows and drops the columns the result no
    longer has; ``properties`` go into the snapshot summary. ``before_commit`` runs once
    the files are written: if it raises, they are removed and nothing is committed (a
    job past its deadline). Raises
    :class:`BulkUnsupported` (nothing written) when the result needs
    :meth:`Catalog.write`, :class:`TableSchemaError` when the table cannot take it.
    """
    _check_target(catalog, store, name, mode)
    plan = _plan(name, con, sql)

    def copy(folder: str, codec: str) -> tuple[int, list[str]]:
        return _copy(con, plan.select, folder, codec, file_bytes)

    return write_files(catalog, store, name, plan.schema, mode, copy, properties, before_commit)


def write_tasks(
    catalog: Catalog,
    store: ObjectStore,
    name: TableName,
    schema: pa.Schema,
    tasks: Iterable[T],
    read: Callable[[T], Iterable[pa.RecordBatch]],
    mode: WriteMode,
    *,
    properties: Mapping[str, str] | None = None,
    file_bytes: int = DEFAULT_FILE_BYTES,
    before_commit: Callable[[int], None] | None = None,
    workers: int = 2,
    dictionary: list[str] | None = None,
) -> WriteResult:
    """Write the Arrow batches ``read`` makes of each of ``tasks`` (pieces of input that
    can be read apart; batches of ``schema``, Iceberg-compatible) to ``name``, as
    :func:`write_query` writes a query's rows: Parquet files, then one commit.

    ``workers`` threads each read tasks and write their own files (pyarrow's reader and
    writer keep about one core busy each and release the GIL), while this thread makes
    the tasks (:func:`lakelet.catalog.writers.write_parallel`). ``dictionary`` names the
    columns worth dictionary-encoding (few distinct values; ``None``: all): encoding
    the others plainly saves building dictionaries Parquet would drop. An exception
    raised by a task or a read removes what was written and propagates.
    """
    _check_target(catalog, store, name, mode)

    def write(folder: str, codec: str) -> tuple[int, list[str]]:
        options = ParquetOptions(codec, file_bytes, dictionary)
        return write_parallel(tasks, read, schema, folder, options, workers)

    return write_files(catalog, store, name, schema, mode, write, properties, before_commit)


def _check_target(catalog: Catalog, store: ObjectStore, name: TableName, mode: WriteMode) -> None:
    if mode not in ("overwrite", "append"):
        raise CatalogError(f"unknown write mode {mode!r}: use overwrite or append")
    if catalog.raw.find(name) is not None:
        raise ConflictError(f"{name} is a crawled raw table; write to another name")
    if store.root.startswith("s3://"):
        raise BulkUnsupported(f"{name}: Parquet files are written to local lakes only")


def write_files(
    catalog: Catalog,
    store: ObjectStore,
    name: TableName,
    schema: pa.Schema,
    mode: WriteMode,
    produce: Callable[[str, str], tuple[int, list[str]]],
    properties: Mapping[str, str] | None,
    before_commit: Callable[[int], None] | None,
) -> WriteResult:
    """Create or open the table, let ``produce`` write files into a fresh folder of it,
    and commit them; on any failure remove the folder (and a table made for it)."""
    table, created = _open_table(catalog, store, name, schema)
    folder = f"{table.location().rstrip('/')}/data/{uuid.uuid4().hex}"
    try:
        rows, files = produce(folder, _codec(table))
        if before_commit is not None:
            before_commit(rows)
        snapshot_id = _commit(table, schema, files, mode, created, dict(properties or {}))
    except BaseException as exc:
        from pyiceberg.exceptions import ValidationError

        _remove(folder)
        if created:
            catalog.iceberg.drop_table((name.database, name.name))
        if isinstance(exc, (ValueError, TypeError, ValidationError)):
            raise TableSchemaError(f"cannot write to {name}: {exc}") from exc
        raise
    return WriteResult(table=name, snapshot_id=snapshot_id, rows=rows, created=created)


def query_schema(
    name: TableName, con: Any, sql: str, *, probe: tuple[Any, pa.Schema] | None = None
) -> pa.Schema:
    """The Arrow schema :func:`write_query` would write ``sql``'s rows with; raises
    :class:`BulkUnsupported` or :class:`TableSchemaError` as it would. ``probe`` is the
    relation ``SELECT * FROM (sql) LIMIT 0`` and its Arrow schema, when the caller has
    them already: binding a raw table's checked scan again costs ~20 ms."""
    return _plan(name, con, sql, probe).schema


def check_columns(name: TableName, schema: pa.Schema) -> None:
    """What :func:`query_schema` checks of a result's column names, for rows that come
    as Arrow batches of ``schema`` (whose types the caller vouches for)."""
    seen: dict[str, str] = {}
    for column in schema.names:
        _check_name(name, column, seen)


def _check_name(name: TableName, column: str, seen: dict[str, str]) -> None:
    """A column name Iceberg stores as it is, once (``seen``: lower-cased names so far)."""
    from pyiceberg.schema import make_compatible_name

    other = seen.get(column.lower())
    seen[column.lower()] = column
    if other is not None:
        raise TableSchemaError(
            f"cannot write to {name}: columns {other!r} and {column!r} differ only in "
            "case; rename one (e.g. with AS in the SQL)"
            if other != column
            else f"cannot write to {name}: two columns are named {column!r}; rename one"
        )
    if make_compatible_name(column) != column:
        raise BulkUnsupported(f"{name}: column {column!r} is stored escaped by Iceberg")


def _plan(name: TableName, con: Any, sql: str, probe: tuple[Any, pa.Schema] | None = None) -> _Plan:
    """Check the result's columns and types; cast what DuckDB would write otherwise."""
    relation = con.sql(sql) if probe is None else probe[0]
    if relation is None:
        raise BulkUnsupported(f"{name}: the statement returns no rows to write")
    columns = []
    cast = False
    seen: dict[str, str] = {}
    for column, dtype in zip(relation.columns, relation.types, strict=True):
        _check_name(name, column, seen)
        quoted = '"' + column.replace('"', '""') + '"'
        if dtype.id == "hugeint":  # DuckDB writes HUGEINT as DOUBLE; Arrow says DECIMAL
            columns.append(f"CAST({quoted} AS DECIMAL(38,0)) AS {quoted}")
            cast = True
        else:
            _check_type(name, column, dtype)
            columns.append(quoted)
    select = f"SELECT {', '.join(columns)} FROM ({sql}) AS lakelet_result"
    if probe is not None and not cast:
        return _Plan(probe[1], select)
    schema = con.sql(f"{select} LIMIT 0").to_arrow_table().schema
    return _Plan(schema, select)


def _check_type(name: TableName, column: str, dtype: Any) -> None:
    if dtype.id in _PLAIN_TYPES:
        return
    if dtype.id in _NESTED_TYPES:
        from pyiceberg.schema import make_compatible_name

        for child_name, child in dtype.children:
            if dtype.id == "struct" and make_compatible_name(child_name) != child_name:
                raise BulkUnsupported(f"{name}: column {column!r} has a field {child_name!r}")
            _check_type(name, column, child)
        return
    raise BulkUnsupported(f"{name}: column {column!r} has type {dtype}")


def _open_table(
    catalog: Catalog, store: ObjectStore, name: TableName, schema: pa.Schema
) -> tuple[Any, bool]:
    """The Iceberg table, created from ``schema`` when missing (and whether it was)."""
    import pyarrow as pa
    from pyiceberg.exceptions import TableAlreadyExistsError

    catalog.create_database(name.database)
    identifier = (name.database, name.name)
    created = False
    if not catalog.iceberg.table_exists(identifier):
        store.create_bucket(name.database)
        try:
            catalog.iceberg.create_table(
                identifier, schema=schema, location=store.url(name.database, name.name)
            )
            created = True
        except TableAlreadyExistsError:
            pass  # another run created it meanwhile: write into it
        except (ValueError, TypeError, pa.ArrowException) as exc:
            raise TableSchemaError(f"cannot create {name}: {exc}") from exc
    return catalog.load_iceberg(name), created


def _codec(table: Any) -> str:
    codec = str(table.properties.get("write.parquet.compression-codec", DEFAULT_CODEC)).lower()
    return codec if codec in _CODECS else DEFAULT_CODEC


def _copy(con: Any, select: str, folder: str, codec: str, file_bytes: int) -> tuple[int, list[str]]:
    """Stream ``select`` into Parquet files under ``folder``: (rows, file paths)."""
    from pathlib import Path

    Path(folder).parent.mkdir(parents=True, exist_ok=True)  # DuckDB makes the last level
    target = "'" + folder.replace("'", "''") + "'"
    options = (
        f"FORMAT parquet, COMPRESSION {codec}, FILE_SIZE_BYTES {int(file_bytes)}, "
        "FILENAME_PATTERN 'part-{i}', RETURN_FILES true"
    )
    ((rows, files),) = con.execute(f"COPY ({select}) TO {target} ({options})").fetchall()
    if not rows:  # an empty result adds no (empty) files
        _remove(folder)
        return 0, []
    return int(rows), [str(f) for f in files]


def _commit(
    table: Any,
    schema: pa.Schema,
    files: list[str],
    mode: WriteMode,
    created: bool,
    summary: dict[str, str],
) -> int | None:
    """Evolve the schema and swap in or add ``files``, in one transaction."""
    from pyiceberg.expressions import AlwaysTrue

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "delete did not match"
        with table.transaction() as tx:
            if not created:
                with tx.update_schema() as update:
                    update.union_by_name(schema)
                    if mode == "overwrite":
                        kept = set(schema.names)
                        for field in table.schema().fields:
                            if field.name not in kept:
                                update.delete_column(field.name)
            if mode == "overwrite" and not created:  # a table made for this write is empty
                tx.delete(AlwaysTrue(), snapshot_properties=summary)
            tx.add_files(files, snapshot_properties=summary, check_duplicate_files=False)
    snapshot = table.current_snapshot()
    return None if snapshot is None else int(snapshot.snapshot_id)


def _remove(folder: str) -> None:
    """Delete a failed write's files (they belong to no snapshot)."""
    import shutil

    shutil.rmtree(folder, ignore_errors=True)
