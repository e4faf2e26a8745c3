"""``dataeng agent ask``: a free question to a persona, with optional context files.

Context files are read, redacted by the one secret detector and capped at
``SafetyLimits.max_context_file_chars`` (20,000) here, before anything else holds them; the model
reads the first 4,000 characters of each in the results and the rest with the ``read_text`` tool.
Orchestrators that turn XComs or task results into context files use :func:`write_context_files`:
the files are created ``0600`` in a ``0700`` folder and hold redacted text only.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
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


def write_context_files(folder: str | os.PathLike[str], items: Mapping[str, Any]) -> list[str]:
    """Write each ``items`` value (text, or JSON of anything else) as a redacted context file.

    The folder is created ``0700`` and each file ``0600`` (written to a temporary name, then renamed),
    so neither other users of the host nor a reader of a half-written file ever see a secret.
    Returns the paths, in ``items`` order.
    """
    target = Path(folder)
    target.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(target, 0o700)
    paths: list[str] = []
    for name, value in items.items():
        text = value if isinstance(value, str) else json.dumps(value, indent=2, sort_keys=True, default=str)
        safe_name = re.sub(r"[^\w.\-]", "_", str(name))[:100] or "context"
        suffix = "" if "." in safe_name else (".txt" if isinstance(value, str) else ".json")
        path = target / f"{safe_name}{suffix}"
        tmp = target / f".{safe_name}.tmp-{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(redact(text))
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        os.chmod(path, 0o600)
        paths.append(str(path))
    return paths


def question_task(
    persona: str, question: str, context: list[str | os.PathLike[str]] | None = None
) -> NarrationTask[AgentAnswer]:
    """The task behind ``dataeng agent ask``; its template is the honest offline answer."""
    if not question.strip():
        raise InputError("question", "must not be empty")
    facts = context_facts(list(context or []))

    def template() -> AgentAnswer:
        files = facts["context"]
        points = [
            NarrativePoint(
                text=f"Context file {f['path']} was read ({f['chars']} characters).", refs=[f["id"]]
            )
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
