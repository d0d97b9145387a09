"""``lakelet crawl``: run a crawler from ``lakelet.toml`` or over a path, print the report.

``--plan`` shows what a crawl would change; ``--undo`` reverts the crawler's last crawl;
``--full`` reads every file instead of only new or changed ones; ``--due`` runs the
crawlers whose schedule fired, ``--events`` those with ``on_arrival`` and new files.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from lakelet.catalog.names import to_identifier
from lakelet.cli.context import open_project
from lakelet.cli.output import Format, console, print_json, print_rows
from lakelet.config import CrawlerSection
from lakelet.errors import UserError

if TYPE_CHECKING:
    from lakelet.crawler.report import CrawlReport
    from lakelet.project import Project


def register(app: typer.Typer) -> None:
    """Add this room's commands to the `lakelet` app."""

    @app.command("crawl")
    def crawl(
        ctx: typer.Context,
        name: Annotated[
            str | None, typer.Argument(help="A crawler of lakelet.toml (\\[crawlers.NAME]).")
        ] = None,
        path: Annotated[
            str | None, typer.Option("--path", help="Crawl BUCKET/PREFIX/ instead of a crawler.")
        ] = None,
        database: Annotated[
            str, typer.Option("--database", help="Database of the tables (with --path).")
        ] = "raw",
        crawler_name: Annotated[
            str | None,
            typer.Option("--name", help="Name recorded as the tables' crawler (with --path)."),
        ] = None,
        exclude: Annotated[
            list[str] | None,
            typer.Option("--exclude", help="Glob of files to leave out (with --path; repeatable)."),
        ] = None,
        plan: Annotated[
            bool, typer.Option("--plan", help="Show what would change; register nothing.")
        ] = False,
        undo: Annotated[
            bool,
            typer.Option("--undo", help="Restore the tables the crawler's last crawl changed."),
        ] = False,
        full: Annotated[
            bool, typer.Option("--full", help="Read every file, not only new or changed ones.")
        ] = False,
        due: Annotated[
            bool, typer.Option("--due", help="Run the crawlers whose schedule is due.")
        ] = False,
        events: Annotated[
            bool,
            typer.Option("--events", help="Run the on_arrival crawlers that have new files."),
        ] = False,
        fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.table,
    ) -> None:
        """Infer the schema and partitions of files in the lake and catalog them as tables."""
        from lakelet.crawler import crawler_spec, run_crawler
        from lakelet.crawler.undo import undo_crawl

        project = open_project(ctx)
        if due or events:
            if name is not None or path is not None or undo:
                raise UserError("--due and --events run the configured crawlers: give no NAME")
            _run_triggered(project, due=due, events=events, fmt=fmt)
            return
        if undo:
            if name is None:
                raise UserError("--undo needs a crawler NAME: lakelet crawl NAME --undo")
            crawler_spec(project, name)
            _print_reports([undo_crawl(project, name, plan=plan)], fmt)
            return
        if name is not None and path is not None:
            raise UserError("give a crawler NAME or --path BUCKET/PREFIX/, not both")
        if name is not None:
            spec = crawler_spec(project, name)
        elif path is not None:
            spec = CrawlerSection(path=path, database=database, exclude=list(exclude or []))
            name = crawler_name or to_identifier(path.strip("/").rsplit("/", 1)[-1])
        else:
            known = ", ".join(sorted(project.settings.crawlers)) or "none in lakelet.toml"
            raise UserError(
                f"name a crawler (crawlers: {known}) or give --path BUCKET/PREFIX/ [--database DB]"
            )
        with Progress(
            TextColumn("[bold]crawl[/] {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=console(stderr=True),
            transient=True,
            disable=fmt is not Format.table,
        ) as progress:
            task = progress.add_task(spec.path, total=None)

            def advance(done: int, total: int, key: str) -> None:
                progress.update(task, completed=done, total=total, description=key)

            report = run_crawler(project, name, spec, plan=plan, full=full, progress=advance)
        _print_reports([report], fmt)


def _run_triggered(project: Project, *, due: bool, events: bool, fmt: Format) -> None:
    from lakelet.crawler.arrival import crawl_due, crawl_on_arrival

    reports = []
    if events:
        reports += crawl_on_arrival(project)
    if due:
        reports += crawl_due(project)
    if not reports and fmt is Format.table:
        what = " and ".join(w for w, on in (("due", due), ("with new files", events)) if on)
        console().print(f"no crawler {what}")
        return
    _print_reports(reports, fmt, many=True)


def _print_reports(reports: list[CrawlReport], fmt: Format, *, many: bool = False) -> None:
    from lakelet.crawler.report import render

    if fmt is Format.json:
        data = [r.to_dict() for r in reports]
        print_json(data if many else data[0])
    elif fmt is Format.csv:
        columns = ["name", "action", "version", "format", "files", "rows_estimate", "changes"]
        tables = [t.to_dict() for r in reports for t in r.tables]
        print_rows(columns, [[t[c] for c in columns] for t in tables], fmt)
    else:
        for report in reports:
            console().print(render(report))
