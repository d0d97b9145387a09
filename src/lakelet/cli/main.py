"""The ``lakelet`` command: one module per room registers its commands here."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from lakelet import __version__
from lakelet.cli import (
    catalog,
    crawler,
    demo,
    deploy,
    functions,
    jobs,
    project,
    quality,
    read,
    storage,
    up,
    warehouse,
    workflow,
)
from lakelet.cli.context import CliState, parse_overrides
from lakelet.cli.output import console
from lakelet.errors import LakeletError

app = typer.Typer(
    name="lakelet",
    help="A serverless data lake on one laptop: lake, crawlers, catalog, jobs, warehouse.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        print(f"lakelet {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    project_dir: Annotated[
        Path | None,
        typer.Option("--project", "-C", help="Project folder (default: nearest lakelet.toml)."),
    ] = None,
    settings: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a setting: SECTION.KEY=VALUE (repeatable)."),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    ctx.obj = CliState(project_dir=project_dir, overrides=parse_overrides(settings or []))


for room in (
    project,
    storage,
    catalog,
    crawler,
    read,
    jobs,
    quality,
    workflow,
    warehouse,
    functions,
    up,
    deploy,
    demo,
):
    room.register(app)


def main(argv: list[str] | None = None) -> int:
    """Entry point: user errors print one line and exit 2, faults exit 1."""
    try:
        result = app(args=argv, standalone_mode=False)
    except LakeletError as exc:
        console(stderr=True).print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        return exc.exit_code
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        console(stderr=True).print("aborted")
        return 130
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if _is_usage_error(exc):
            exc.show()  # type: ignore[attr-defined]
            return 2
        raise
    return result if isinstance(result, int) else 0


def _is_usage_error(exc: Exception) -> bool:
    """Click's usage errors, from click itself or from the copy Typer vendors."""
    return type(exc).__module__.split(".")[0] in {"click", "typer"} and hasattr(exc, "show")


if __name__ == "__main__":
    sys.exit(main())
