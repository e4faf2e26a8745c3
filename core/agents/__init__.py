"""The agents: backend-architect and data-engineer personas on Claude, grounded in the results.

* :class:`ClaudeNarrator` implements :class:`~dataeng_agents.core.narrative.Narrator` over a client
  the caller built; :func:`narrator_from_env` picks Claude or the offline template.
* :class:`BatchNarration` with :func:`poll_batch` / :func:`apoll_batch` is scheduled (batch) mode.
* :func:`load_persona` / :func:`list_personas` read the packaged and user persona files.
"""

from __future__ import annotations

from dataeng_agents.core.agents.ask import context_facts, question_task, write_context_files
from dataeng_agents.core.agents.batch import (
    BatchNarration,
    BatchNotReadyError,
    BatchStatus,
    apoll_batch,
    custom_id_for,
    poll_batch,
    submit_or_attach_many,
)
from dataeng_agents.core.agents.narrator import (
    ClaudeNarrator,
    narrator_from_env,
    route_persona,
    template_fallback,
)
from dataeng_agents.core.agents.persona import (
    PERSONAS_ENV,
    Persona,
    list_personas,
    load_persona,
    parse_persona,
)
from dataeng_agents.core.llm.ledger import BatchLedger, InMemoryLedger, JsonFileLedger, LedgerEntry
from dataeng_agents.core.narrative import NarrationSettings

__all__ = [
    "PERSONAS_ENV",
    "BatchLedger",
    "BatchNarration",
    "BatchNotReadyError",
    "BatchStatus",
    "ClaudeNarrator",
    "InMemoryLedger",
    "JsonFileLedger",
    "LedgerEntry",
    "NarrationSettings",
    "Persona",
    "apoll_batch",
    "context_facts",
    "custom_id_for",
    "list_personas",
    "load_persona",
    "narrator_from_env",
    "parse_persona",
    "poll_batch",
    "question_task",
    "route_persona",
    "submit_or_attach_many",
    "template_fallback",
    "write_context_files",
]
