"""The LLM path through the real anthropic SDK against a local Messages API: caching and secrets."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pytest
from dataeng_agents.core.narrative import AgentAnswer


def _settings(api_key: str, base_url: str, persona: str = "data-engineer") -> Any:
    from dataeng_agents.prefect_integration import AgentSettings, AnthropicCredentials

    return AgentSettings(
        persona=persona,
        max_usd=0.5,
        anthropic_credentials=AnthropicCredentials(api_key=api_key, base_url=base_url, max_retries=0),
    )


def _storage_contains(secret: str) -> list[str]:
    root = Path(os.environ["PREFECT_RESULTS_LOCAL_STORAGE_PATH"])
    hits = []
    for path in root.rglob("*"):
        if path.is_file() and secret.encode() in path.read_bytes():
            hits.append(str(path))
    return hits


def test_prose_is_cached_on_persona_model_and_grounded_facts(
    prefect_server: str, fake_anthropic: Any, api_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    from dataeng_agents.prefect_integration.tasks import ask_agent
    from prefect import flow

    question = "Is the nightly orders load idempotent?"
    facts = {"pipeline": {"id": "orders_nightly", "tasks": 7}}
    settings = _settings(api_key, fake_anthropic.base_url)

    @flow
    def ask(question: str, context: dict[str, Any], persona: str = "data-engineer") -> AgentAnswer:
        return ask_agent(question, _settings(api_key, fake_anthropic.base_url, persona), context=context)

    with caplog.at_level(logging.DEBUG):
        first = ask(question, facts)
        after_first = len(fake_anthropic.requests)
        # a second scheduled run with the same grounded facts (plus a fresh timestamp): cache hit
        again = ask(question, {**facts, "generated_at": "2026-11-28T06:00:00Z"})
        after_again = len(fake_anthropic.requests)
        other_persona = ask(question, facts, persona="backend-architect")
        after_persona = len(fake_anthropic.requests)
        changed_fact = ask(question, {"pipeline": {"id": "orders_nightly", "tasks": 8}})
        after_fact = len(fake_anthropic.requests)

    assert first.provenance.narrator == "claude" and first.provenance.persona == "data-engineer"
    assert after_first >= 1
    assert after_again == after_first, "same persona, model and facts must be served from the cache"
    assert again == first
    assert after_persona > after_again and other_persona.provenance.persona == "backend-architect"
    assert after_fact > after_persona and changed_fact.provenance.narrator == "claude"
    assert {r["model"] for r in fake_anthropic.requests} == {settings.resolved_model()}

    # the key reached the API, and nowhere else
    assert set(fake_anthropic.api_keys) == {api_key}
    assert api_key not in caplog.text
    assert api_key not in first.model_dump_json()
    assert _storage_contains(api_key) == []


def test_template_fallback_is_not_frozen_into_the_cache(
    prefect_server: str, fake_anthropic: Any, api_key: str
) -> None:
    from dataeng_agents.prefect_integration.tasks import ask_agent
    from prefect import flow

    @flow
    def ask() -> AgentAnswer:
        return ask_agent(
            "Which task should be split?",
            _settings(api_key, fake_anthropic.base_url),
            context={"dag": "billing"},
        )

    fake_anthropic.fail_with = 400  # not retryable: the narrator falls back to the template
    degraded = ask()
    assert degraded.provenance.narrator == "template" and degraded.provenance.fallback_reason
    failed_calls = len(fake_anthropic.requests)
    assert failed_calls >= 1

    fake_anthropic.fail_with = None
    recovered = ask()
    assert recovered.provenance.narrator == "claude"
    assert len(fake_anthropic.requests) > failed_calls

    cached = ask()  # and the good answer is what the cache keeps
    assert cached == recovered and len(fake_anthropic.requests) == failed_calls + 1


def test_template_without_credentials_makes_no_call(prefect_server: str, fake_anthropic: Any) -> None:
    from dataeng_agents.prefect_integration import AgentSettings
    from dataeng_agents.prefect_integration.tasks import ask_agent
    from prefect import flow

    @flow
    def ask() -> AgentAnswer:
        return ask_agent("What is a watermark?", AgentSettings())

    answer = ask()
    assert answer.provenance.narrator == "template"
    assert fake_anthropic.requests == []


def test_only_transient_errors_are_retried() -> None:
    from dataeng_agents.core.errors import BudgetExceededError, ConfigError, WarehouseError
    from dataeng_agents.prefect_integration.tasks import analyze_experiment, retry_transient_errors
    from prefect.states import Failed

    def retried(exc: BaseException) -> bool:
        return retry_transient_errors(analyze_experiment, None, Failed(data=exc))  # type: ignore[arg-type]

    assert retried(WarehouseError("postgres: connection refused"))
    assert retried(TimeoutError("read timed out"))
    assert not retried(ConfigError("metrics[2].window", "not a duration"))
    assert not retried(BudgetExceededError("budget: would exceed max_usd"))
    assert not retried(AttributeError("'NoneType' object has no attribute 'x'"))
    assert analyze_experiment.retries == 2 and analyze_experiment.retry_condition_fn is retry_transient_errors


def test_batch_mode_submits_polls_collects_and_reattaches(
    prefect_server: str, fake_anthropic: Any, api_key: str, tmp_path: Path
) -> None:
    from dataclasses import replace

    from dataeng_agents.core.agents import question_task
    from dataeng_agents.prefect_integration import AgentSettings, AnthropicCredentials
    from dataeng_agents.prefect_integration.tasks import ask_agent, narrate_in_batch
    from prefect import flow

    settings = AgentSettings(
        batch_mode=True,
        batch_poll_seconds=0.1,
        batch_ledger_dir=str(tmp_path / "ledger"),
        anthropic_credentials=AnthropicCredentials(
            api_key=api_key, base_url=fake_anthropic.base_url, max_retries=0
        ),
    )
    fake_anthropic.polls_before_end = 2

    @flow
    def ask() -> AgentAnswer:
        return ask_agent("Where should the dedup step run?", settings, context={"pipeline": "events_v2"})

    answer = ask()
    assert answer.provenance.narrator == "claude"
    assert len(fake_anthropic.batch_requests) == 1 and fake_anthropic.requests == []  # no interactive call
    (batch,) = fake_anthropic.batches.values()
    assert batch["polls"] >= 3  # in_progress twice, then ended (+ the retrieve before collecting)
    assert len(list((tmp_path / "ledger").glob("*.json"))) == 1

    assert ask() == answer and len(fake_anthropic.batch_requests) == 1  # Prefect cache: nothing sent

    # Outside the cache (a retried run on another day), the ledger re-attaches to the paid batch.
    @flow
    def again() -> AgentAnswer:
        task = question_task("data-engineer", "Where should the dedup step run?")
        task = replace(task, facts={**task.facts, "results": {"pipeline": "events_v2"}})  # as ask_agent does
        return narrate_in_batch(task, settings)

    assert again().provenance.narrator == "claude"
    assert len(fake_anthropic.batch_requests) == 1
