"""NarrationBatchTrigger: polls the batch with the async client, through the official hook."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from dataeng_agents.airflow_provider.triggers.narration import NarrationBatchTrigger
from fake_anthropic import FakeAnthropicAPI

API_KEY = "sk-ant-api03-trigger-test-key-000000000000"


@pytest.fixture
def anthropic_conn(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(
        "AIRFLOW_CONN_ANTHROPIC_TRIGGER",
        json.dumps({"conn_type": "anthropic", "password": API_KEY, "extra": {"model": "claude-sonnet-4-5"}}),
    )
    return "anthropic_trigger"


def _events(trigger: NarrationBatchTrigger) -> list[Any]:
    async def collect() -> list[Any]:
        return [event async for event in trigger.run()]

    return asyncio.run(collect())


def _create_batch(api: FakeAnthropicAPI) -> str:
    from airflow.providers.anthropic.hooks.anthropic import AnthropicHook

    hook = AnthropicHook(conn_id="anthropic_trigger")
    batch = hook.create_batch([{"custom_id": "x-1", "params": {"max_tokens": 10, "messages": []}}])
    return batch.id


def test_trigger_polls_until_the_batch_ends(monkeypatch: pytest.MonkeyPatch, anthropic_conn: str) -> None:
    api = FakeAnthropicAPI(polls_before_end=2).install(monkeypatch)
    batch_id = _create_batch(api)
    trigger = NarrationBatchTrigger(
        conn_id=anthropic_conn, batch_ids=[batch_id], poll_interval=0.01, end_time=time.time() + 60
    )

    events = _events(trigger)

    assert len(events) == 1
    assert events[0].payload["status"] == "success"
    assert events[0].payload["request_counts"][batch_id]["succeeded"] == 1
    polls = api.calls("GET", f"/v1/messages/batches/{batch_id}")
    assert len(polls) == 3  # in_progress, in_progress, ended
    assert all(API_KEY in r.headers["authorization"] for r in polls)  # the connection's key
    assert len(api.batch_creates) == 1  # the trigger never submits


def test_trigger_times_out_with_an_event(monkeypatch: pytest.MonkeyPatch, anthropic_conn: str) -> None:
    api = FakeAnthropicAPI(polls_before_end=10**6).install(monkeypatch)
    batch_id = _create_batch(api)
    trigger = NarrationBatchTrigger(
        conn_id=anthropic_conn, batch_ids=[batch_id], poll_interval=0.01, end_time=time.time() + 0.05
    )

    events = _events(trigger)

    assert [e.payload["status"] for e in events] == ["timeout"]


def test_trigger_gives_up_after_repeated_poll_failures(
    monkeypatch: pytest.MonkeyPatch, anthropic_conn: str
) -> None:
    api = FakeAnthropicAPI().install(monkeypatch)
    trigger = NarrationBatchTrigger(
        conn_id=anthropic_conn, batch_ids=["msgbatch_missing"], poll_interval=0.0, end_time=time.time() + 60
    )

    events = _events(trigger)

    assert events[0].payload["status"] == "error"
    assert "NotFoundError" in events[0].payload["message"]
    assert len(api.calls("GET", "/v1/messages/batches/msgbatch_missing")) == 5


def test_trigger_serializes_without_credentials(anthropic_conn: str) -> None:
    trigger = NarrationBatchTrigger(
        conn_id=anthropic_conn, batch_ids=["msgbatch_1"], poll_interval=5, end_time=1.0
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "dataeng_agents.airflow_provider.triggers.narration.NarrationBatchTrigger"
    assert NarrationBatchTrigger(**kwargs).serialize() == (classpath, kwargs)
    assert API_KEY not in json.dumps(kwargs)
