"""The ``dataeng`` command line (typer + rich).

Each command group lives in its own module. The root group loads a module when its command is
dispatched (or listed by ``--help``), so ``dataeng stats analyze`` imports the statistics engine and
nothing of the review, experiment or agent commands; the modules import their heavy libraries
inside the command functions. Every command runs under :func:`._guard.guarded` (exit codes there).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

import typer
from typer.core import TyperGroup

#: command name -> (module of core.cli, attribute): a ``typer.Typer`` group or a command function
COMMANDS: dict[str, tuple[str, str]] = {
    "stats": ("stats", "app"),
    "experiment": ("experiment", "app"),
    "pipeline": ("pipeline", "app"),
    "agent": ("agent", "app"),
    "api": ("api", "app"),
    "review": ("review", "review_command"),
    "demo": ("demo", "demo_command"),
}


_lifecycle_registered = False


def _experiment_app() -> typer.Typer:
    """``dataeng experiment``: analyze/design plus the lifecycle commands of experiment_lifecycle.py."""
    global _lifecycle_registered
    from dataeng_agents.core.cli import experiment, experiment_lifecycle

    if not _lifecycle_registered:
        experiment_lifecycle.register(experiment.app)
        _lifecycle_registered = True
    return experiment.app


def load_command(name: str) -> Any:
    """The click command of ``dataeng NAME``, importing only its module."""
    module_name, attribute = COMMANDS[name]
    if name == "experiment":
        target = _experiment_app()
    else:
        target = getattr(import_module(f"{__name__}.{module_name}"), attribute)
    # registered on a holder group exactly as app.add_typer / app.command would, then taken out
    holder = typer.Typer(add_completion=False)
    if isinstance(target, typer.Typer):
        holder.add_typer(target, name=name)
    else:
        holder.command(name)(target)
    return typer.main.get_group(holder).commands[name]


class LazyGroup(TyperGroup):
    """The root group: commands are loaded from :data:`COMMANDS` on first use."""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in COMMANDS:
            return None
        if cmd_name not in self.commands:
            self.commands[cmd_name] = load_command(cmd_name)
        return self.commands[cmd_name]


app = typer.Typer(
    name="dataeng",
    help="Data-engineering agents and workflows: experiment analysis, pipeline review and design.",
    cls=LazyGroup,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    # a callback keeps the root a group even though no command is registered on it directly
    pass


def main() -> None:
    app()
