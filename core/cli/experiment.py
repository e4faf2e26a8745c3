"""`dataeng experiment analyze | design` (the data-driven-feature command).

Errors print one line on stderr and exit with code 2 — never a traceback. The lifecycle commands
(explore, tracking-plan, rollout-check) are registered onto the same ``app`` from
``experiment_lifecycle.py``.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from dataeng_agents.core.cli._guard import fail, guarded, run_guarded

app = typer.Typer(
    help="Experiments: analyse results in the warehouse, design and size new ones.", no_args_is_help=True
)

DEFAULT_OUT_ROOT = "dataeng-reports"

_CONFIG = typer.Argument(help="Experiment config (YAML).", show_default=False)
_WAREHOUSE = typer.Option(
    "--warehouse",
    "-w",
    help="duckdb:///file.duckdb | postgresql://user@host/db (default: the config's `warehouse:`).",
)
_OUT = typer.Option("--out", "-o", help=f"Report directory (default: ./{DEFAULT_OUT_ROOT}/<experiment id>).")
_FORMATS = typer.Option("--format", "-f", help="Comma-separated report formats: json,md,html.")


def narrator(max_usd: float | None = None) -> Any:
    """``narrator_from_env()``: the settings are validated first (a bad ``DATAENG_AGENT_*`` value is an
    ``InputError``, so exit 2 before anything is computed); without a key the template narrator,
    without importing the anthropic SDK."""
    import os

    from dataeng_agents.core.narrative import NarrationSettings, TemplateNarrator

    settings = NarrationSettings.from_env()
    if settings.narrator == "template" or (settings.narrator == "auto" and not os.environ.get("ANTHROPIC_API_KEY")):
        return TemplateNarrator()
    from dataeng_agents.core.agents import narrator_from_env

    return narrator_from_env(max_usd=max_usd)


def _parse_time(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        fail(f"--{name}: {value!r} is not an ISO date or datetime (2024-03-01 or 2024-03-01T06:00)")
    return None


def _formats(value: str) -> list[str]:
    out = [f.strip().lower() for f in value.split(",") if f.strip()]
    bad = [f for f in out if f not in ("json", "md", "markdown", "html")]
    if bad or not out:
        fail(f"--format: unknown format(s) {bad or value!r}; use json, md, html")
    return out


@app.command("analyze")
@guarded
def analyze_command(
    config: Annotated[str, _CONFIG],
    warehouse: Annotated[str | None, _WAREHOUSE] = None,
    out: Annotated[str | None, _OUT] = None,
    fmt: Annotated[str, _FORMATS] = "json,md,html",
    start: Annotated[str | None, typer.Option(help="Data interval start (exposures from here).")] = None,
    end: Annotated[
        str | None, typer.Option(help="Data interval end (exposures and events before this).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the compact summary as JSON.")] = False,
    progress: Annotated[bool, typer.Option(help="Show progress on stderr.")] = True,
    max_usd: Annotated[
        float | None,
        typer.Option("--max-usd", min=0, help="Most the narration may cost, in USD (default $DATAENG_AGENT_MAX_USD)."),
    ] = None,
) -> None:
    """Analyse an experiment in its warehouse, write the report, print the decision."""
    formats = _formats(fmt)
    t0, t1 = _parse_time(start, "start"), _parse_time(end, "end")
    if (t0 is None) != (t1 is None):
        fail("give both --start and --end for a data interval")

    def run() -> None:
        from dataeng_agents.core.experiment import analyze_experiment, load_experiment_config
        from dataeng_agents.core.report import write_report

        story = narrator(max_usd)  # before any query: bad narration settings change no result
        cfg = load_experiment_config(Path(config))  # a lifecycle YAML is an experiment config too
        interval = (t0, t1) if t0 is not None and t1 is not None else None
        report = analyze_experiment(
            cfg, warehouse, data_interval=interval, narrator=story, progress=progress
        )
        paths = write_report(report, out or str(Path(DEFAULT_OUT_ROOT) / cfg.id), formats)
        if as_json:
            typer.echo(json.dumps({**report.summary(), "files": paths}, indent=2))
            return
        _print_summary(report.summary(), paths)

    run_guarded(run)


VERDICT_COLORS = {"ship": "green", "do not ship": "red", "keep running": "yellow", "investigate": "magenta"}


def verdict_line(summary: dict[str, Any]) -> str:
    """The coloured ``SHIP one_click  headline`` line of a report summary (rich markup)."""
    verdict = summary["verdict"]
    variant = f" {summary['variant']}" if summary.get("variant") else ""
    color = VERDICT_COLORS.get(verdict, "white")
    return f"[bold {color}]{verdict.upper()}{variant}[/]  {summary.get('headline') or ''}"


def _print_summary(summary: dict[str, Any], paths: dict[str, str]) -> None:
    from rich.console import Console

    console = Console()
    console.print(verdict_line(summary))
    health = ", ".join(f"{k}: {v}" for k, v in summary["health"].items())
    console.print(f"health  {health}")
    for fmt, path in paths.items():
        console.print(f"{fmt:<5} {path}", soft_wrap=True)


@app.command("design")
@guarded
def design_command(
    config: Annotated[str, _CONFIG],
    warehouse: Annotated[str | None, _WAREHOUSE] = None,
    out: Annotated[
        str | None, typer.Option("--out", "-o", help="Also write design.{json,md,html} here.")
    ] = None,
    fmt: Annotated[str, _FORMATS] = "json,md,html",
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the design as JSON instead of Markdown.")
    ] = False,
    progress: Annotated[bool, typer.Option(help="Show progress on stderr.")] = True,
) -> None:
    """Measure baselines in the pre-period and size the experiment; print the plan (Markdown)."""
    formats = _formats(fmt)

    def run() -> None:
        from dataeng_agents.core.experiment import design_experiment, load_experiment_config
        from dataeng_agents.core.report import to_json, to_markdown, write_report

        cfg = load_experiment_config(Path(config))
        report = design_experiment(cfg, warehouse, narrator=narrator(), progress=progress)
        if out:
            write_report(report, out, formats)
        typer.echo(to_json(report) if as_json else to_markdown(report))

    run_guarded(run)
