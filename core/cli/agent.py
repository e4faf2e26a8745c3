"""`dataeng agent` commands: ask a persona a question, list the personas."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from dataeng_agents.core.cli._guard import guarded

app = typer.Typer(
    help="Ask the data-engineering agents (Claude personas; offline without an API key).",
    no_args_is_help=True,
)


@app.command("ask")
@guarded
def ask_command(
    persona: Annotated[
        str,
        typer.Argument(
            help="Persona: backend-architect, data-engineer, or a user persona.", show_default=False
        ),
    ],
    question: Annotated[str, typer.Argument(help="The question.", show_default=False)],
    context: Annotated[
        list[Path] | None,
        typer.Option("--context", "-c", help="Context file (repeatable): a DAG, SQL, a spec, a report."),
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="Claude model id (default: the persona's).")
    ] = None,
    max_usd: Annotated[
        float | None, typer.Option("--max-usd", min=0, help="Most this question may cost, in USD.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the answer as JSON (with provenance and usage).")
    ] = False,
) -> None:
    """Ask PERSONA a QUESTION. Secrets in context files are redacted before anything is sent."""
    from dataeng_agents.core.agents import load_persona, narrator_from_env, question_task
    from rich.console import Console

    console = Console()
    load_persona(persona)
    task = question_task(persona, question, [str(p) for p in context or []])
    narrator = narrator_from_env(persona=persona, model=model, max_usd=max_usd)
    answer = narrator.narrate(task)
    if as_json:
        typer.echo(json.dumps(answer.model_dump(), indent=2))
        return
    console.print(answer.answer)
    for point in answer.points:
        refs = f" [dim]({', '.join(point.refs)})[/dim]" if point.refs else ""
        console.print(f"- {point.text}{refs}")
    p = answer.provenance
    usage = p.usage or {}
    footer = f"{p.narrator} · {p.persona or persona} · {p.model or '-'}"
    if usage:
        cached = int(usage.get("cache_read_tokens", 0))
        written = int(usage.get("cache_write_tokens", 0))
        footer += (
            f" · ${usage.get('usd', 0.0):.4f} · {int(usage.get('input_tokens', 0))} in"
            f" (+{cached} cached, +{written} cache-written) / {int(usage.get('output_tokens', 0))} out tokens"
        )
    if p.request_ids:
        footer += f" · request {p.request_ids[-1]}"
    if p.fallback_reason:
        footer += f" · fallback: {p.fallback_reason}"
    console.print(f"[dim]{footer}[/dim]")


@app.command("personas")
@guarded
def personas_command(as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False) -> None:
    """List the personas (packaged and from $DATAENG_PERSONAS_DIR)."""
    from dataeng_agents.core.agents import list_personas
    from dataeng_agents.core.agents.tools import TOOL_NAMES
    from rich.console import Console
    from rich.table import Table

    personas = list_personas()
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "name": p.name,
                        "description": p.description,
                        "model": p.resolved_model,
                        "tools": list(TOOL_NAMES if p.tools is None else p.tools),
                        "source": p.source,
                    }
                    for p in personas
                ],
                indent=2,
            )
        )
        return
    table = Table("name", "model", "description", "source")
    for p in personas:
        table.add_row(p.name, p.resolved_model, p.description, p.source)
    Console().print(table)
