"""`dataeng review PATH...`: review Airflow DAGs, Prefect flows and pipeline specs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from dataeng_agents.core.cli._guard import guarded
from dataeng_agents.core.cli._review_output import (
    FailOn,
    FailOnOption,
    FormatOption,
    OutputFormat,
    OutputOption,
    ProfileOption,
)


@guarded
def review_command(
    paths: Annotated[
        list[Path],
        typer.Argument(help="DAG files, flow files, pipeline specs or folders.", show_default=False),
    ],
    output_format: FormatOption = OutputFormat.table,
    fail_on: FailOnOption = FailOn.error,
    profile: ProfileOption = None,
    airflow_version: Annotated[
        str, typer.Option("--airflow-version", help="Target Airflow version.")
    ] = "3.3",
    runtime: Annotated[
        bool, typer.Option("--runtime", help="Also load the DAGs with DagBag in a subprocess.")
    ] = False,
    python: Annotated[
        str | None,
        typer.Option(
            "--python", help="Interpreter with Airflow for --runtime (default $DATAENG_AIRFLOW_PYTHON)."
        ),
    ] = None,
    runtime_timeout: Annotated[
        float, typer.Option("--runtime-timeout", min=1, help="Seconds for the DagBag load.")
    ] = 300.0,
    config_file: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="pyproject.toml with [tool.dataeng.review] (default: found upwards from the path).",
        ),
    ] = None,
    output: OutputOption = None,
    explain: Annotated[
        bool, typer.Option("--explain", help="Add prioritised advice (Claude with a key, else template).")
    ] = False,
) -> None:
    """Review PATHs and report findings; the exit code gates CI (0 clean, 1 findings, 2 usage error)."""
    from dataeng_agents.core.commands.data_pipeline import narrate_review, render_review, review_paths

    narrator = None
    if explain:  # narration settings are checked before anything is computed: a typo is a usage error
        from dataeng_agents.core.agents import narrator_from_env

        narrator = narrator_from_env()
    result = review_paths(
        paths,
        profile=profile,
        airflow_version=airflow_version,
        runtime=runtime,
        config=config_file,
        python=python,
        runtime_timeout=runtime_timeout,
        progress=output_format is OutputFormat.table,
    )
    advice = narrate_review(result, narrator) if narrator is not None else None
    if output_format is OutputFormat.table:
        from dataeng_agents.core.cli._review_output import print_review_table
        from dataeng_agents.core.review.render import render_table

        print_review_table(lambda console: render_table(result, console), advice, output, written_by=True)
    else:
        text = render_review(result, advice, output_format.value)
        if output:
            output.write_text(text, encoding="utf-8")
        else:
            typer.echo(text)
    raise typer.Exit(result.exit_code(fail_on.value))
