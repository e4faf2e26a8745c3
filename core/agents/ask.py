"""``dataeng agent ask``: a free question to a persona, with optional context files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from dataeng_agents.core.errors import InputError
from dataeng_agents.core.llm.safety import SafetyLimits, redact, truncate
from dataeng_agents.core.narrative import AgentAnswer, NarrationTask, NarrativePoint


def context_facts(paths: list[str | os.PathLike[str]], limits: SafetyLimits | None = None) -> dict[str, Any]:
    """Context files as facts: ``{"context": [{"id": "context:NAME", "path", "chars", "content"}]}``.

    Contents are redacted and capped here already, so nothing secret is even held in the task.
    """
    limits = limits or SafetyLimits()
    items: list[dict[str, Any]] = []
    for i, raw in enumerate(paths):
        path = Path(raw)
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise InputError(f"context[{i}]", f"cannot read {path}: {exc}") from exc
        items.append(
            {
                "id": f"context:{path.name}",
                "path": str(path),
                "chars": len(text),
                "content": truncate(redact(text), limits.max_context_file_chars),
            }
        )
    return {"context": items}


def question_task(persona: str, question: str, context: list[str | os.PathLike[str]] | None = None) -> NarrationTask[AgentAnswer]:
    """The task behind ``dataeng agent ask``; its template is the honest offline answer."""
    if not question.strip():
        raise InputError("question", "must not be empty")
    facts = context_facts(list(context or []))

    def template() -> AgentAnswer:
        files = facts["context"]
        points = [
            NarrativePoint(text=f"Context file {f['path']} was read ({f['chars']} characters).", refs=[f["id"]])
            for f in files
        ]
        return AgentAnswer(
            answer=(
                "No answer was generated: free questions need Claude. Without ANTHROPIC_API_KEY the agents "
                "run offline; with a key, provenance.fallback_reason says why Claude's answer was not used. "
                "The deterministic commands (`dataeng review`, `dataeng experiment analyze`, "
                "`dataeng stats ...`) work offline."
            ),
            points=points,
        )

    return NarrationTask(
        kind="question",
        subject_id=f"ask:{persona}",
        facts=facts,
        output_model=AgentAnswer,
        template=template,
        persona=persona,
        question=question,
    )
