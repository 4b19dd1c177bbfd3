"""Subcommands of ``infomorphic`` for goal functions (search, ablate, report)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's subcommands to the ``infomorphic`` app."""
