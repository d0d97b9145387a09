"""A job whose rows need no check in Python streams them straight into its output.

Without data-quality rules or steps, nothing looks at the result before the commit, so
it need not be held in memory: DuckDB writes the rows as Parquet files into the output
table's folder while the query runs, and one commit adds them
(:func:`lakelet.catalog.bulk.write_query`). Memory stays within DuckDB's limit whatever
the size, and the accounting is the same: rows read per input = rows that reached the
SQL + rows rejected, counted by :func:`lakelet.catalog.rawscan.count_scan`, which
reads a file again only when a row of it failed to convert.

A job the streaming write cannot take (a result Iceberg stores differently in Parquet,
rows of re-read files to replace, a lake on S3) runs the ordinary way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lakelet.errors import SqlError
from lakelet.jobs.commit import plan_commit
from lakelet.jobs.runs import InputRead, Reject
from lakelet.jobs.session import Session, duckdb_message
from lakelet.jobs.sqltext import parse_one_statement, row_preserving_input, substitute_params

if TYPE_CHECKING:
    from lakelet.catalog.catalog import WriteResult
    from lakelet.jobs.bookmarks import BookmarkedRead
    from lakelet.jobs.deadline import Deadline
    from lakelet.jobs.spec import JobSpec
    from lakelet.project import Project


@dataclass(frozen=True)
class StreamedRun:
    """What a streamed run wrote and read."""

    written: WriteResult
    inputs: list[InputRead]
    rejects: list[Reject]


def can_stream(project: Project, spec: JobSpec) -> bool:
    """A DuckDB job of one SQL statement, with nothing to check before its commit (no
    rules of its own nor of its output table, as :func:`check_quality` decides)."""
    rules = spec.quality or str(spec.output) in project.settings.tables
    local = not project.store.root.startswith("s3://")  # DuckDB writes local files only
    return spec.engine == "duckdb" and bool(spec.sql) and not spec.steps and not rules and local


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
        kept = row_preserving_input(parse_one_statement(text, source=spec.source))
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
