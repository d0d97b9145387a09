"""Undoing a crawl: the tables it changed get their previous definitions back.

History stays append-only: the previous definition is registered as a new version
(``restored``), and a table the crawl created gets a ``deleted`` tombstone.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from lakelet.catalog.names import TableName
from lakelet.catalog.raw import DELETED
from lakelet.crawler.diff import diff_tables
from lakelet.crawler.manifest import Manifest
from lakelet.crawler.report import Action, CrawlReport, table_report
from lakelet.errors import UserError

if TYPE_CHECKING:
    from lakelet.project import Project


def undo_crawl(project: Project, name: str, *, plan: bool = False) -> CrawlReport:
    """Revert the table versions the crawler's last (not yet undone) crawl created.

    Each table gets its previous definition back as a new version (``restored``); a
    table the crawl created gets a ``deleted`` tombstone. Undos stack: the next one
    reverts the crawl before. Refused when a table has a version the crawl did not make,
    so an undo never discards someone else's change.
    """
    started = datetime.now(UTC)
    manifest = Manifest(project.metadata)
    last = manifest.last_changes(name)
    if last is None:
        raise UserError(f"crawler {name!r} has no crawl to undo (no table changes recorded)")
    registry = project.catalog.raw
    currents = []
    for change in last.changes:
        table_name = TableName(change.database, change.table)
        current = registry.latest(table_name)
        # At the version that crawl made, or at it restored by undoing later crawls.
        if current is None or change.after not in (
            current.version,
            current.properties.get("restored_from"),
        ):
            now = "gone" if current is None else f"at version {current.version}"
            raise UserError(
                f"cannot undo the crawl of {last.crawled_at:%Y-%m-%d %H:%M:%S} by {name!r}: "
                f"{table_name} is {now}, not at version {change.after} that crawl made; "
                "nothing was undone"
            )
        currents.append((change, current))
    reports = []
    for change, current in currents:
        if change.before is None:
            restored = current.with_status(DELETED, undo_of=change.after)
            action: Action = "deleted"
        else:
            previous = registry.get(current.table_name, change.before)
            restored = previous.with_status(
                previous.status, restored_from=change.before, undo_of=change.after
            )
            action = "restored"
        version = current.version + 1
        if not plan:
            version = registry.register(restored).version
        diff = diff_tables(current, restored)
        reports.append(table_report(restored, action, version, diff, []))
    if not plan:
        manifest.mark_undone(name, last.crawl_id)
        state = manifest.state(name)
        manifest.save_state(replace(state, dirty=True))
    spec_path = project.settings.crawlers[name].path if name in project.settings.crawlers else ""
    database = last.changes[0].database
    return CrawlReport(
        crawler=name,
        path=spec_path,
        database=database,
        started_at=started,
        finished_at=datetime.now(UTC),
        plan=plan,
        tables=reports,
        skipped=[],
        files_seen=0,
        undo=True,
    )
