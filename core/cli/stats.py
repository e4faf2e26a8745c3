"""``dataeng stats``: the statistics engine on JSON files (the contract in docs/stats.md).

Bad input prints one line on stderr and exits with code 2; results go to stdout as JSON.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from dataeng_agents.core.cli._guard import fail, guarded

app = typer.Typer(
    help="Experiment statistics on sufficient statistics (JSON in, JSON out).", no_args_is_help=True
)

_INPUT = typer.Argument(help="Input JSON file, or - for stdin.", show_default=False)


def _load(path: str) -> Any:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror or exc}")
    try:
        # NaN/Infinity are not JSON; refuse them here so the error names the place.
        return json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        fail(f"{path} is not valid JSON: {exc}")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


@app.command("analyze")
@guarded
def analyze_command(input_path: Annotated[str, _INPUT]) -> None:
    """Analyse every metric x variant against control; print results as JSON."""
    from dataeng_agents.core.stats import analyze

    typer.echo(analyze(_load(input_path)).model_dump_json(indent=2))


@app.command("power")
@guarded
def power_command(input_path: Annotated[str, _INPUT]) -> None:
    """Sample size per variant for an MDE (or the MDE and power at a given size); print JSON."""
    from dataeng_agents.core.stats import power

    typer.echo(power(_load(input_path)).model_dump_json(indent=2, exclude_none=True))
