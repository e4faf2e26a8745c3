"""``dataeng stats``: the statistics engine on JSON files (the contract in docs/stats.md).

Bad input prints one line on stderr and exits with code 2; results go to stdout as JSON.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(
    help="Experiment statistics on sufficient statistics (JSON in, JSON out).", no_args_is_help=True
)

_INPUT = typer.Argument(help="Input JSON file, or - for stdin.", show_default=False)


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


def _load(path: str) -> Any:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        _fail(f"cannot read {path}: {exc.strerror or exc}")
    try:
        # NaN/Infinity are not JSON; refuse them here so the error names the place.
        return json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        _fail(f"{path} is not valid JSON: {exc}")
    return None  # unreachable: _fail raises


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _run(fn: Any, raw: Any) -> None:
    from dataeng_agents.core.errors import InputError

    try:
        out = fn(raw)
    except InputError as exc:
        _fail(str(exc).replace("\n", " "))
    typer.echo(out.model_dump_json(indent=2))


@app.command("analyze")
def analyze_command(input_path: Annotated[str, _INPUT]) -> None:
    """Analyse every metric x variant against control; print results as JSON."""
    from dataeng_agents.core.stats import analyze

    _run(analyze, _load(input_path))


@app.command("power")
def power_command(input_path: Annotated[str, _INPUT]) -> None:
    """Sample size per variant for an MDE (or the MDE and power at a given size); print JSON."""
    from dataeng_agents.core.stats import power

    raw = _load(input_path)
    from dataeng_agents.core.errors import InputError

    try:
        out = power(raw)
    except InputError as exc:
        _fail(str(exc).replace("\n", " "))
    typer.echo(out.model_dump_json(indent=2, exclude_none=True))
