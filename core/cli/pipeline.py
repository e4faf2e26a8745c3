"""`dataeng pipeline` commands: design a pipeline from a spec, list the review rules."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from dataeng_agents.core.cli._guard import guarded

app = typer.Typer(help="Pipeline design from a spec, and the review rule catalogue.", no_args_is_help=True)


class DesignFormat(StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"


def _client_from_env() -> object | None:
    """An SDK client when ANTHROPIC_API_KEY is set (and DATAENG_NARRATOR is not ``template``), else None."""
    import os

    if os.environ.get("DATAENG_NARRATOR", "").lower() == "template" or not os.environ.get(
        "ANTHROPIC_API_KEY"
    ):
        return None
    from dataeng_agents.core.llm.client import build_client

    return build_client(
        os.environ["ANTHROPIC_API_KEY"], base_url=os.environ.get("ANTHROPIC_BASE_URL") or None
    )


@app.command("design")
@guarded
def design_command(
    spec: Annotated[
        str,
        typer.Argument(
            help="Pipeline spec (YAML or JSON), or the request in a sentence (quoted).", show_default=False
        ),
    ],
    spec_out: Annotated[
        Path | None,
        typer.Option(
            "--spec-out", help="Where a spec drafted from a sentence is written (default ./<name>.spec.yaml)."
        ),
    ] = None,
    scaffold: Annotated[
        Path | None, typer.Option("--scaffold", help="Also write the runnable project to this folder.")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite an existing drafted spec / scaffold files.")
    ] = False,
    output_format: Annotated[
        DesignFormat, typer.Option("--format", "-f", help="Output format.")
    ] = DesignFormat.table,
    explain: Annotated[
        bool, typer.Option("--explain", help="Add narrated advice (Claude with a key, else template).")
    ] = False,
    max_usd: Annotated[
        float | None, typer.Option("--max-usd", help="Most one Claude call may spend (drafting).")
    ] = None,
) -> None:
    """Recommend an architecture with a scored comparison, components and a cost estimate.

    SPEC is a spec file, or a sentence such as "Design a real-time streaming pipeline from Kafka to
    BigQuery": the sentence is drafted into a spec (Claude with ANTHROPIC_API_KEY, else the offline
    extractor), written for you to edit, with its assumptions and open questions, then designed.
    """
    from dataeng_agents.core.commands.data_pipeline import DEFAULT_SPEC_OUT, design_request
    from dataeng_agents.core.design.draft import is_sentence
    from dataeng_agents.core.errors import InputError
    from rich.console import Console
    from rich.table import Table

    console = Console()
    err = Console(stderr=True)
    narrator = None
    if explain:  # narration settings are checked before anything is computed
        from dataeng_agents.core.agents import narrator_from_env

        narrator = narrator_from_env()
    try:
        run = design_request(
            spec,
            client=_client_from_env() if is_sentence(spec) else None,
            spec_out=spec_out or DEFAULT_SPEC_OUT,
            scaffold_dir=scaffold,
            force=force,
            max_usd=max_usd,
            narrator=narrator,
        )
    except InputError as exc:
        hint = {"spec_out": "--spec-out", "scaffold_dir": "--scaffold"}.get(exc.field)
        if hint is None:
            raise
        raise typer.BadParameter(exc.message, param_hint=hint) from exc
    design, draft, advice, target = run.design, run.draft, run.advice, run.spec_path
    if output_format is DesignFormat.json:
        typer.echo(json.dumps(run.to_json_doc(), indent=2))
        return
    if draft is not None:
        how = "Claude" if draft.drafted_by == "claude" else "the offline extractor"
        note = f" (Claude not used: {draft.fallback_reason})" if draft.fallback_reason else ""
        err.print(
            f"spec drafted by {how}{note} -> {target} (edit it and rerun `dataeng pipeline design {target}`)"
        )
    if output_format is DesignFormat.markdown:
        typer.echo(run.to_markdown())
    else:
        if draft is not None:
            console.print(
                "[bold]Assumptions[/bold] (from the request):\n"
                + "\n".join(f"  - {a}" for a in draft.assumptions)
            )
        console.print(
            f"[bold]Recommendation:[/bold] {design.recommendation_label} on {design.cost.warehouse} "
            f"(schedule {design.schedule})"
        )
        table = Table(title="Architecture comparison")
        table.add_column("architecture")
        table.add_column("score", justify="right")
        table.add_column("reasons")
        for s in design.comparison:
            table.add_row(s.label, str(s.score), "\n".join(f"{r.points:+d} {r.text}" for r in s.reasons))
        console.print(table)
        for c in design.components():
            console.print(f"[cyan]{c.area}[/cyan]: {c.choice} [dim]- {c.why}[/dim]")
        cost = Table(title="Rough monthly cost (USD)")
        cost.add_column("item")
        cost.add_column("USD/month", justify="right")
        cost.add_column("formula")
        for i in design.cost.items:
            cost.add_row(i.name, f"{i.usd_per_month:,.2f}", i.formula)
        cost.add_row("[bold]total[/bold]", f"[bold]{design.cost.total_usd_per_month:,.2f}[/bold]", "")
        console.print(cost)
        console.print("Cost assumptions:\n" + "\n".join(f"  - {a}" for a in design.cost.assumptions))
        for f in design.spec_findings:
            console.print(f"[yellow]{f['severity']}[/yellow] {f['rule_id']} {f['message']}")
        questions = run.open_questions()
        if questions:
            console.print("[bold]Open questions[/bold]:\n" + "\n".join(f"  - {q}" for q in questions))
        if advice is not None:
            console.print(f"\n[bold]{advice.summary}[/bold]")
    if scaffold is not None:
        err.print(f"project written to {scaffold}")


@app.command("scaffold")
@guarded
def scaffold_command(
    spec: Annotated[Path, typer.Argument(help="Pipeline spec (YAML or JSON).", show_default=False)],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder of the generated project.", show_default=False)
    ],
    force: Annotated[bool, typer.Option("--force", help="Overwrite files that differ.")] = False,
) -> None:
    """Write a runnable project for SPEC: Airflow DAG, Prefect flow, extract-load, dbt project, checks."""
    from dataeng_agents.core.scaffold import scaffold_project
    from rich.console import Console

    project = scaffold_project(spec)
    written = project.write(out, overwrite=force)
    console = Console()
    console.print(f"{project.architecture} project for {project.name}: {len(written)} files in {out}")
    for rel in sorted(project.files):
        if rel.startswith(("dags/", "flows/", "streaming/", "connect/")) or rel in {"README.md"}:
            console.print(f"  {rel}")
    console.print(
        f"  {project.package}/  dbt/  ({sum(1 for r in project.files if r.startswith('dbt/'))} dbt files)"
    )


@app.command("rules")
@guarded
def rules_command(
    write_docs: Annotated[
        Path | None, typer.Option("--write-docs", help="Write one Markdown page per rule here.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the catalogue as JSON.")] = False,
    category: Annotated[str | None, typer.Option("--category", help="Only this category.")] = None,
    examples: Annotated[
        Path | None,
        typer.Option(
            "--examples", help="Folder of <RULE>/{bad,good}.<ext>.txt examples to show on each page."
        ),
    ] = None,
) -> None:
    """List the review rules (id, category, default severity, title)."""
    from dataeng_agents.core.cli._review_output import print_rule_catalogue
    from dataeng_agents.core.review import RULES, write_rule_docs
    from rich.console import Console

    rules = [r for r in RULES.values() if category is None or r.category == category]
    if write_docs is not None:
        written = write_rule_docs(str(write_docs), str(examples) if examples else None)
        Console(stderr=True).print(f"wrote {len(written)} pages to {write_docs}")
    print_rule_catalogue(rules, as_json=as_json, title="review rules")


@app.command("schema")
@guarded
def schema_command() -> None:
    """Print the JSON schema of the pipeline spec."""
    from dataeng_agents.core.design import spec_json_schema

    typer.echo(json.dumps(spec_json_schema(), indent=2))
