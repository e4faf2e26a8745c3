"""The ``dataeng`` command line (typer + rich).

Each command group lives in its own module and registers a ``typer.Typer`` named ``app``;
heavy libraries are imported inside the commands so ``dataeng --help`` stays fast.
"""

from __future__ import annotations

import typer
from dataeng_agents.core.cli import agent, demo, experiment, experiment_lifecycle, pipeline, review, stats

app = typer.Typer(
    name="dataeng",
    help="Data-engineering agents and workflows: experiment analysis, pipeline review and design.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(stats.app, name="stats")
experiment_lifecycle.register(experiment.app)
app.add_typer(experiment.app, name="experiment")
app.add_typer(pipeline.app, name="pipeline")
app.add_typer(agent.app, name="agent")
app.add_typer(__import__("dataeng_agents.core.cli.api", fromlist=["app"]).app, name="api")
app.command("review")(review.review_command)
app.command("demo")(demo.demo_command)


def main() -> None:
    app()
