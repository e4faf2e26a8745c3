"""`dataeng experiment explore | tracking-plan | rollout-check` (the feature lifecycle)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Adds the lifecycle commands to the ``dataeng experiment`` group."""
