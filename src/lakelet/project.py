"""Project: a folder with ``lakelet.toml``; the composition root that wires backends.

Backends are built on first use, so a command pays only for what it touches (pyiceberg
and DuckDB are not imported to list the lake). Nothing here is global: every command
opens its own :class:`Project`.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakelet.config import CONFIG_FILE, Settings, load_settings
from lakelet.errors import ConfigError, UserError

if TYPE_CHECKING:
    import sqlalchemy as sa

    from lakelet.catalog import Catalog
    from lakelet.storage.events import EventLog, RecordingStore
    from lakelet.warehouse.base import Warehouse

STATE_DIR = ".lakelet"

TEMPLATE = """\
# Lakelet project settings. Every key is optional; see the README for the full list.
[project]
name = "{name}"

[lake]                      # a folder, or "s3://bucket/prefix"
root = "lake"

[catalog]                   # Iceberg SQL catalog: sqlite (default) or postgresql://
uri = "sqlite:///.lakelet/catalog.db"

[warehouse]                 # duckdb (default) or postgresql://
uri = "duckdb:///.lakelet/warehouse.duckdb"

# [crawlers.sales]
# path = "raw/sales/"
# database = "raw"

# [jobs.daily_sales]
# sql = "jobs/daily_sales.sql"
# output = "curated.daily_sales"
# mode = "overwrite"
"""


class Project:
    """An opened project: its settings and lazily-built lake, catalog and warehouse."""

    def __init__(self, root: Path, settings: Settings) -> None:
        self.root = root.resolve()
        self.settings = settings

    @classmethod
    def open(
        cls,
        path: Path | None = None,
        *,
        env: Mapping[str, str] | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> Project:
        """Open the project at ``path``, or the nearest one above the current folder."""
        root = find_root(path or Path.cwd())
        return cls(root, load_settings(root, env=env, overrides=overrides))

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    @cached_property
    def metadata(self) -> sa.Engine:
        from lakelet.metadata import open_engine

        return open_engine(self.settings.metadata.uri, self.root)

    @cached_property
    def events(self) -> EventLog:
        from lakelet.storage.events import EventLog

        return EventLog(self.metadata)

    @cached_property
    def store(self) -> RecordingStore:
        from lakelet.storage import open_store
        from lakelet.storage.events import RecordingStore

        inner = open_store(self.settings.lake.root, base=self.root, s3=self.settings.s3)
        return RecordingStore(inner, self.events)

    @cached_property
    def catalog(self) -> Catalog:
        from lakelet.catalog import Catalog

        return Catalog(
            self.settings.catalog.uri,
            base=self.root,
            name=self.settings.catalog.name,
            store=self.store,
            s3=self.settings.s3,
        )

    @cached_property
    def warehouse(self) -> Warehouse:
        from lakelet.warehouse import open_warehouse

        return open_warehouse(self.settings.warehouse.uri, base=self.root)


def find_root(start: Path) -> Path:
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder
    raise UserError(
        f"no {CONFIG_FILE} in {start} or any folder above it; "
        "create a project with: lakelet init [DIR]"
    )


def init_project(folder: Path, name: str | None = None) -> Project:
    """Create ``lakelet.toml``, the lake with its buckets and ``.lakelet/``; idempotent."""
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / CONFIG_FILE
    if not config.exists():
        config.write_text(TEMPLATE.format(name=name or folder.name), encoding="utf-8")
    (folder / STATE_DIR).mkdir(exist_ok=True)
    (folder / "jobs").mkdir(exist_ok=True)
    project = Project(folder, load_settings(folder))
    for bucket in project.settings.lake.buckets:
        project.store.create_bucket(bucket)
    if not project.settings.lake.buckets:
        raise ConfigError(f"{config}: lake.buckets is empty; name at least one bucket")
    return project
