"""``lakelet init``: create a project."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lakelet.cli.output import console
from lakelet.config import CONFIG_FILE
from lakelet.project import init_project

DirectoryArg = Annotated[Path, typer.Argument(help="Project folder (created if missing).")]
NameOpt = Annotated[str | None, typer.Option(help="Project name (default: folder name).")]


def register(app: typer.Typer) -> None:
    @app.command("init")
    def init(directory: DirectoryArg = Path("."), name: NameOpt = None) -> None:
        """Create lakelet.toml, the lake (buckets raw and curated) and .lakelet/ for state."""
        project = init_project(directory, name)
        buckets = ", ".join(project.store.buckets())
        out = console()
        out.print(f"Initialised Lakelet project [bold]{project.settings.project.name}[/]")
        out.print(f"  folder    {project.root}")
        out.print(f"  settings  {project.root / CONFIG_FILE}")
        out.print(f"  lake      {project.store.root}  (buckets: {buckets})")
        out.print(f"  state     {project.state_dir}")
