"""``lakelet crawl``: run a crawler from ``lakelet.toml`` or over a path, print the report."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from lakelet.catalog.names import to_identifier
from lakelet.cli.context import open_project
from lakelet.cli.output import Format, console, print_json, print_rows
from lakelet.config import CrawlerSection
from lakelet.errors import UserError


def register(app: typer.Typer) -> None:
    """Add this room's commands to the `lakelet` app."""

    @app.command("crawl")
    def crawl(
        ctx: typer.Context,
        name: Annotated[
            str | None, typer.Argument(help="A crawler of lakelet.toml ([crawlers.NAME]).")
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
        fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.table,
    ) -> None:
        """Infer the schema and partitions of files in the lake and catalog them as tables."""
        from lakelet.crawler import crawler_spec, run_crawler
        from lakelet.crawler.report import render

        project = open_project(ctx)
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

            report = run_crawler(project, name, spec, plan=plan, progress=advance)
        if fmt is Format.json:
            print_json(report.to_dict())
        elif fmt is Format.csv:
            columns = ["name", "action", "version", "format", "files", "rows_estimate", "changes"]
            tables = [t.to_dict() for t in report.tables]
            print_rows(columns, [[t[c] for c in columns] for t in tables], fmt)
        else:
            console().print(render(report))
