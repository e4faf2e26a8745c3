"""The backend-architect persona narrates API reviews and serving designs through the shared
ClaudeNarrator (real anthropic SDK on a fake API): grounded answers are kept, invented facts fall back."""

from __future__ import annotations

from pathlib import Path

from dataeng_agents.core.agents import ClaudeNarrator
from dataeng_agents.core.api import (
    api_review_narration_task,
    design_serving_api,
    review_api_paths,
    serving_design_narration_task,
)
from dataeng_agents.core.llm import RetryPolicy
from test_llm_fakes import FakeAnthropic, message, tool_use

MUSEUM = Path(__file__).parent / "api_specs" / "museum"
SPECS = Path(__file__).parents[2] / "core" / "examples" / "specs"


def _narrator(fake: FakeAnthropic) -> ClaudeNarrator:
    return ClaudeNarrator(fake.client(), retry=RetryPolicy(sleep=lambda s: None))


def test_review_advice_by_the_backend_architect_is_grounded() -> None:
    result = review_api_paths([MUSEUM / "museum-1.2.1.yaml"])
    task = api_review_narration_task(result)
    assert task.persona == "backend-architect"
    idem = [f.id for f in result.findings if f.rule_id == "OAS007"]
    answer = {
        "summary": "Add idempotency keys to the two resource-creating POSTs before anything else.",
        "priorities": [
            {
                "finding_ids": idem,
                "why": "Retries after a timeout create duplicate tickets.",
                "how_to_fix": "Accept an Idempotency-Key header and replay the stored response.",
            }
        ],
        "caveats": [],
    }
    fake = FakeAnthropic(messages=[message([tool_use("final_answer", answer)])])
    advice = _narrator(fake).narrate(task)
    assert advice.provenance.narrator == "claude" and advice.provenance.persona == "backend-architect"
    assert advice.priorities[0].finding_ids == idem
    system = fake.message_bodies()[0]["system"][0]["text"]
    assert "backend architect" in system.lower()


def test_invented_finding_id_falls_back_to_the_template() -> None:
    result = review_api_paths([MUSEUM / "museum-1.2.1.yaml"])
    bad = {
        "summary": "Fix it.",
        "priorities": [{"finding_ids": ["OAS999-0000000000"], "why": "x", "how_to_fix": "y"}],
        "caveats": [],
    }
    fake = FakeAnthropic(
        messages=[message([tool_use("final_answer", bad)]), message([tool_use("final_answer", bad)])]
    )
    advice = _narrator(fake).narrate(api_review_narration_task(result))
    assert advice.provenance.narrator == "template" and advice.provenance.fallback_reason
    template_ids = {i for p in advice.priorities for i in p.finding_ids}
    assert template_ids <= {f.id for f in result.findings}


def test_design_narration_cannot_invent_a_number() -> None:
    design = design_serving_api(SPECS / "events_lakehouse.yaml")
    invented = {"summary": "Cache for 42 minutes.", "rationale": [], "risks": [], "next_steps": []}
    fake = FakeAnthropic(
        messages=[
            message([tool_use("final_answer", invented)]),
            message([tool_use("final_answer", invented)]),
        ]
    )
    advice = _narrator(fake).narrate(serving_design_narration_task(design))
    assert advice.provenance.narrator == "template" and "grounding" in (
        advice.provenance.fallback_reason or ""
    )
    assert "/events" in advice.summary
