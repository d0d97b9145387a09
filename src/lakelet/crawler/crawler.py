"""Running a crawler: list, look at new files, group them into tables, apply the policy.

A crawl is incremental by default: the manifest (:mod:`lakelet.crawler.manifest`) says
which listed objects are unchanged since the last crawl, and their schemas are reused;
only new or changed files are read. When nothing was added, changed or removed the crawl
stops after the listing. When the only news is a few new files that fit tables the
last crawl left exactly as inferred, the fast path (:mod:`lakelet.crawler.fastpath`)
reads just those files, checks them against the tables and merges their statistics,
without loading the manifest or regrouping the lake; anything else takes the full path.
``full=True`` (or a change of the crawler's settings) reads every file again.

A table gets a new catalog version only when its definition changed, under the
crawler's ``on_change`` policy (:mod:`lakelet.crawler.policy`); a table whose files are
all gone is handled by ``on_delete``. With ``plan=True`` nothing is registered or
remembered: the report says what a crawl would change. :func:`undo_crawl` reverts the
versions the crawler's last crawl created, by registering the previous definitions as
new versions (history stays append-only).
"""

from __future__ import annotations

import difflib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from lakelet.catalog.names import TableName, check_identifier
from lakelet.catalog.raw import ACTIVE, DELETED, DEPRECATED, RawTable
from lakelet.catalog.rawscan import attach_store
from lakelet.config import CrawlerSection
from lakelet.crawler.classify import (
    Classification,
    custom_classifiers,
    with_classification,
)
from lakelet.crawler.diff import TableDiff, diff_tables
from lakelet.crawler.files import (
    DataFile,
    Listing,
    SkippedFile,
    bucket_globs,
    list_files,
    listing_digest,
)
from lakelet.crawler.grouping import (
    Profile,
    TableGroup,
    group_by_folder,
    group_by_schema,
    levels_below,
    split_by_format,
)
from lakelet.crawler.inference import InferredTable, TableSource, build_table, infer_files
from lakelet.crawler.manifest import (
    MAX_LISTING_PARTS,
    CrawlChanges,
    CrawlerState,
    FileId,
    Manifest,
    SeenFile,
    TableChange,
    fingerprint,
)
from lakelet.crawler.policy import SchemaChangeRefused, evolve
from lakelet.crawler.probe import Probe, as_classified, classify_probed, probe_file, with_format
from lakelet.crawler.report import Action, CrawlReport, TableReport, table_report
from lakelet.crawler.schema import FileSchema
from lakelet.crawler.stats import Sampling, compute_stats, merge_new_files, mergeable
from lakelet.errors import CrawlerNotFoundError, UserError
from lakelet.storage.base import split_location

if TYPE_CHECKING:
    from lakelet.project import Project

MIN_CONTENT_CERTAINTY = 0.5
"""A file without a known suffix is crawled only when a classifier is at least this sure."""
Progress = Callable[[int, int, str], None]
"""Called as ``progress(done, total, key)`` after each new or changed file is read."""


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


@dataclass
class _Crawl:
    """One crawl's working state."""

    project: Project
    name: str
    spec: CrawlerSection
    database: str
    bucket: str
    prefix: str
    plan: bool
    full: bool
    manifest: Manifest
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    skipped: list[SkippedFile] = field(default_factory=list)
    reports: list[TableReport] = field(default_factory=list)
    changes: list[TableChange] = field(default_factory=list)
    added_urls: set[str] = field(default_factory=set)
    exact: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    """Per table: its version and counts when the catalog holds exactly what inference
    made of its files, without a warning (``None`` otherwise): what the fast path
    (:mod:`lakelet.crawler.fastpath`) may build on."""


def run_crawler(
    project: Project,
    name: str,
    spec: CrawlerSection,
    *,
    plan: bool = False,
    full: bool = False,
    progress: Progress | None = None,
) -> CrawlReport:
    """Crawl ``spec.path`` into ``spec.database`` and report what changed."""
    database = check_identifier(spec.database, "database")
    bucket, prefix = crawl_prefix(spec.path)
    store = project.store
    if bucket not in store.buckets():
        raise UserError(
            f"crawler {name!r}: path {spec.path!r} names no bucket of the lake "
            f"(buckets: {', '.join(store.buckets()) or 'none'})"
        )
    manifest = Manifest(project.metadata)
    state = manifest.state(name)
    shape = fingerprint(spec)
    crawl = _Crawl(
        project,
        name,
        spec,
        database,
        bucket,
        prefix,
        plan,
        full or state.fingerprint != shape,
        manifest,
    )
    listing = list_files(store, bucket, prefix, spec.exclude)
    if not listing.files and not listing.skipped and state.last_run_at is None:
        raise UserError(
            f"crawler {name!r}: no objects under {spec.path!r}; check the path "
            f"(list it with: lakelet ls {bucket}/{prefix})"
        )
    crawl.skipped.extend(listing.skipped)
    lines = listing.lines
    listed = listing_digest(lines)
    if not crawl.full and not state.dirty and state.listing == listed:
        quick = _unchanged(crawl, listing, state.summary)
        if quick is not None:
            if not plan:
                manifest.save_state(replace(state, last_run_at=crawl.started))
            return quick
    if not crawl.full and not state.dirty:
        from lakelet.crawler.fastpath import only_added

        added = only_added(crawl, listing, lines, state, progress)
        if added is not None:
            if not plan:
                manifest.save_state(
                    replace(state, last_run_at=crawl.started, listing=listed, summary=added.summary)
                )
                if added.parts < MAX_LISTING_PARTS:
                    manifest.append_listing(name, added.parts, listed, added.lines)
                else:
                    manifest.save_listing(name, listed, lines)
            crawl.reports = added.reports
            return _report(crawl, len(listing.files) + len(listing.skipped))
    seen = {} if crawl.full else manifest.load(name)
    _crawl_files(crawl, listing, seen, progress)
    if not plan:
        summary = {
            "tables": {_short(t.name): t.files for t in crawl.reports if t.files},
            "skipped": [[s.key, s.reason] for s in crawl.skipped if s not in listing.skipped],
            "exact": _exact_tables(crawl),
        }
        manifest.save_state(
            CrawlerState(name, crawl.started, state.last_event_id, shape, False, listed, summary)
        )
        manifest.save_listing(name, listed, lines)
        manifest.record_changes(
            name, CrawlChanges(_crawl_id(crawl.started), crawl.started, crawl.changes)
        )
    return _report(crawl, len(listing.files) + len(listing.skipped))


def _short(qualified: str) -> str:
    """``raw.sales`` → ``sales``."""
    return qualified.split(".", 1)[1]


def _exact_tables(crawl: _Crawl) -> list[dict[str, Any]] | None:
    """The crawl's tables, in report order, when every one is exact (see ``_Crawl``)."""
    tables = []
    for report in crawl.reports:
        if not report.files:
            continue
        exact = crawl.exact.get(_short(report.name))
        if exact is None:
            return None
        tables.append(exact)
    return tables


def _crawl_id(started: datetime) -> str:
    return f"cr_{started.strftime('%Y%m%d%H%M%S%f')}_{secrets.token_hex(4)}"


def _report(crawl: _Crawl, files_seen: int) -> CrawlReport:
    return CrawlReport(
        crawler=crawl.name,
        path=crawl.spec.path,
        database=crawl.database,
        started_at=crawl.started,
        finished_at=datetime.now(UTC),
        plan=crawl.plan,
        tables=crawl.reports,
        skipped=crawl.skipped,
        files_seen=files_seen,
        full=crawl.full,
    )


def _unchanged(crawl: _Crawl, listing: Listing, summary: dict[str, Any]) -> CrawlReport | None:
    """The report of a crawl that found nothing new, changed or removed; ``None`` when
    a table of the last crawl is gone from the catalog (the crawl then recreates it)."""
    for key, reason in summary.get("skipped", []):
        crawl.skipped.append(SkippedFile(key, reason))
    rows = {t["name"]: t["rows"] for t in summary.get("exact") or []}
    for table_name, files in summary.get("tables", {}).items():
        current = crawl.project.catalog.raw.find(TableName(crawl.database, table_name))
        if current is None:
            return None
        report = table_report(current, "unchanged", current.version, TableDiff(), [])
        estimate = rows.get(table_name, report.rows_estimate)
        crawl.reports.append(replace(report, files=files, rows_estimate=estimate))
    return _report(crawl, len(listing.files) + len(listing.skipped))


def _crawl_files(
    crawl: _Crawl, listing: Listing, seen: dict[FileId, SeenFile], progress: Progress | None
) -> None:
    import duckdb

    store = crawl.project.store
    listed = {(f.bucket, f.key) for f in listing.files}
    deleted = [key for key in seen if key not in listed]
    reused: dict[str, SeenFile] = {}
    to_read: list[DataFile] = []
    for file in listing.files:
        old = seen.get((file.bucket, file.key))
        if old is not None and old.size == file.size and old.etag == file.etag:
            reused[file.key] = old
        else:
            to_read.append(file)
    probes: dict[str, Probe] = {}
    for done, file in enumerate(to_read, 1):
        probe = probe_file(store, file)
        old = seen.get((file.bucket, file.key))
        if old is not None and probe.hash and probe.hash == old.hash:
            reused[file.key] = replace(
                old, size=file.size, etag=file.etag, modified=_seconds(file.modified)
            )
        else:
            probes[file.key] = probe
        if progress is not None:
            progress(done, len(to_read), file.location)
    classes = classify_probed(
        to_read,
        probes,
        custom_classifiers(crawl.spec.classifiers, crawl.project.settings.classifiers),
    )
    fresh = [as_classified(f, classes) for f in to_read if f.key in probes]
    crawl.added_urls = {f.url for f in fresh if (f.bucket, f.key) not in seen}
    known = {
        e.signature: e.schema
        for e in reused.values()
        if e.signature is not None and e.schema is not None
    }
    con = duckdb.connect()
    try:
        attach_store(con, store)
        outcomes = _infer(crawl, con, fresh, probes, classes, known)
        schemas: dict[str, FileSchema] = {}
        for key, entry in reused.items():
            if entry.schema is not None:
                schemas[key] = entry.schema
            elif entry.skip_reason is not None:
                crawl.skipped.append(SkippedFile(f"{entry.bucket}/{key}", entry.skip_reason))
        for key, outcome in outcomes.items():
            if isinstance(outcome, FileSchema):
                schemas[key] = outcome
            else:
                crawl.skipped.append(outcome)
        usable = [with_format(f, schemas[f.key]) for f in listing.files if f.key in schemas]
        touched = {f.key for f in fresh} | {key for _, key in deleted}
        tables = _tables(crawl, con, usable, schemas, seen, deleted, touched)
    finally:
        con.close()
    _handle_gone(crawl, seen, deleted, set(tables.values()))
    if not crawl.plan:
        _remember(crawl, listing, seen, reused, probes, outcomes, tables)


def _infer(
    crawl: _Crawl,
    con: Any,
    files: list[DataFile],
    probes: dict[str, Probe],
    classes: dict[str, Classification],
    known: dict[str, FileSchema],
) -> dict[str, FileSchema | SkippedFile]:
    """What inference makes of new or changed files, with their classification noted."""
    outcomes = infer_files(
        con,
        files,
        probes,
        sample_files=crawl.spec.sample_files,
        known=known,
        store=crawl.project.store,
        classes=classes,
    )
    return {
        key: with_classification(o, classes[key])
        if key in classes and isinstance(o, FileSchema)
        else o
        for key, o in outcomes.items()
    }


def _groups(crawl: _Crawl, files: list[DataFile], schemas: dict[str, FileSchema]) -> list[Any]:
    spec = crawl.spec
    if spec.table_level is not None:
        levels = levels_below(crawl.prefix, spec.table_level)
        return group_by_folder(crawl.bucket, crawl.prefix, files, levels)
    if spec.grouping == "folder":
        return group_by_folder(crawl.bucket, crawl.prefix, files, 1)
    cache: dict[int, Profile] = {}
    profiles: dict[str, Profile] = {}
    for file in files:
        schema = schemas[file.key]
        key = id(schema.fields)
        if key not in cache:
            cache[key] = (file.format, frozenset(f.name.lower() for f in schema.fields))
        profiles[file.key] = cache[key]
    return group_by_schema(crawl.bucket, crawl.prefix, files, profiles)


def _tables(
    crawl: _Crawl,
    con: Any,
    files: list[DataFile],
    schemas: dict[str, FileSchema],
    seen: dict[FileId, SeenFile],
    deleted: list[FileId],
    touched: set[str],
) -> dict[str, str]:
    """Infer, decide and register every table; returns object key → table name."""
    source = TableSource(
        crawl.database, crawl.name, crawl.spec.path, bucket_globs(crawl.prefix, crawl.spec.exclude)
    )
    catalog = crawl.project.catalog
    decided: list[tuple[InferredTable, RawTable | None, TableGroup]] = []
    evolved: set[str] = set()
    for group in _groups(crawl, files, schemas):
        existing = catalog.raw.find(TableName(crawl.database, group.name))
        for fmt, part in split_by_format(group, existing.format if existing else None):
            inferred = build_table(source, fmt, part, schemas)
            if inferred is None:
                continue
            current = catalog.raw.find(inferred.table.table_name)
            if current is not None and crawl.spec.on_change == "update":
                columns, keys = evolve(current, inferred.table)
                if columns != inferred.table.columns or keys != inferred.table.partition_keys:
                    inferred = build_table(source, fmt, part, schemas, columns=(columns, keys))
                    assert inferred is not None
                    evolved.add(inferred.table.name)
            decided.append((inferred, current, part))
    if crawl.spec.on_change == "fail":
        _refuse_changes(crawl, decided)
    membership: dict[str, str] = {}
    gone_from: dict[str, set[str]] = {}
    for _bucket, key in deleted:
        entry = seen[(_bucket, key)]
        if entry.table is not None:
            gone_from.setdefault(entry.table, set()).add(key)
    for inferred, current, part in decided:
        for file in part.files:
            if file.key in schemas:
                membership[file.key] = inferred.table.name
        changed = bool(touched & {f.key for f in part.files}) or inferred.table.name in gone_from
        _decide(crawl, con, inferred, current, part, changed, schemas)
        crawl.exact[inferred.table.name] = _exactness(
            inferred, crawl.reports[-1], inferred.table.name not in evolved
        )
    return membership


def _exactness(inferred: InferredTable, report: TableReport, pure: bool) -> dict[str, Any] | None:
    """What the fast path needs of a table the catalog now holds exactly as inferred
    (no policy reshaped it, no warning), else ``None``."""
    if not pure or inferred.warnings or report.action not in ("created", "updated", "unchanged"):
        return None
    properties = inferred.table.properties
    return {
        "name": inferred.table.name,
        "version": report.version,
        "files": inferred.files,
        "bytes": int(properties["bytes"]),
        "rows": int(properties["rows_estimate"]),
    }


def _refuse_changes(
    crawl: _Crawl, decided: list[tuple[InferredTable, RawTable | None, TableGroup]]
) -> None:
    changed = [
        f"{current.table_name}: {diff_tables(current, inferred.table).summary()}"
        for inferred, current, _ in decided
        if current is not None and not current.same_definition(inferred.table)
    ]
    if changed:
        raise SchemaChangeRefused(
            f'crawler {crawl.name!r} (on_change = "fail") found schema changes and '
            f"registered nothing: {'; '.join(changed)}. Review them with: lakelet crawl "
            f'{crawl.name} --plan; then set on_change = "update" to apply them'
        )


def _decide(
    crawl: _Crawl,
    con: Any,
    inferred: InferredTable,
    current: RawTable | None,
    group: TableGroup,
    files_changed: bool,
    schemas: dict[str, FileSchema],
) -> None:
    """Apply the policy to one table, register it, record its statistics, report."""
    table = inferred.table
    warnings = list(inferred.warnings)
    diff = diff_tables(current, table)
    action: Action
    register: RawTable | None = None
    if current is None:
        action, register = "created", table
    elif current.same_definition(table) and current.status == ACTIVE:
        action, diff = "unchanged", TableDiff()
    elif current.same_definition(table):
        action, register = "updated", table
        warnings.append(f"its files are back: the {current.status} table is active again")
    elif crawl.spec.on_change == "log":
        action = "logged"
        warnings.append('on_change = "log": the change is reported, not applied')
    else:
        action, register = "updated", table
    version = current.version if current is not None else None
    if register is not None:
        version = (current.version + 1) if current is not None else 1
        if not crawl.plan:
            try:
                stored = crawl.project.catalog.register_raw(register)
            except UserError as exc:  # e.g. an Iceberg table already has that name
                crawl.reports.append(
                    table_report(table, "skipped", None, diff, [*warnings, str(exc)])
                )
                return
            version = stored.version
            before = None if current is None else current.version
            crawl.changes.append(TableChange(table.database, table.name, before, version))
    report = table_report(table, action, version, diff, warnings)
    if not crawl.plan and version is not None and (register is not None or files_changed):
        stats_warning = _record_stats(crawl, con, table, version, group, files_changed, schemas)
        if stats_warning:
            report.warnings.append(stats_warning)
    crawl.reports.append(replace(report, files=inferred.files))


def _record_stats(
    crawl: _Crawl,
    con: Any,
    table: RawTable,
    version: int,
    group: TableGroup,
    files_changed: bool,
    schemas: dict[str, FileSchema],
) -> str | None:
    """Compute and keep statistics: over the new files only when that is enough."""
    registry = crawl.project.catalog.raw
    name = table.table_name
    urls = [f.url for f in group.files if f.key in schemas]
    previous = None if crawl.full else registry.stats(name)
    sampling = Sampling.of(crawl.spec)
    if previous is not None:
        added = [u for u in urls if u in crawl.added_urls]
        if mergeable(previous, table, len(added), len(urls)):
            return merge_new_files(
                registry, con, table, version, previous, added, len(urls), sampling
            )
    result = compute_stats(con, table, urls, sampling)
    if result.stats is not None:
        result.stats["files"] = len(urls)
        registry.record_stats(name, version, result.stats)
    return result.warning


def _handle_gone(
    crawl: _Crawl, seen: dict[FileId, SeenFile], deleted: list[FileId], alive: set[str]
) -> None:
    """Tables of the last crawl that lost every file: ``on_delete`` decides."""
    gone = sorted({t for k in deleted if (t := seen[k].table) is not None} - alive)
    policy = crawl.spec.on_delete
    for table_name in gone:
        current = crawl.project.catalog.raw.find(TableName(crawl.database, table_name))
        if current is None or current.status != ACTIVE:
            continue
        diff = TableDiff(settings=["status"])
        if policy == "log":
            warning = 'no files left; on_delete = "log": the table is kept as it is'
            crawl.reports.append(table_report(current, "logged", current.version, diff, [warning]))
            continue
        status = DEPRECATED if policy == "deprecate" else DELETED
        action: Action = "deprecated" if policy == "deprecate" else "deleted"
        version = current.version + 1
        if not crawl.plan:
            version = crawl.project.catalog.raw.register(current.with_status(status)).version
            crawl.changes.append(TableChange(crawl.database, table_name, current.version, version))
        warning = "no files left under its location"
        report = table_report(current, action, version, diff, [warning])
        crawl.reports.append(replace(report, files=0))


def _remember(
    crawl: _Crawl,
    listing: Listing,
    seen: dict[FileId, SeenFile],
    reused: dict[str, SeenFile],
    probes: dict[str, Probe],
    outcomes: dict[str, Any],
    tables: dict[str, str],
) -> None:
    """Store what this crawl learnt: only the entries that changed, unless it was full."""
    entries: list[SeenFile] = []
    for file in listing.files:
        table = tables.get(file.key)
        old = reused.get(file.key)
        if old is not None:
            if old.table != table:
                entries.append(replace(old, table=table))
            elif crawl.full or old is not seen.get((file.bucket, file.key)):
                entries.append(old)
            continue
        probe = probes[file.key]
        outcome = outcomes.get(file.key)
        schema = outcome if isinstance(outcome, FileSchema) else None
        reason = outcome.reason if isinstance(outcome, SkippedFile) else None
        entries.append(
            SeenFile(
                file.bucket,
                file.key,
                file.size,
                file.etag,
                _seconds(file.modified),
                probe.hash,
                probe.signature,
                table,
                schema,
                reason,
            )
        )
    listed = {(f.bucket, f.key) for f in listing.files}
    gone = [key for key in seen if key not in listed]
    crawl.manifest.update(crawl.name, entries, gone, replace_all=crawl.full)


def _seconds(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()
