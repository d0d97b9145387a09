"""Running a crawler: list the files, group them into tables, infer, register, report.

A table gets a new catalog version only when its definition changed
(:meth:`RawTable.same_definition`), so re-crawling unchanged data is free and the
version history shows real changes only. With ``plan=True`` nothing is registered: the
report says what a crawl would change.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from lakelet.catalog.names import TableName, check_identifier
from lakelet.catalog.raw import RawTable
from lakelet.catalog.rawscan import attach_store
from lakelet.config import CrawlerSection
from lakelet.crawler.diff import TableDiff, diff_tables
from lakelet.crawler.files import DataFile, SkippedFile, bucket_globs, list_files
from lakelet.crawler.grouping import group_files, split_by_format
from lakelet.crawler.inference import InferredTable, TableSource, infer_table
from lakelet.crawler.report import Action, CrawlReport, TableReport
from lakelet.errors import CrawlerNotFoundError, UserError
from lakelet.storage.base import split_location

if TYPE_CHECKING:
    from lakelet.project import Project

Progress = Callable[[int, int, str], None]
"""Called as ``progress(done, total, key)`` after each file is inferred."""


def crawler_spec(project: Project, name: str) -> CrawlerSection:
    """The ``[crawlers.NAME]`` section of ``lakelet.toml``."""
    crawlers = project.settings.crawlers
    if name in crawlers:
        return crawlers[name]
    known = sorted(crawlers)
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    listed = ", ".join(known) if known else "none (add a [crawlers.NAME] section)"
    raise CrawlerNotFoundError(
        f"no crawler {name!r} in lakelet.toml{hint} (crawlers: {listed}); "
        "or crawl a path with: lakelet crawl --path BUCKET/PREFIX/ --database DB"
    )


def crawl_prefix(path: str) -> tuple[str, str]:
    """``"raw/sales"`` → ``("raw", "sales/")``: a crawl path always names a folder."""
    bucket, key = split_location(path)
    key = key.strip("/")
    return bucket, f"{key}/" if key else ""


def run_crawler(
    project: Project,
    name: str,
    spec: CrawlerSection,
    *,
    plan: bool = False,
    progress: Progress | None = None,
) -> CrawlReport:
    """Crawl ``spec.path`` into ``spec.database`` and report what changed."""
    import duckdb

    started = datetime.now(UTC)
    database = check_identifier(spec.database, "database")
    bucket, prefix = crawl_prefix(spec.path)
    store = project.store
    if bucket not in store.buckets():
        raise UserError(
            f"crawler {name!r}: path {spec.path!r} names no bucket of the lake "
            f"(buckets: {', '.join(store.buckets()) or 'none'})"
        )
    listing = list_files(store, bucket, prefix, spec.exclude)
    source = TableSource(database, name, spec.path, bucket_globs(prefix, spec.exclude))
    total = len(listing.files)
    done: list[DataFile] = []

    def file_done(file: DataFile) -> None:
        done.append(file)
        if progress is not None:
            progress(len(done), total, f"{file.bucket}/{file.key}")

    reports: list[TableReport] = []
    skipped: list[SkippedFile] = list(listing.skipped)
    con = duckdb.connect()
    try:
        attach_store(con, store)
        for group in group_files(bucket, prefix, listing.files):
            existing = project.catalog.raw.find(TableName(database, group.name))
            for fmt, part in split_by_format(group, existing.format if existing else None):
                inference = infer_table(con, store, source, fmt, part, file_done)
                skipped.extend(inference.skipped)
                if inference.table is not None:
                    reports.append(_record(project, inference.table, plan=plan))
    finally:
        con.close()
    return CrawlReport(
        crawler=name,
        path=spec.path,
        database=database,
        started_at=started,
        finished_at=datetime.now(UTC),
        plan=plan,
        tables=reports,
        skipped=skipped,
        files_seen=total + len(listing.skipped),
    )


def _record(project: Project, inferred: InferredTable, *, plan: bool) -> TableReport:
    """Register the table if its definition changed, and say what happened."""
    table = inferred.table
    current = project.catalog.raw.find(table.table_name)
    diff = diff_tables(current, table)
    action: Action
    version: int | None
    warnings = list(inferred.warnings)
    if current is None:
        action, version = "created", 1
    elif current.same_definition(table):
        action, version, diff = "unchanged", current.version, TableDiff()
    else:
        action, version = "updated", current.version + 1
    if not plan and action != "unchanged":
        try:
            version = project.catalog.register_raw(table).version
        except UserError as exc:  # e.g. an Iceberg table already has that name
            action, version = "skipped", None
            warnings.append(str(exc))
    return _table_report(table, action, version, diff, inferred.files, warnings)


def _table_report(
    table: RawTable,
    action: Action,
    version: int | None,
    diff: TableDiff,
    files: int,
    warnings: list[str],
) -> TableReport:
    return TableReport(
        name=str(table.table_name),
        action=action,
        version=version,
        format=table.format,
        location=table.location,
        files=files,
        rows_estimate=int(table.properties.get("rows_estimate", 0)),
        diff=diff,
        warnings=warnings,
    )
