"""Subcommands of ``infomorphic`` for self-organisation tasks (bars, associative memory, capacity)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's subcommands to the ``infomorphic`` app."""
