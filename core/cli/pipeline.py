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


@app.command("design")
@guarded
def design_command(
    spec: Annotated[Path, typer.Argument(help="Pipeline spec (YAML or JSON).", show_default=False)],
    emit_dag: Annotated[
        Path | None, typer.Option("--emit-dag", help="Write a starter Airflow DAG to this path.")
    ] = None,
    output_format: Annotated[DesignFormat, typer.Option("--format", "-f", help="Output format.")] = DesignFormat.table,
    explain: Annotated[
        bool, typer.Option("--explain", help="Add narrated advice (Claude with a key, else template).")
    ] = False,
) -> None:
    """Recommend an architecture for SPEC with a scored comparison, components and a cost estimate."""
    from dataeng_agents.core.commands.data_pipeline import design_with_dag, narrate_design
    from rich.console import Console
    from rich.table import Table

    console = Console()
    design, dag_source = design_with_dag(spec)
    if emit_dag is not None:
        emit_dag.parent.mkdir(parents=True, exist_ok=True)
        tmp = emit_dag.with_name(emit_dag.name + ".tmp")
        tmp.write_text(dag_source, encoding="utf-8")
        tmp.replace(emit_dag)
    advice = None
    if explain:
        from dataeng_agents.core.agents import narrator_from_env

        advice = narrate_design(design, narrator_from_env())
    if output_format is DesignFormat.json:
        doc = design.model_dump(mode="json")
        if advice is not None:
            doc["advice"] = advice.model_dump(mode="json")
        typer.echo(json.dumps(doc, indent=2))
    elif output_format is DesignFormat.markdown:
        typer.echo(design.to_markdown())
    else:
        console.print(f"[bold]Recommendation:[/bold] {design.recommendation_label}  (schedule {design.schedule})")
        table = Table(title="Architecture comparison")
        table.add_column("architecture")
        table.add_column("score", justify="right")
        table.add_column("reasons")
        for s in design.comparison:
            table.add_row(s.label, str(s.score), "\n".join(f"{r.points:+d} {r.text}" for r in s.reasons))
        console.print(table)
        for c in [*design.ingestion, design.orchestration, design.transformation, *design.storage,
                  *design.quality_checks, *design.monitoring]:
            console.print(f"[cyan]{c.area}[/cyan]: {c.choice} [dim]- {c.why}[/dim]")
        cost = Table(title="Rough monthly cost (USD)")
        cost.add_column("item")
        cost.add_column("USD/month", justify="right")
        cost.add_column("formula")
        for i in design.cost.items:
            cost.add_row(i.name, f"{i.usd_per_month:,.2f}", i.formula)
        cost.add_row("[bold]total[/bold]", f"[bold]{design.cost.total_usd_per_month:,.2f}[/bold]", "")
        console.print(cost)
        console.print("Assumptions:\n" + "\n".join(f"  - {a}" for a in design.cost.assumptions))
        for f in design.spec_findings:
            console.print(f"[yellow]{f['severity']}[/yellow] {f['rule_id']} {f['message']}")
        if advice is not None:
            console.print(f"\n[bold]{advice.summary}[/bold]")
    if emit_dag is not None and output_format is DesignFormat.table:
        console.print(f"starter DAG written to {emit_dag}")


@app.command("rules")
@guarded
def rules_command(
    write_docs: Annotated[
        Path | None, typer.Option("--write-docs", help="Write one Markdown page per rule here.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the catalogue as JSON.")] = False,
    category: Annotated[str | None, typer.Option("--category", help="Only this category.")] = None,
) -> None:
    """List the review rules (id, category, default severity, title)."""
    from dataeng_agents.core.review import RULES, write_rule_docs
    from rich.console import Console
    from rich.table import Table

    rules = [r for r in RULES.values() if category is None or r.category == category]
    if write_docs is not None:
        written = write_rule_docs(str(write_docs))
        Console(stderr=True).print(f"wrote {len(written)} pages to {write_docs}")
    if as_json:
        typer.echo(json.dumps([
            {"id": r.id, "title": r.title, "category": r.category, "severity": r.severity.value,
             "targets": list(r.targets), "rationale": r.rationale, "fix": r.fix, "production_only": r.production_only}
            for r in rules
        ], indent=2))
        return
    table = Table(title=f"{len(rules)} review rules")
    for col in ("id", "category", "severity", "applies to", "title"):
        table.add_column(col)
    for r in rules:
        table.add_row(r.id, r.category, r.severity.value, ", ".join(r.targets), r.title)
    Console().print(table)


@app.command("schema")
@guarded
def schema_command() -> None:
    """Print the JSON schema of the pipeline spec."""
    from dataeng_agents.core.design import spec_json_schema

    typer.echo(json.dumps(spec_json_schema(), indent=2))
