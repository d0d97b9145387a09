"""A job whose rows need no check in Python streams them straight into its output.

Without data-quality rules or steps, nothing looks at the result before the commit, so
it need not be held in memory: DuckDB writes the rows as Parquet files into the output
table's folder while the query runs, and one commit adds them
(:func:`lakelet.catalog.bulk.write_query`). Memory stays within DuckDB's limit whatever
the size, and the accounting is the same: rows read per input = rows that reached the
SQL + rows rejected, counted by :func:`lakelet.catalog.rawscan.count_scan`, which
reads a file again only when a row of it failed to convert.

A ``SELECT *`` of a raw CSV table goes through pyarrow instead of DuckDB
(:mod:`lakelet.catalog.rawscan.arrowcsv`); without bookmarks it needs no DuckDB session.

A job the streaming write cannot take (a result Iceberg stores differently in Parquet,
rows of re-read files to replace, a lake on S3) runs the ordinary way.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lakelet.catalog.names import TableName
from lakelet.errors import LakeletError, SqlError
from lakelet.jobs.commit import OutputCommit, plan_commit
from lakelet.jobs.runs import InputRead, Reject
from lakelet.jobs.session import Session, duckdb_message
from lakelet.jobs.sqltext import (
    TableRef,
    copied_input,
    parse_one_statement,
    row_preserving_input,
    substitute_params,
)

if TYPE_CHECKING:
    import pyarrow as pa

    from lakelet.catalog.catalog import WriteResult
    from lakelet.catalog.rawscan.arrowcsv import ArrowCsvRead
    from lakelet.jobs.bookmarks import BookmarkedRead
    from lakelet.jobs.deadline import Deadline
    from lakelet.jobs.spec import JobSpec
    from lakelet.project import Project

log = logging.getLogger(__name__)
DICTIONARY_VALUES = 1 << 17
"""Above this many distinct values a column's dictionary outgrows Parquet's page limit."""


@dataclass(frozen=True)
class StreamedRun:
    """What a streamed run wrote and read."""

    written: WriteResult
    inputs: list[InputRead]
    rejects: list[Reject]


def can_stream(project: Project, spec: JobSpec) -> bool:
    """A DuckDB job whose result can go straight into its output (:func:`writes_unchecked`)."""
    return writes_unchecked(project, spec, "duckdb")


def writes_unchecked(project: Project, spec: JobSpec, engine: str) -> bool:
    """A job of one SQL statement on ``engine``, with nothing to check in Python before
    its commit (no steps, no rules of its own nor of its output table, as
    :func:`check_quality` decides), on a local lake (engines write local files only)."""
    rules = spec.quality or str(spec.output) in project.settings.tables
    local = not project.store.root.startswith("s3://")
    return spec.engine == engine and bool(spec.sql) and not spec.steps and not rules and local


def stream_job(
    project: Project,
    spec: JobSpec,
    params: Mapping[str, str],
    *,
    reading: BookmarkedRead | None,
    deadline: Deadline,
) -> StreamedRun | None:
    """Run and write the job in one go; ``None`` (nothing done) when it cannot stream."""
    import duckdb

    from lakelet.catalog.bulk import BulkUnsupported, write_query
    from lakelet.catalog.rawscan import count_scan

    text = substitute_params(spec.sql, params, source=spec.source)
    direct = None if reading is not None else _direct_read(project, spec, text)
    if direct is not None:
        ref, read, commit = direct
        fast = _write_pieces(project, spec, ref, read, commit, deadline)
        if fast is not None:
            return fast
    with (
        Session(project, bookmark=reading) as session,
        deadline.interrupting(session.connection.interrupt),
    ):
        session.bind_statement(text, source=spec.source)
        con = session.connection
        try:
            relation = con.sql(f"SELECT * FROM ({text}) AS lakelet_result LIMIT 0")
            schema = relation.to_arrow_table().schema
        except duckdb.Error as exc:
            raise SqlError(f"{spec.source}: {duckdb_message(exc)}") from exc
        commit = plan_commit(project.catalog, spec, schema, reading)
        if commit.replace is not None:
            return None  # rows of re-read files to delete: Catalog.write does that
        statement = parse_one_statement(text, source=spec.source)
        copied = copied_input(statement)
        if copied is not None and direct is None:  # not refused already
            probe = (relation, schema)
            fast = _arrow_copy(project, spec, session, copied, text, commit, deadline, probe)
            if fast is not None:
                return fast
        kept = row_preserving_input(statement)
        inputs: list[InputRead] = []
        rejects: list[Reject] = []

        def account(rows: int) -> None:
            """Count what was read before the commit: once the rows are committed, a
            failure here would fail a run whose output is already written."""
            for bound in session.bound:
                name = f"{bound.ref.db}.{bound.ref.name}"
                if bound.scan is None:
                    accepted = session.count(bound.ref)
                else:
                    told = rows if kept == bound.ref else None
                    counted = count_scan(con, bound.scan, accepted=told)
                    accepted = counted.accepted
                    rejects.extend(
                        Reject(
                            table=name,
                            file=bound.scan.originals.get(str(file), str(file)),
                            line=None if line is None else int(line),
                            column=column,
                            reason=str(reason),
                            raw=raw,
                        )
                        for file, line, column, reason, raw in counted.rejects
                    )
                inputs.append(
                    InputRead(
                        table=str(bound.ref),
                        kind=bound.kind,
                        rows_read=accepted,
                        rows_rejected=0,
                        snapshot_id=bound.snapshot_id,
                    )
                )
            deadline.check()  # a run past its timeout writes nothing

        try:
            written = write_query(
                project.catalog,
                project.store,
                spec.output,
                con,
                text,
                commit.mode,
                properties=commit.properties,
                before_commit=account,
            )
        except BulkUnsupported:
            return None
        except duckdb.Error as exc:  # the query failed while it ran: nothing was written
            raise SqlError(f"{spec.source}: {duckdb_message(exc)}") from exc
    return StreamedRun(written, inputs, rejects)


def _arrow_copy(
    project: Project,
    spec: JobSpec,
    session: Session,
    ref: TableRef,
    text: str,
    commit: OutputCommit,
    deadline: Deadline,
    probe: tuple[Any, pa.Schema],
) -> StreamedRun | None:
    """A ``SELECT * FROM raw_csv_table`` job read by pyarrow and written by parallel
    Parquet writers, without DuckDB in between (:mod:`lakelet.catalog.rawscan.arrowcsv`).
    ``probe`` is the statement's result, limited to no rows, and its schema.

    ``None`` when the Arrow read cannot vouch for the files, before or while it reads
    (what it wrote is removed then): the caller runs the checked scan.
    """
    from lakelet.catalog.bulk import BulkUnsupported, query_schema
    from lakelet.catalog.rawscan.arrowcsv import plan_arrow_read
    from lakelet.jobs.bookmarks import PROVENANCE_COLUMN, lake_key

    (bound,) = [b for b in session.bound if b.ref == ref]
    if bound.kind != "raw" or bound.scan is None:
        return None
    table = project.catalog.raw_table(TableName(ref.db, ref.name))
    try:
        target = query_schema(spec.output, session.connection, text, probe=probe)
    except BulkUnsupported:
        return None
    location = table.location
    bookmarked = PROVENANCE_COLUMN in {f.name for f in target}
    read = plan_arrow_read(
        table,
        bound.scan.files,
        provenance=(lambda url: lake_key(url, location)) if bookmarked else None,
    )
    if isinstance(read, str):
        log.debug("%s: the checked scan reads %s (%s)", spec.name, ref, read)
        return None
    if [(f.name, f.type) for f in target] != [(f.name, f.type) for f in read.schema]:
        return None
    return _write_pieces(project, spec, ref, read, commit, deadline)


def _direct_read(
    project: Project, spec: JobSpec, text: str
) -> tuple[TableRef, ArrowCsvRead, OutputCommit] | None:
    """The Arrow read of a ``SELECT * FROM raw_csv_table`` job without bookmarks, planned
    without a DuckDB session: the read's schema is the result's, so the session's
    connection, the scan's binding and the probe of the result's types (~60 ms, a
    hundredth of a 766 MB load) are not needed. ``None`` when the job is not one, or
    the Arrow read declines it: the session path then runs it (and says what is wrong)."""
    from lakelet.catalog.bulk import BulkUnsupported, check_columns
    from lakelet.catalog.rawscan import raw_files
    from lakelet.catalog.rawscan.arrowcsv import plan_arrow_read

    ref = copied_input(parse_one_statement(text, source=spec.source))
    if ref is None or ref.catalog:
        return None
    try:
        name = TableName.parse(f"{ref.db}.{ref.name}")
    except LakeletError:
        return None
    if project.catalog.kind(name) != "raw":
        return None
    table = project.catalog.raw_table(name)
    files = raw_files(project.store, table)
    read = plan_arrow_read(table, files) if files else "no data files"
    if isinstance(read, str):
        log.debug("%s: the checked scan reads %s (%s)", spec.name, ref, read)
        return None
    try:
        check_columns(spec.output, read.schema)
    except BulkUnsupported:
        return None
    return ref, read, plan_commit(project.catalog, spec, read.schema, None)


def _write_pieces(
    project: Project,
    spec: JobSpec,
    ref: TableRef,
    read: ArrowCsvRead,
    commit: OutputCommit,
    deadline: Deadline,
) -> StreamedRun | None:
    """Write ``read``'s pieces with parallel writers and commit them; ``None`` (nothing
    written) when the Arrow read refuses a file while it reads."""
    from lakelet.catalog.bulk import write_tasks
    from lakelet.catalog.rawscan.arrowcsv import ArrowReadRefused, Piece

    inputs: list[InputRead] = []

    def account(rows: int) -> None:
        inputs.append(InputRead(table=str(ref), kind="raw", rows_read=rows, rows_rejected=0))
        deadline.check()

    def pieces() -> Iterator[Piece]:
        for piece in read.pieces():  # each one checked here, while workers read others
            deadline.check()
            yield piece

    def rows(piece: Piece) -> Iterator[pa.RecordBatch]:
        for batch in read.read_piece(piece):
            deadline.check()
            yield batch

    try:
        written = write_tasks(
            project.catalog,
            project.store,
            spec.output,
            read.schema,
            pieces(),
            rows,
            commit.mode,
            properties=commit.properties,
            before_commit=account,
            dictionary=_few_distinct(project, TableName(ref.db, ref.name), read.schema),
        )
    except ArrowReadRefused as refused:
        log.debug("%s: the checked scan reads %s (%s)", spec.name, ref, refused)
        return None
    return StreamedRun(written, inputs, [])


def _few_distinct(project: Project, name: TableName, schema: pa.Schema) -> list[str] | None:
    """Columns the crawl's statistics show to have few distinct values (``None``: no
    statistics, encode every column with a dictionary, Parquet's default)."""
    stats = project.catalog.raw.stats(name)
    if not stats or not stats.get("rows"):
        return None
    limit = min(int(stats["rows"]) // 8, DICTIONARY_VALUES)
    columns = stats.get("columns", {})
    return [
        f.name
        for f in schema
        if f.name not in columns or int(columns[f.name].get("distinct") or 0) <= limit
    ]
