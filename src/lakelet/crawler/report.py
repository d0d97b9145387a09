"""What a crawl did, for people (Rich) and for scripts (``to_dict`` → JSON)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from lakelet.catalog.raw import RawTable
from lakelet.crawler.diff import ColumnsDiff, TableDiff
from lakelet.crawler.files import SkippedFile

Action = Literal[
    "created", "updated", "unchanged", "skipped", "logged", "deprecated", "deleted", "restored"
]
ACTION_STYLE = {
    "created": "green",
    "updated": "yellow",
    "unchanged": "dim",
    "skipped": "red",
    "logged": "magenta",
    "deprecated": "yellow",
    "deleted": "red",
    "restored": "cyan",
}
CHANGED = ("created", "updated", "logged", "deprecated", "deleted", "restored")


@dataclass(frozen=True)
class TableReport:
    """One table: ``version`` is the version now current (or that a plan would create)."""

    name: str
    action: Action
    version: int | None
    format: str
    location: str
    files: int
    rows_estimate: int
    diff: TableDiff
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["diff"] = self.diff.to_dict()
        data["changes"] = self.diff.summary() if self.action != "unchanged" else "no change"
        return data


@dataclass(frozen=True)
class CrawlReport:
    crawler: str
    path: str
    database: str
    started_at: datetime
    finished_at: datetime
    plan: bool
    tables: list[TableReport]
    skipped: list[SkippedFile]
    files_seen: int
    full: bool = False
    undo: bool = False

    def table(self, name: str) -> TableReport:
        """The report of ``database.name`` (or just ``name``)."""
        for t in self.tables:
            if name in (t.name, t.name.split(".", 1)[1]):
                return t
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "crawler": self.crawler,
            "path": self.path,
            "database": self.database,
            "plan": self.plan,
            "full": self.full,
            "undo": self.undo,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "files_seen": self.files_seen,
            "tables": [t.to_dict() for t in self.tables],
            "skipped": [asdict(s) for s in self.skipped],
        }


def render(report: CrawlReport) -> RenderableType:
    """The report as a Rich table of tables, a tree of schema changes and the skips."""
    title = f"crawler {report.crawler}: {report.path} → {report.database}"
    if report.undo:
        title = f"undo of crawler {report.crawler}'s last crawl"
    if report.plan:
        title += " (plan: nothing registered)"
    table = Table(title=title, title_justify="left", show_edge=False, header_style="bold")
    for column in ("table", "action", "version", "format", "files", "rows (est.)", "location"):
        table.add_column(column, overflow="fold")
    for t in report.tables:
        table.add_row(
            t.name,
            Text(t.action, style=ACTION_STYLE[t.action]),
            "" if t.version is None else str(t.version),
            t.format,
            str(t.files),
            str(t.rows_estimate),
            t.location,
        )
    parts: list[RenderableType] = [table]
    changed = [t for t in report.tables if t.action in CHANGED or t.warnings]
    if changed:
        tree = Tree("changes")
        for t in changed:
            node = tree.add(Text(f"{t.name} ({t.action})", style=ACTION_STYLE[t.action]))
            _add_columns(node, t.diff.columns, "")
            _add_columns(node, t.diff.partition_keys, "partition ")
            for setting in t.diff.settings:
                node.add(Text(f"~ {setting} changed", style="yellow"))
            for warning in t.warnings:
                node.add(Text(f"! {warning}", style="red"))
        parts.append(tree)
    if report.skipped:
        skipped = Tree(Text(f"{len(report.skipped)} file(s) skipped", style="red"))
        for s in report.skipped:
            skipped.add(f"{s.key}: {s.reason}")
        parts.append(skipped)
    if not report.tables and not report.skipped:
        parts.append(Text(f"no data files under {report.path}", style="yellow"))
    return Group(*parts)


def _add_columns(node: Tree, diff: ColumnsDiff, label: str) -> None:
    for c in diff.added:
        node.add(Text(f"+ {label}{c.name} {c.type}", style="green"))
    for c in diff.removed:
        node.add(Text(f"- {label}{c.name} {c.type}", style="red"))
    for change in diff.changed:
        node.add(Text(f"~ {label}{change.name} {change.old} → {change.new}", style="yellow"))


def print_report(report: CrawlReport, console: Console) -> None:
    console.print(render(report))


def table_report(
    table: RawTable,
    action: Action,
    version: int | None,
    diff: TableDiff,
    warnings: list[str],
) -> TableReport:
    return TableReport(
        name=str(table.table_name),
        action=action,
        version=version,
        format=table.format,
        location=table.location,
        files=int(table.properties.get("files", 0)),
        rows_estimate=int(table.properties.get("rows_estimate", 0)),
        diff=diff,
        warnings=list(warnings),
    )
