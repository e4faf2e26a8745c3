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

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, Protocol, TypeVar

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
