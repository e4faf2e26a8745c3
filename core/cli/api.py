"""`dataeng api` commands: review contracts, gate breaking changes, design a serving API, list rules."""

from __future__ import annotations

import contextlib
import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from dataeng_agents.core.cli._guard import fail, guarded
from dataeng_agents.core.cli._review_output import (
    FailOn,
    FailOnOption,
    FormatOption,
    OutputFormat,
    OutputOption,
    ProfileOption,
)

app = typer.Typer(
    help="API contracts (OpenAPI, GraphQL SDL, protobuf): review, breaking-change diff, serving-API design.",
    no_args_is_help=True,
)


class DiffFormat(StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"


class DiffFailOn(StrEnum):
    breaking = "breaking"
    warning = "warning"
    never = "never"


class DesignFormat(StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"
    openapi = "openapi"


def _emit(text: str, output: Path | None) -> None:
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        tmp = output.with_name(output.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(output)
    else:
        typer.echo(text)


@app.command("review")
@guarded
def review_command(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="OpenAPI (.yaml/.json), GraphQL (.graphql) or .proto files or folders.", show_default=False
        ),
    ],
    output_format: FormatOption = OutputFormat.table,
    fail_on: FailOnOption = FailOn.error,
    profile: ProfileOption = None,
    config_file: Annotated[
        Path | None,
        typer.Option(
            "--config", help="pyproject.toml with [tool.dataeng.api] (default: found upwards from the path)."
        ),
    ] = None,
    output: OutputOption = None,
    explain: Annotated[
        bool,
        typer.Option(
            "--explain", help="Add the backend-architect's advice (Claude with a key, else template)."
        ),
    ] = False,
) -> None:
    """Review contract files; the exit code gates CI (0 clean, 1 findings or unreadable file, 2 usage error)."""
    from dataeng_agents.core.api import load_api_config, narrate_api_review, review_api_paths

    cfg = load_api_config(
        profile=profile, pyproject=config_file, search_from=paths[0] if not config_file else None
    )
    result = review_api_paths(paths, config=cfg)
    advice = None
    if explain:
        from dataeng_agents.core.agents import narrator_from_env

        advice = narrate_api_review(result, narrator_from_env())
    if output_format is OutputFormat.table:
        from dataeng_agents.core.api.render import render_review_table
        from dataeng_agents.core.cli._review_output import print_review_table

        print_review_table(
            lambda console: render_review_table(result, console), advice, output, written_by=False
        )
    elif output_format is OutputFormat.json:
        doc = result.model_dump(mode="json")
        if advice is not None:
            doc["advice"] = advice.model_dump(mode="json")
        _emit(json.dumps(doc, indent=2), output)
    elif output_format is OutputFormat.markdown:
        from dataeng_agents.core.api.render import review_markdown_with_advice

        _emit(review_markdown_with_advice(result, advice) if advice else result.to_markdown(), output)
    else:
        _emit(json.dumps(result.to_sarif(), indent=2), output)
    raise typer.Exit(result.exit_code(fail_on.value))  # type: ignore[arg-type]


@app.command("diff")
@guarded
def diff_command(
    old: Annotated[
        Path,
        typer.Argument(
            help="The old contract (with --base: the contract file to compare with its git version).",
            show_default=False,
        ),
    ],
    new: Annotated[Path | None, typer.Argument(help="The new contract (omit with --base).")] = None,
    base: Annotated[
        str | None,
        typer.Option("--base", help="Read the old version of the file from this git ref (e.g. main)."),
    ] = None,
    output_format: Annotated[
        DiffFormat, typer.Option("--format", "-f", help="Output format.")
    ] = DiffFormat.table,
    fail_on: Annotated[
        DiffFailOn, typer.Option("--fail-on", help="Exit 1 when a change at this level exists.")
    ] = DiffFailOn.breaking,
    output: OutputOption = None,
) -> None:
    """Report breaking and non-breaking changes from OLD to NEW; exit 1 on a breaking change (CI gate)."""
    from dataeng_agents.core.api import diff_paths
    from rich.console import Console

    if base is None and new is None:
        fail("give OLD and NEW, or one file with --base REF")
    if base is not None and new is not None:
        fail("with --base give only the file to compare (its old version comes from git)")
    result = diff_paths(old, new, base_ref=None) if new is not None else diff_paths(old, old, base_ref=base)
    if output_format is DiffFormat.table:
        from dataeng_agents.core.api.render import render_diff_table

        with contextlib.ExitStack() as stack:
            console = (
                Console(file=stack.enter_context(output.open("w", encoding="utf-8"))) if output else Console()
            )
            render_diff_table(result, console)
    elif output_format is DiffFormat.json:
        _emit(json.dumps(result.model_dump(mode="json"), indent=2), output)
    else:
        _emit(result.to_markdown(), output)
    raise typer.Exit(result.exit_code(fail_on.value))  # type: ignore[arg-type]


@app.command("design")
@guarded
def design_command(
    spec: Annotated[
        Path,
        typer.Argument(
            help="Pipeline spec (YAML or JSON): its sinks become API resources.", show_default=False
        ),
    ],
    output_format: Annotated[
        DesignFormat, typer.Option("--format", "-f", help="Output format.")
    ] = DesignFormat.table,
    emit_openapi: Annotated[
        Path | None, typer.Option("--emit-openapi", help="Write the OpenAPI 3.1 document here.")
    ] = None,
    explain: Annotated[
        bool,
        typer.Option(
            "--explain", help="Add the backend-architect's narration (Claude with a key, else template)."
        ),
    ] = False,
) -> None:
    """Design the serving API of SPEC's output tables (OpenAPI 3.1 + resilience/observability notes)."""
    from dataeng_agents.core.api import design_serving_api, narrate_serving_design
    from rich.console import Console

    design = design_serving_api(spec)
    if emit_openapi is not None:
        _emit(design.openapi_yaml(), emit_openapi)
    advice = None
    if explain:
        from dataeng_agents.core.agents import narrator_from_env

        advice = narrate_serving_design(design, narrator_from_env())
    if output_format is DesignFormat.openapi:
        typer.echo(design.openapi_yaml())
    elif output_format is DesignFormat.json:
        doc = design.model_dump(mode="json")
        if advice is not None:
            doc["advice"] = advice.model_dump(mode="json")
        typer.echo(json.dumps(doc, indent=2))
    elif output_format is DesignFormat.markdown:
        lines = [
            f"# Serving API for {design.spec_name}",
            "",
            "| Resource | Grain | Partitions | Rows/day | Cache s | Req/min |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| `{r.path}` | {', '.join(r.grain)} | {', '.join(r.partition_keys)} | {r.rows_per_day:,} | "
            f"{r.cache_max_age_seconds} | {r.rate_limit_per_minute} |"
            for r in design.resources
        ]
        lines += ["", "## Resilience and observability", ""]
        lines += [f"- **{n.title}** ({n.area}): {n.detail}" for n in design.notes]
        lines += ["", f"API review at the strict profile: {design.review_findings} finding(s).", ""]
        if advice is not None:
            lines += ["## Advice", "", advice.summary, ""]
        typer.echo("\n".join(lines))
    else:
        from rich.table import Table

        console = Console()
        table = Table(title=f"Serving API for {design.spec_name}")
        for col in ("resource", "grain", "partitions", "rows/day", "cache s", "req/min"):
            table.add_column(col)
        for r in design.resources:
            table.add_row(
                r.item_path or r.path,
                ", ".join(r.grain),
                ", ".join(r.partition_keys),
                f"{r.rows_per_day:,}",
                str(r.cache_max_age_seconds),
                str(r.rate_limit_per_minute),
            )
        console.print(table)
        for n in design.notes:
            console.print(f"[cyan]{n.area}[/cyan] {n.title}: [dim]{n.detail}[/dim]")
        console.print(
            f"API review (strict): {design.review_findings} finding(s); "
            f"validator errors: {len(design.validator_errors)}"
        )
        if advice is not None:
            console.print(f"\n[bold]{advice.summary}[/bold]")
    if design.review_findings or design.validator_errors:
        raise typer.Exit(1)


@app.command("rules")
@guarded
def rules_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print the catalogue as JSON.")] = False,
    target: Annotated[
        str | None, typer.Option("--target", help="Only openapi, graphql or proto rules.")
    ] = None,
) -> None:
    """List the API contract rules (id, category, default severity, applies to, title)."""
    from dataeng_agents.core.api import API_RULES
    from dataeng_agents.core.cli._review_output import print_rule_catalogue

    rules = [r for r in API_RULES.values() if target is None or target in r.targets]
    print_rule_catalogue(rules, as_json=as_json, title="API contract rules")
