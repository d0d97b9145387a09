"""``lakelet tables`` and ``lakelet show``: what the catalog holds, raw and Iceberg alike."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from lakelet.catalog import Catalog, RawTable, TableEntry, TableName
from lakelet.cli.context import open_project
from lakelet.cli.output import Format, console, print_json, print_rows
from lakelet.errors import NotFoundError


def register(app: typer.Typer) -> None:
    """Add this room's commands to the `lakelet` app."""

    @app.command("tables")
    def tables(
        ctx: typer.Context,
        database: Annotated[str | None, typer.Argument(help="Only this database.")] = None,
        fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.table,
    ) -> None:
        """List the catalog's tables: crawled raw tables and Iceberg tables."""
        catalog = open_project(ctx).catalog
        if database is not None and database not in catalog.databases():
            known = ", ".join(catalog.databases()) or "none yet"
            raise NotFoundError(f"no database {database!r} in the catalog (databases: {known})")
        rows = [_table_row(catalog, entry) for entry in catalog.tables(database)]
        columns = ["table", "kind", "format", "columns", "location", "version"]
        print_rows(columns, rows, fmt)

    @app.command("show")
    def show(
        ctx: typer.Context,
        table: Annotated[str, typer.Argument(help="DATABASE.TABLE")],
        fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.table,
    ) -> None:
        """Show a table: schema, partitions, and its versions (raw) or snapshots (Iceberg)."""
        catalog = open_project(ctx).catalog
        name = TableName.parse(table)
        kind = catalog.require_kind(name)
        details = raw_details(catalog, name) if kind == "raw" else iceberg_details(catalog, name)
        if fmt is Format.json:
            print_json(details)
        elif fmt is Format.csv:
            rows = [(c["name"], c["type"]) for c in details["columns"]]
            print_rows(["column", "type"], rows, fmt)
        else:
            console().print(_render(details))


def _table_row(catalog: Catalog, entry: TableEntry) -> tuple[Any, ...]:
    if entry.kind == "raw":
        raw = catalog.raw_table(entry.name)
        return (
            str(entry.name),
            "raw",
            raw.format,
            len(raw.all_columns),
            raw.location,
            f"v{raw.version}" + ("" if raw.status == "active" else f" ({raw.status})"),
        )
    iceberg = catalog.load_iceberg(entry.name)
    snapshot = iceberg.current_snapshot()
    return (
        str(entry.name),
        "iceberg",
        "parquet",
        len(iceberg.schema().fields),
        iceberg.location(),
        "no snapshot" if snapshot is None else f"snapshot {snapshot.snapshot_id}",
    )


def raw_details(catalog: Catalog, name: TableName) -> dict[str, Any]:
    """A crawled table as data: definition, current version, statistics and history."""
    from lakelet.crawler.diff import diff_tables

    versions = catalog.raw.versions(name)
    current = catalog.raw.get(name)
    history = []
    previous: RawTable | None = None
    for version in versions:
        history.append(
            {
                "version": version.version,
                "crawled_at": version.crawled_at,
                "crawler": version.crawler,
                "status": version.status,
                "changes": _changes(previous, version, diff_tables(previous, version).summary()),
            }
        )
        previous = version
    return {
        "table": str(name),
        "kind": "raw",
        "location": current.location,
        "format": current.format,
        "classification": current.classification,
        "version": current.version,
        "status": current.status,
        "crawled_at": current.crawled_at,
        "crawler": current.crawler,
        "dialect": current.dialect,
        "properties": current.properties,
        "columns": [{"name": c.name, "type": c.type} for c in current.columns],
        "partition_keys": [{"name": c.name, "type": c.type} for c in current.partition_keys],
        "versions": history,
        "statistics": _statistics(catalog.raw.stats(name)),
    }


def _changes(previous: RawTable | None, version: RawTable, summary: str) -> str:
    """A version's change, saying when it restored or retired an earlier one."""
    notes = []
    if previous is not None and previous.status != version.status:
        notes.append(f"status {previous.status}→{version.status}")
    if "restored_from" in version.properties:
        notes.append(f"restores v{version.properties['restored_from']} (undo)")
    if notes and summary == "no change":
        return "; ".join(notes)
    return "; ".join([summary, *notes])


def _statistics(stats: dict[str, Any] | None) -> dict[str, Any] | None:
    """Rows and per-column statistics of the latest crawl, as shown by ``lakelet show``;
    estimated ones (from a sample of rows) say so, and how many rows they read."""
    if stats is None:
        return None
    estimated = bool(stats.get("estimated"))
    scaled, sampled = (" (est.)", " (sample)") if estimated else ("", "")
    columns = [
        {
            "column": name,
            "type": column.get("type"),
            f"nulls{scaled}": column.get("nulls"),
            f"min{sampled}": column.get("min"),
            f"max{sampled}": column.get("max"),
            "distinct (est.)": column.get("distinct"),
        }
        for name, column in stats.get("columns", {}).items()
    ]
    shown = {"rows": stats.get("rows"), "files": stats.get("files"), "columns": columns}
    if estimated:
        shown["estimated_from_rows"] = stats.get("sample_rows")
    return shown


def iceberg_details(catalog: Catalog, name: TableName) -> dict[str, Any]:
    """An Iceberg table as data: schema, partition spec and snapshots."""
    table = catalog.load_iceberg(name)
    schema = table.schema()
    current = table.current_snapshot()
    snapshots = []
    for snapshot in table.snapshots():
        summary = snapshot.summary
        snapshots.append(
            {
                "snapshot_id": snapshot.snapshot_id,
                "timestamp": datetime.fromtimestamp(snapshot.timestamp_ms / 1000, tz=UTC),
                "operation": None if summary is None else str(summary.operation.value),
                "added_rows": None if summary is None else _int(summary["added-records"]),
                "deleted_rows": None if summary is None else _int(summary["deleted-records"]),
                "total_rows": None if summary is None else _int(summary["total-records"]),
            }
        )
    partitions = []
    for spec_field in table.spec().fields:
        source = schema.find_field(spec_field.source_id)
        partitions.append(
            {"name": spec_field.name, "source": source.name, "transform": str(spec_field.transform)}
        )
    return {
        "table": str(name),
        "kind": "iceberg",
        "location": table.location(),
        "format": "parquet",
        "current_snapshot_id": None if current is None else current.snapshot_id,
        "columns": [
            {"name": f.name, "type": str(f.field_type), "required": f.required}
            for f in schema.fields
        ],
        "partition_spec": partitions,
        "snapshots": snapshots,
    }


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _render(details: dict[str, Any]) -> RenderableType:
    header = Table.grid(padding=(0, 2))
    header.add_column(style="bold")
    header.add_column(overflow="fold")
    header.add_row("table", f"{details['table']} ({details['kind']})")
    keys = ("location", "format", "classification", "version", "status", "crawler", "crawled_at")
    for key in keys:
        if details.get(key) is not None:
            header.add_row(key, _text(details[key]))
    if details.get("current_snapshot_id") is not None:
        header.add_row("snapshot", str(details["current_snapshot_id"]))
    for key, value in details.get("dialect", {}).items():
        header.add_row(f"dialect.{key}", _text(value))
    for key, value in details.get("properties", {}).items():
        header.add_row(key, _text(value))
    parts: list[RenderableType] = [header]
    parts.append(_grid("columns", details["columns"]))
    if details.get("partition_keys"):
        parts.append(_grid("partition keys", details["partition_keys"]))
    if details.get("partition_spec"):
        parts.append(_grid("partition spec", details["partition_spec"]))
    if "versions" in details:
        parts.append(_grid("versions", details["versions"]))
    stats = details.get("statistics")
    if stats:
        title = f"statistics ({stats['rows']:,} rows in {stats['files'] or 0:,} files)"
        if stats.get("estimated_from_rows") is not None:
            title = (
                f"statistics (~{stats['rows']:,} rows in {stats['files'] or 0:,} files, "
                f"estimated from a sample of {stats['estimated_from_rows']:,} rows)"
            )
        parts.append(_grid(title, stats["columns"]))
    if "snapshots" in details:
        if details["snapshots"]:
            parts.append(_grid("snapshots", details["snapshots"]))
        else:
            parts.append(Text("no snapshots yet", style="dim"))
    return Group(*parts)


def _grid(title: str, rows: list[dict[str, Any]]) -> RenderableType:
    table = Table(show_edge=False, header_style="bold")
    columns = list(rows[0]) if rows else ["name"]
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(_text(row.get(c)) for c in columns))
    return Group(Text(""), Text(title, style="bold underline"), table)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    return str(value)
