"""What every command shares: the global options and how to open the project."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

from lakelet.errors import ConfigError
from lakelet.project import Project


@dataclass
class CliState:
    project_dir: Path | None = None
    overrides: dict[str, Any] = field(default_factory=dict)


def state(ctx: typer.Context) -> CliState:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, CliState) else CliState()


def open_project(ctx: typer.Context) -> Project:
    st = state(ctx)
    return Project.open(st.project_dir, overrides=st.overrides)


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``--set section.key=value`` flags; values are TOML literals or plain strings."""
    import tomllib

    result: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or "." not in key:
            raise ConfigError(f"--set {item!r}: expected SECTION.KEY=VALUE, e.g. warehouse.uri=...")
        try:
            result[key.strip()] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            result[key.strip()] = value
    return result
