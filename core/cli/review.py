"""`dataeng review PATH...`: review Airflow DAGs, Prefect flows and pipeline specs."""

from __future__ import annotations

import contextlib
import json
from enum import StrEnum
from pathlib import Path

import typer


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"
    sarif = "sarif"


class FailOn(StrEnum):
    error = "error"
    warn = "warn"
    never = "never"


def review_command(
    paths: list[Path] = typer.Argument(..., help="DAG files, flow files, pipeline specs or folders."),
    output_format: OutputFormat = typer.Option(OutputFormat.table, "--format", "-f", help="Output format."),
    fail_on: FailOn = typer.Option(FailOn.error, "--fail-on", help="Exit 1 when a finding at this level exists."),
    profile: str | None = typer.Option(None, "--profile", help="strict, default or examples (overrides pyproject)."),
    airflow_version: str = typer.Option("3.3", "--airflow-version", help="Target Airflow version."),
    runtime: bool = typer.Option(False, "--runtime", help="Also load the DAGs with DagBag in a subprocess."),
    python: str | None = typer.Option(
        None, "--python", help="Interpreter with Airflow for --runtime (default $DATAENG_AIRFLOW_PYTHON)."
    ),
    runtime_timeout: float = typer.Option(300.0, "--runtime-timeout", min=1, help="Seconds for the DagBag load."),
    config_file: Path | None = typer.Option(
        None, "--config", help="pyproject.toml with [tool.dataeng.review] (default: found upwards from the path)."
    ),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write the report here instead of stdout."),
    explain: bool = typer.Option(False, "--explain", help="Add prioritised advice (Claude with a key, else template)."),
) -> None:
    """Review PATHs and report findings; the exit code gates CI (0 clean, 1 findings, 2 usage error)."""
    from dataeng_agents.core.commands.data_pipeline import narrate_review
    from dataeng_agents.core.errors import DataengError
    from dataeng_agents.core.review import load_config, review_paths
    from rich.console import Console

    err = Console(stderr=True)
    narrator = None
    try:
        if explain:  # narration settings are checked before anything is computed: a typo is a usage error
            from dataeng_agents.core.agents import narrator_from_env

            narrator = narrator_from_env()
        cfg = load_config(profile=profile, pyproject=config_file, search_from=paths[0] if not config_file else None)
        result = review_paths(
            paths, profile=cfg.profile, airflow_version=airflow_version, runtime=runtime, config=cfg,
            python=python, runtime_timeout=runtime_timeout, progress=output_format is OutputFormat.table,
        )
    except DataengError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    advice = narrate_review(result, narrator) if narrator is not None else None
    if output_format is OutputFormat.table:
        from dataeng_agents.core.review.render import render_table

        with contextlib.ExitStack() as stack:
            console = Console(file=stack.enter_context(output.open("w", encoding="utf-8"))) if output else Console()
            render_table(result, console)
            if advice is not None:
                console.print(f"\n[bold]{advice.summary}[/bold]")
                for i, p in enumerate(advice.priorities, start=1):
                    console.print(f"{i}. {p.why}\n   fix: {p.how_to_fix}")
                console.print(f"[dim]Advice written by {advice.provenance.written_by}.[/dim]")
    else:
        if output_format is OutputFormat.json:
            doc = result.model_dump(mode="json")
            if advice is not None:
                doc["advice"] = advice.model_dump(mode="json")
            text = json.dumps(doc, indent=2)
        elif output_format is OutputFormat.markdown:
            text = result.to_markdown()
            if advice is not None:
                text += "\n## Advice\n\n" + advice.summary + "\n\n" + "\n".join(
                    f"{i}. {p.why} Fix: {p.how_to_fix}" for i, p in enumerate(advice.priorities, start=1)
                ) + f"\n\n_Advice written by {advice.provenance.written_by}._\n"
        else:
            text = json.dumps(result.to_sarif(), indent=2)
        if output:
            output.write_text(text, encoding="utf-8")
        else:
            typer.echo(text)
    raise typer.Exit(result.exit_code(fail_on.value))  # type: ignore[arg-type]
