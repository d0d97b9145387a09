"""``lakelet deploy``: the app as an AWS SAM template, and the plan of what it creates."""

from __future__ import annotations

import enum
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from lakelet.cli.context import open_project
from lakelet.cli.output import Format, console, print_json, print_rows
from lakelet.errors import UserError

if TYPE_CHECKING:
    from lakelet.functions.deploy import SamExport
    from lakelet.project import Project

DEFAULT_TEMPLATE = "template.yaml"


class Target(enum.StrEnum):
    sam = "sam"


def register(app: typer.Typer) -> None:
    @app.command("deploy")
    def deploy(
        ctx: typer.Context,
        export: Annotated[
            Target | None, typer.Option("--export", help="Write a template for: sam.")
        ] = None,
        out: Annotated[
            Path | None,
            typer.Option("--out", "-o", help=f"Template file (default: {DEFAULT_TEMPLATE})."),
        ] = None,
        show_plan: Annotated[
            bool, typer.Option("--plan", help="Print the resources the template declares.")
        ] = False,
        code_uri: Annotated[
            str | None,
            typer.Option(
                "--code-uri", help="Folder of the app's code (default: the project folder)."
            ),
        ] = None,
        fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.table,
    ) -> None:
        """Carry the app to AWS: --plan shows what it maps to, --export sam writes it."""
        if export is None and not show_plan:
            raise UserError("say what to do: --plan, or --export sam [--out template.yaml]")
        project = open_project(ctx)
        target = out.resolve() if out is not None else project.root / DEFAULT_TEMPLATE
        code = _code_uri(project, target, code_uri)
        result = _export(project, code)
        for warning in result.warnings:
            console(stderr=True).print(f"[yellow]warning:[/] {escape(warning)}", soft_wrap=True)
        if show_plan:
            _print_plan(result, fmt)
        if export is not None:
            from lakelet.functions.deploy import render

            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(render(result.template), encoding="utf-8")
            count = len(result.template["Resources"])
            message = f"wrote {target} ({count} resources; then: sam build && sam deploy --guided)"
            console(stderr=fmt is not Format.table).print(escape(message), soft_wrap=True)


def _export(project: Project, code_uri: str) -> SamExport:
    from lakelet.functions.deploy import export_sam
    from lakelet.functions.gateway import from_settings
    from lakelet.functions.loader import load_app

    return export_sam(
        load_app(project),
        gateway=from_settings(project.settings),
        queues=project.settings.functions.queues,
        code_uri=code_uri,
    )


def _code_uri(project: Project, template: Path, given: str | None) -> str:
    """The code folder relative to the template, as SAM resolves ``CodeUri``."""
    folder = project.root if given is None else (project.root / given).resolve()
    if not folder.is_dir():
        raise UserError(f"--code-uri {given!r}: no folder {folder}")
    if given is None:
        bulky = [name for name in (".lakelet", "lake", ".venv") if (folder / name).exists()]
        if bulky:
            console(stderr=True).print(
                f"[yellow]warning:[/] the code folder {escape(str(folder))} holds "
                f"{escape(', '.join(bulky))}, which sam build would package too; keep the "
                "app's code in a folder of its own and pass --code-uri FOLDER",
                soft_wrap=True,
            )
    return Path(os.path.relpath(folder, template.parent)).as_posix()


def _print_plan(result: SamExport, fmt: Format) -> None:
    from lakelet.functions.deploy import plan

    items = plan(result)
    if fmt is Format.json:
        print_json({"resources": [item.to_dict() for item in items], "warnings": result.warnings})
        return
    rows = [(i.resource_type, i.logical_id, i.details) for i in items]
    print_rows(["resource", "logical id", "details"], rows, fmt)
