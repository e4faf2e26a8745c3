"""The Prefect entry point of the LLM path (issue 15): no secret of the corpus reaches the Messages
API through ``ask_agent`` (context results and context files), ``AnthropicCredentials.max_retries``
and ``timeout`` are what the narrator uses, and the prose cache is keyed on the facts as the model
sees them."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

CORPUS = yaml.safe_load(
    (Path(__file__).resolve().parents[1] / "core" / "data" / "secret_corpus.yaml").read_text(encoding="utf-8")
)
SECRETS = [str(e["secret"]) for e in CORPUS["positive"]]


def _settings(api_key: str, base_url: str, **credentials: Any) -> Any:
    from dataeng_agents.prefect_integration import AgentSettings, AnthropicCredentials

    return AgentSettings(
        max_usd=0.5,
        anthropic_credentials=AnthropicCredentials(api_key=api_key, base_url=base_url, **credentials),
    )


def test_ask_agent_sends_no_corpus_secret(
    prefect_server: str, fake_anthropic: Any, api_key: str, tmp_path: Path
) -> None:
    from dataeng_agents.prefect_integration.tasks import ask_agent
    from prefect import flow

    dag = tmp_path / "orders_etl.py"
    dag.write_text(
        "\n".join(e["text"] for e in CORPUS["positive"]) + "\n# END-MARKER-PREFECT\n", encoding="utf-8"
    )
    planted_config = {
        "warehouse": {"password": "Prefect-Planted-Pw-1", "dsn": "postgresql://etl:Prefect-Uri-Pw-2@db/wh"},
        "notes": [e["text"] for e in CORPUS["positive"][:20]],
    }

    @flow
    def ask() -> Any:
        return ask_agent(
            "Is the orders DAG safe to schedule?",
            _settings(api_key, fake_anthropic.base_url, max_retries=0),
            context={"config": planted_config},
            context_files=[str(dag)],
        )

    answer = ask()
    assert answer is not None
    assert answer.provenance.narrator == "claude", answer.provenance.fallback_reason
    bodies = [json.dumps(b) for b in fake_anthropic.requests]
    sent = "\n".join(bodies)
    assert "END-MARKER-PREFECT" in sent  # the whole file was read (views, then read_text pages)
    leaked = [s for s in [*SECRETS, "Prefect-Planted-Pw-1", "Prefect-Uri-Pw-2"] if s in sent]
    assert leaked == []


def test_credentials_max_retries_and_timeout_are_honoured(fake_anthropic: Any, api_key: str) -> None:
    from dataeng_agents.core.agents import question_task

    fake_anthropic.fail_with = 500  # retryable
    narrator = _settings(api_key, fake_anthropic.base_url, max_retries=0, timeout=7.5).get_narrator()
    assert narrator.request_timeout == 7.5 and narrator.retry.max_retries == 0
    out = narrator.narrate(question_task("data-engineer", "Why?"))
    assert out.provenance.narrator == "template" and "HTTP 500" in (out.provenance.fallback_reason or "")
    assert len(fake_anthropic.requests) == 1  # max_retries=0: one request, no retry

    narrator = _settings(api_key, fake_anthropic.base_url, max_retries=1).get_narrator()
    narrator.retry = replace(narrator.retry, sleep=lambda s: None)
    narrator.narrate(question_task("data-engineer", "Why?"))
    assert len(fake_anthropic.requests) == 1 + 2  # max_retries=1: the first request and one retry


def test_prose_cache_key_is_the_facts_as_presented() -> None:
    from dataeng_agents.core.narrative import ExperimentNarrative, NarrationTask
    from dataeng_agents.prefect_integration import AgentSettings
    from dataeng_agents.prefect_integration.tasks import narration_cache_key

    def key(lift: float, generated_at: str) -> str:
        task: NarrationTask[Any] = NarrationTask(
            kind="experiment",
            subject_id="checkout",
            facts={"results": [{"id": "m", "estimate": lift}], "generated_at": generated_at},
            output_model=ExperimentNarrative,
            template=lambda: ExperimentNarrative(headline="h", summary="s"),
        )
        return narration_cache_key(None, {"narration": task, "agent_settings": AgentSettings()})  # type: ignore[arg-type]

    # three runs whose parallel sums differ in the last bits: one key
    runs = {
        key(0.031234567891 * (1 + e), f"2026-12-0{i}") for i, e in enumerate([0.0, 3e-15, -7e-14], start=1)
    }
    assert len(runs) == 1
    assert key(0.0313, "x") != key(0.0312, "x")  # a change the model would see: a new key


def test_the_default_persona_is_chosen_by_domain(fake_anthropic: Any, api_key: str) -> None:
    from dataeng_agents.core.agents import question_task
    from dataeng_agents.core.commands.data_pipeline import design_narration_task
    from dataeng_agents.core.design import design_pipeline

    settings = _settings(api_key, fake_anthropic.base_url, max_retries=0)
    assert settings.persona == "auto" and settings.resolved_model().startswith("claude-")
    narrator = settings.get_narrator()
    spec = sorted((Path(__file__).resolve().parents[2] / "core" / "examples" / "specs").glob("*.yaml"))[0]
    design = narrator.narrate(design_narration_task(design_pipeline(spec)))
    assert design.provenance.narrator == "claude" and design.provenance.persona == "backend-architect"
    api = narrator.narrate(question_task("auto", "Should the orders API be REST or gRPC?"))
    dbt = narrator.narrate(question_task("auto", "How do I make the nightly dbt model incremental?"))
    assert (api.provenance.persona, dbt.provenance.persona) == ("backend-architect", "data-engineer")
