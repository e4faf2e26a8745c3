"""Terminal output shared by the two review commands (``dataeng review``, ``dataeng api review``) and
their rule catalogues (``dataeng pipeline rules``, ``dataeng api rules``)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Sequence
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Protocol

import typer

if TYPE_CHECKING:
    from dataeng_agents.core.narrative import ReviewAdvice
    from dataeng_agents.core.review.models import Severity
    from rich.console import Console


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"
    sarif = "sarif"


class FailOn(StrEnum):
    error = "error"
    warn = "warn"
    never = "never"


#: the options both review commands take, declared once
FormatOption = Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")]
FailOnOption = Annotated[
    FailOn, typer.Option("--fail-on", help="Exit 1 when a finding at this level exists.")
]
ProfileOption = Annotated[
    str | None, typer.Option("--profile", help="strict, default or examples (overrides pyproject).")
]
OutputOption = Annotated[
    Path | None, typer.Option("--output", "-o", help="Write the report here instead of stdout.")
]


class CatalogueRule(Protocol):
    """What a catalogue lists of a rule (the pipeline ``Rule`` and the ``ApiRule``)."""

    @property
    def id(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def category(self) -> str: ...
    @property
    def severity(self) -> Severity: ...
    @property
    def targets(self) -> Sequence[str]: ...
    @property
    def rationale(self) -> str: ...
    @property
    def fix(self) -> str: ...
    @property
    def production_only(self) -> bool: ...


def print_rule_catalogue(rules: Sequence[CatalogueRule], *, as_json: bool, title: str) -> None:
    """The rules as a JSON list (every field) or a table titled "<count> <title>"."""
    from rich.console import Console
    from rich.table import Table

    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "id": r.id,
                        "title": r.title,
                        "category": r.category,
                        "severity": r.severity.value,
                        "targets": list(r.targets),
                        "rationale": r.rationale,
                        "fix": r.fix,
                        "production_only": r.production_only,
                    }
                    for r in rules
                ],
                indent=2,
            )
        )
        return
    table = Table(title=f"{len(rules)} {title}")
    for col in ("id", "category", "severity", "applies to", "title"):
        table.add_column(col)
    for r in rules:
        table.add_row(r.id, r.category, r.severity.value, ", ".join(r.targets), r.title)
    Console().print(table)


def print_review_table(
    render_table: Callable[[Console], None],
    advice: ReviewAdvice | None,
    output: Path | None,
    *,
    written_by: bool,
) -> None:
    """The findings table (``render_table``) and the advice's priorities, to ``output`` or the terminal;
    ``written_by`` adds who wrote the advice."""
    from rich.console import Console

    with contextlib.ExitStack() as stack:
        console = (
            Console(file=stack.enter_context(output.open("w", encoding="utf-8"))) if output else Console()
        )
        render_table(console)
        if advice is not None:
            console.print(f"\n[bold]{advice.summary}[/bold]")
            for i, p in enumerate(advice.priorities, start=1):
                console.print(f"{i}. {p.why}\n   fix: {p.how_to_fix}")
            if written_by:
                console.print(f"[dim]Advice written by {advice.provenance.written_by}.[/dim]")
