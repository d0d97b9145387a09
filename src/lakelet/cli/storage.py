"""``lakelet put`` and ``lakelet ls``: land files in the lake and look at it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from lakelet.cli.context import open_project
from lakelet.cli.output import Format, console, print_json, print_rows
from lakelet.errors import UserError
from lakelet.storage.base import iter_objects, split_location, validate_key


def register(app: typer.Typer) -> None:
    @app.command("put")
    def put(
        ctx: typer.Context,
        source: Annotated[Path, typer.Argument(help="A file or a folder to upload.")],
        destination: Annotated[
            str, typer.Argument(help="BUCKET/KEY for a file, BUCKET/PREFIX/ for a folder.")
        ],
        fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.table,
    ) -> None:
        """Land a file or a folder in the lake; each object records an ObjectCreated event."""
        project = open_project(ctx)
        bucket, key = split_location(destination)
        plan = _upload_plan(source, key)
        store = project.store
        if bucket not in store.buckets():
            raise UserError(
                f"no bucket {bucket!r} in the lake; buckets: {', '.join(store.buckets())}"
            )
        total = sum(path.stat().st_size for path, _ in plan)
        written = []
        with Progress(
            TextColumn("[bold]put[/] {task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=console(stderr=True),
            transient=True,
            disable=fmt is not Format.table,
        ) as progress:
            task = progress.add_task(f"{len(plan)} file(s)", total=total)
            for path, object_key in plan:
                with path.open("rb") as stream:
                    info = store.put(bucket, object_key, stream)
                written.append(info)
                progress.advance(task, info.size)
        rows = [(f"{i.bucket}/{i.key}", i.size, i.etag) for i in written]
        if fmt is Format.json:
            print_json([{"object": r[0], "size": r[1], "etag": r[2]} for r in rows])
        else:
            print_rows(["object", "size", "etag"], rows, fmt)
            if fmt is Format.table:
                console().print(f"{len(written)} object(s), {total} bytes")

    @app.command("ls")
    def ls(
        ctx: typer.Context,
        location: Annotated[
            str | None, typer.Argument(help="BUCKET or BUCKET/PREFIX; omit to list buckets.")
        ] = None,
        fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.table,
    ) -> None:
        """List buckets, or the objects under a bucket and prefix."""
        project = open_project(ctx)
        store = project.store
        if location is None:
            print_rows(["bucket"], [(b,) for b in store.buckets()], fmt)
            return
        bucket, prefix = split_location(location)
        objects = list(iter_objects(store, bucket, prefix))
        rows = [
            (f"{o.bucket}/{o.key}", o.size, o.last_modified.strftime("%Y-%m-%d %H:%M:%S"))
            for o in objects
        ]
        print_rows(["object", "size", "modified (UTC)"], rows, fmt)


def _upload_plan(source: Path, key: str) -> list[tuple[Path, str]]:
    """Files to upload with their keys; a folder keeps its relative layout."""
    if not source.exists():
        raise UserError(f"{source}: no such file or folder")
    if source.is_file():
        if not key or key.endswith("/"):
            key = f"{key}{source.name}"
        return [(source, validate_key(key))]
    prefix = key if not key or key.endswith("/") else f"{key}/"
    files = sorted(p for p in source.rglob("*") if p.is_file())
    if not files:
        raise UserError(f"{source}: the folder has no files to upload")
    return [(p, validate_key(prefix + p.relative_to(source).as_posix())) for p in files]
