"""The narrator interface: who writes the prose on top of deterministic results.

Domain code (experiment analysis, pipeline review, pipeline design, rollout) computes every number
and finding, then hands a :class:`NarrationTask` to a :class:`Narrator`. The task carries the
results as JSON-able ``facts`` (each item that can be referred to has a stable string ``id``), the
pydantic model the prose must fit, and a deterministic ``template`` that writes the same model
without any LLM. :class:`TemplateNarrator` just calls the template; the Claude narrator
(``dataeng_agents.core.agents``) asks a persona and falls back to the template on any failure.

The output models hold prose, priorities (as list order) and references to result ids only:
no field can carry a number or a severity of the model's own.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, Protocol, TypeVar

from dataeng_agents.core.errors import InputError
from pydantic import BaseModel, ConfigDict, Field

NarrationKind = Literal["experiment", "review", "architecture", "plan", "rollout", "question"]


class NarrationProvenance(BaseModel):
    """Who wrote a narrative, and why the template was used when Claude was asked."""

    model_config = ConfigDict(extra="forbid")

    narrator: Literal["template", "claude"] = "template"
    persona: str | None = None
    model: str | None = None
    fallback_reason: str | None = Field(
        default=None, description="Why the deterministic template was used although Claude was configured."
    )
    usage: dict[str, float] | None = Field(default=None, description="Tokens and USD of the LLM run.")
    request_ids: list[str] = Field(
        default_factory=list, description="The API's request-id of every answered request (for support)."
    )

    @property
    def written_by(self) -> str:
        """Who wrote the prose, in one line for reports, review output, XCom and artifacts.

        ``Claude (claude-sonnet-5-5, persona data-engineer)``, ``template (offline: no API key)`` or
        ``template (Claude's answer was not used: <reason>)``.
        """
        if self.narrator == "claude":
            return f"Claude ({self.model or 'unknown model'}, persona {self.persona or '-'})"
        if self.fallback_reason:
            return f"template (Claude's answer was not used: {self.fallback_reason})"
        return "template (offline: no Claude narrator configured)"

    def summary(self) -> dict[str, Any]:
        """A small JSON-able record of the provenance (for XCom summaries and Prefect artifacts)."""
        out: dict[str, Any] = {"narrator": self.narrator, "written_by": self.written_by}
        if self.model:
            out["model"] = self.model
        if self.persona:
            out["persona"] = self.persona
        if self.fallback_reason:
            out["fallback_reason"] = self.fallback_reason
        if self.request_ids:
            out["request_ids"] = list(self.request_ids)
        if self.usage:
            out["usd"] = self.usage.get("usd", 0.0)
        return out


class NarrativePoint(BaseModel):
    """One statement, with the ids of the results it is about."""

    model_config = ConfigDict(extra="forbid")

    text: str
    refs: list[str] = Field(default_factory=list, description="Ids of the results this point is about.")


class ExperimentNarrative(BaseModel):
    model_config = ConfigDict(extra="forbid")

    headline: str
    summary: str
    key_points: list[NarrativePoint] = Field(default_factory=list)
    recommendation: str = ""
    caveats: list[str] = Field(default_factory=list)
    next_steps: list[str] = Field(default_factory=list)
    provenance: NarrationProvenance = Field(default_factory=NarrationProvenance)


class ReviewPriority(BaseModel):
    """Findings to fix together; the list order of ``ReviewAdvice.priorities`` is the priority."""

    model_config = ConfigDict(extra="forbid")

    finding_ids: list[str]
    why: str
    how_to_fix: str


class ReviewAdvice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    summary: str
    priorities: list[ReviewPriority] = Field(default_factory=list)
    caveats: list[str] = Field(default_factory=list)
    provenance: NarrationProvenance = Field(default_factory=NarrationProvenance)


class ArchitectureAdvice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    summary: str
    rationale: list[NarrativePoint] = Field(default_factory=list)
    risks: list[NarrativePoint] = Field(default_factory=list)
    next_steps: list[str] = Field(default_factory=list)
    provenance: NarrationProvenance = Field(default_factory=NarrationProvenance)


class AgentAnswer(BaseModel):
    """A persona's answer to a free question (``dataeng agent ask``)."""

    model_config = ConfigDict(extra="forbid")

    answer: str
    points: list[NarrativePoint] = Field(default_factory=list)
    provenance: NarrationProvenance = Field(default_factory=NarrationProvenance)


NarrativeT = TypeVar("NarrativeT", ExperimentNarrative, ReviewAdvice, ArchitectureAdvice, AgentAnswer)


@dataclass
class NarrationTask(Generic[NarrativeT]):
    """Everything a narrator needs: the facts, the shape of the answer and the deterministic answer."""

    kind: NarrationKind
    subject_id: str
    facts: dict[str, Any]
    output_model: type[NarrativeT]
    template: Callable[[], NarrativeT]
    #: the persona that writes it; ``None`` (or ``"auto"``): chosen by domain (``route_persona``)
    persona: str | None = None
    question: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Narrator(Protocol):
    """Writes the prose for a task. Must never raise for an LLM failure: fall back to the template."""

    name: str

    def narrate(self, task: NarrationTask[NarrativeT]) -> NarrativeT: ...


class TemplateNarrator:
    """The deterministic narrator: offline, free, and the default when no API key is configured."""

    name = "template"

    def narrate(self, task: NarrationTask[NarrativeT]) -> NarrativeT:
        return task.template()


#: seconds one whole narration may take by default (requests, retries, waits)
DEFAULT_DEADLINE_SECONDS = 300.0


@dataclass(frozen=True)
class NarrationSettings:
    """The narration settings read from the environment, validated before any deterministic work.

    ``DATAENG_NARRATOR`` (``auto``/``claude``/``template``), ``DATAENG_AGENT_PERSONA``,
    ``DATAENG_AGENT_MODEL``, ``DATAENG_AGENT_MAX_USD``, ``DATAENG_AGENT_MAX_TOKENS``,
    ``DATAENG_AGENT_REQUEST_TIMEOUT`` (seconds per request) and ``DATAENG_AGENT_DEADLINE`` (seconds
    per narration). A bad value raises :class:`InputError` naming the variable: the CLIs turn it
    into a usage error (exit 2) before they compute anything, so a typo never changes a result.
    (Whether ``DATAENG_AGENT_PERSONA`` names a persona is checked by ``narrator_from_env``.) This
    module imports no SDK, so a command can validate the settings without loading ``anthropic``.
    """

    narrator: str = "auto"
    persona: str | None = None
    model: str | None = None
    max_usd: float | None = None
    max_tokens: int | None = None
    request_timeout: float | None = None
    deadline: float = DEFAULT_DEADLINE_SECONDS

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> NarrationSettings:
        env = os.environ if env is None else env
        mode = (env.get("DATAENG_NARRATOR") or "auto").strip().lower()
        if mode not in ("auto", "claude", "template"):
            raise InputError("DATAENG_NARRATOR", f"must be auto, claude or template, got {mode!r}")
        persona = (env.get("DATAENG_AGENT_PERSONA") or "").strip() or None
        max_tokens = _number_env(env, "DATAENG_AGENT_MAX_TOKENS")
        if max_tokens is not None and max_tokens != int(max_tokens):
            raise InputError(
                "DATAENG_AGENT_MAX_TOKENS", f"must be a whole number, got {env['DATAENG_AGENT_MAX_TOKENS']!r}"
            )
        timeout = _number_env(env, "DATAENG_AGENT_REQUEST_TIMEOUT", positive=True)
        deadline = _number_env(env, "DATAENG_AGENT_DEADLINE", positive=True)
        return cls(
            narrator=mode,
            persona=persona,
            model=(env.get("DATAENG_AGENT_MODEL") or "").strip() or None,
            max_usd=_number_env(env, "DATAENG_AGENT_MAX_USD"),
            max_tokens=int(max_tokens) if max_tokens is not None else None,
            request_timeout=timeout,
            deadline=deadline if deadline is not None else DEFAULT_DEADLINE_SECONDS,
        )


def _number_env(env: Mapping[str, str], name: str, *, positive: bool = False) -> float | None:
    raw = (env.get(name) or "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise InputError(name, f"must be a number, got {raw!r}") from None
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise InputError(
            name, f"must be a {'positive' if positive else 'non-negative'} finite number, got {raw!r}"
        )
    return value
