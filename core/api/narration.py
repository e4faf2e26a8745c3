"""Narration of API reviews, diffs and serving-API designs by the backend-architect persona.

Same contract as the pipeline review's narration: the deterministic template writes the advice
(referring to finding / change / note ids only), a :class:`Narrator` may replace the prose with a
persona on Claude, and falls back to the template on any failure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dataeng_agents.core.api.rules import API_RULES
from dataeng_agents.core.narrative import (
    ArchitectureAdvice,
    NarrationTask,
    NarrativePoint,
    Narrator,
    ReviewAdvice,
    ReviewPriority,
    TemplateNarrator,
)
from dataeng_agents.core.review.advice import findings_advice, findings_facts

if TYPE_CHECKING:
    from dataeng_agents.core.api.design import ServingApiDesign
    from dataeng_agents.core.api.diff import ApiDiffResult
    from dataeng_agents.core.api.models import ApiReviewResult

PERSONA = "backend-architect"
MAX_FACT_FINDINGS = 200
MAX_IDS_PER_PRIORITY = 50


def _review_facts(result: ApiReviewResult) -> dict[str, Any]:
    return {
        "summary": result.summary(),
        "files": [f.model_dump(mode="json") for f in result.files],
        **findings_facts(result.findings, API_RULES, max_findings=MAX_FACT_FINDINGS),
    }


def api_review_advice_template(result: ApiReviewResult) -> ReviewAdvice:
    """One priority per rule: errors first, then by how often the rule fired."""
    caveats = [f"{f.path} could not be reviewed: {f.error}" for f in result.files if f.status == "error"][:5]
    caveats.append(
        "Static review of the contract: the running service's behaviour (limits, caching) was not observed."
    )
    return findings_advice(
        result.findings,
        API_RULES,
        reviewed=f"{len(result.files)} contract file(s)",
        counts=result.counts(),
        profile=result.profile,
        caveats=caveats,
        max_ids=MAX_IDS_PER_PRIORITY,
    )


def api_review_narration_task(
    result: ApiReviewResult, *, persona: str = PERSONA
) -> NarrationTask[ReviewAdvice]:
    return NarrationTask(
        kind="review",
        subject_id=f"api-review:{result.profile}:{len(result.files)}files",
        facts=_review_facts(result),
        output_model=ReviewAdvice,
        template=lambda: api_review_advice_template(result),
        persona=persona,
    )


def narrate_api_review(result: ApiReviewResult, narrator: Narrator | None = None) -> ReviewAdvice:
    return (narrator or TemplateNarrator()).narrate(api_review_narration_task(result))


# ------------------------------------------------------------------------------------------ diff
def api_diff_advice_template(diff: ApiDiffResult) -> ReviewAdvice:
    by_kind: dict[str, list[str]] = {}
    level: dict[str, str] = {}
    rank = {"breaking": 3, "warning": 2, "info": 1}
    for c in diff.changes:
        if c.level == "info":
            continue
        by_kind.setdefault(c.kind, []).append(c.id)
        level[c.kind] = c.level
    order = sorted(by_kind, key=lambda k: (-rank[level[k]], -len(by_kind[k]), k))
    priorities = [
        ReviewPriority(
            finding_ids=by_kind[k][:MAX_IDS_PER_PRIORITY],
            why=f"{k} ({level[k]}, {len(by_kind[k])}x): clients built against {diff.old} "
            + ("break." if level[k] == "breaking" else "may break."),
            how_to_fix="Restore the old contract, or publish the change under a new major version and keep the old "
            "one running until its clients migrate.",
        )
        for k in order
    ]
    n = diff.counts()
    summary = (
        f"{n['breaking']} breaking change(s), {n['warning']} warning(s) and {n['info']} additive change(s) "
        f"between {diff.old} and {diff.new}."
    )
    return ReviewAdvice(summary=summary, priorities=priorities)


def api_diff_narration_task(diff: ApiDiffResult, *, persona: str = PERSONA) -> NarrationTask[ReviewAdvice]:
    facts = {
        "summary": diff.summary(),
        "findings": [c.model_dump(mode="json") for c in diff.changes[:MAX_FACT_FINDINGS]],
    }
    return NarrationTask(
        kind="review",
        subject_id=f"api-diff:{diff.api}",
        facts=facts,
        output_model=ReviewAdvice,
        template=lambda: api_diff_advice_template(diff),
        persona=persona,
    )


def narrate_api_diff(diff: ApiDiffResult, narrator: Narrator | None = None) -> ReviewAdvice:
    return (narrator or TemplateNarrator()).narrate(api_diff_narration_task(diff))


# ------------------------------------------------------------------------------------------ design
def serving_design_advice_template(design: ServingApiDesign) -> ArchitectureAdvice:
    resources = ", ".join(r.path for r in design.resources)
    summary = (
        f"Serving API for {design.spec_name}: {len(design.resources)} read resource(s) ({resources}) with "
        f"cursor pagination, ETag caching and problem-details errors; the contract passes the API review at "
        f"the strict profile with {design.review_findings} finding(s)."
    )
    rationale = [NarrativePoint(text=f"{r.path}: {r.rationale}", refs=[r.id]) for r in design.resources]
    risks = [
        NarrativePoint(text=f"{n.title}: {n.detail}", refs=[n.id])
        for n in design.notes
        if n.area in ("slo", "resilience")
    ]
    steps = [f"{n.area}: {n.title} - {n.detail}" for n in design.notes]
    return ArchitectureAdvice(summary=summary, rationale=rationale, risks=risks, next_steps=steps)


def serving_design_narration_task(
    design: ServingApiDesign, *, persona: str = PERSONA
) -> NarrationTask[ArchitectureAdvice]:
    facts = {
        "spec": design.spec_name,
        "resources": [r.model_dump(mode="json") for r in design.resources],
        "notes": [n.model_dump(mode="json") for n in design.notes],
        "review_findings": design.review_findings,
    }
    return NarrationTask(
        kind="architecture",
        subject_id=f"serving-api:{design.spec_name}",
        facts=facts,
        output_model=ArchitectureAdvice,
        template=lambda: serving_design_advice_template(design),
        persona=persona,
    )


def narrate_serving_design(design: ServingApiDesign, narrator: Narrator | None = None) -> ArchitectureAdvice:
    return (narrator or TemplateNarrator()).narrate(serving_design_narration_task(design))
