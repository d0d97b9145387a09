"""CLI commands of the read command (messy files → RFC 4180 CSV)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this room's commands to the `lakelet` app."""
