"""Scheduled mode: Message Batches with deterministic custom_ids and a ledger, through the real SDK."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest
from dataeng_agents.core.agents import (
    BatchNarration,
    BatchNotReadyError,
    InMemoryLedger,
    JsonFileLedger,
    apoll_batch,
    poll_batch,
    submit_or_attach_many,
)
from dataeng_agents.core.errors import BudgetExceededError
from test_agents_narrator import GOOD_ANSWER, NO_SLEEP, experiment_facts, experiment_task
from test_llm_fakes import FakeAnthropic, message, rate_limited, text, tool_use

BATCHES = "/v1/messages/batches"


def succeeded(answer: dict[str, Any]) -> Any:
    return lambda cid, params: {
        "type": "succeeded",
        "message": message([tool_use("final_answer", answer)], input_tokens=3000, output_tokens=400),
    }


def test_custom_id_is_deterministic_and_valid() -> None:
    a = BatchNarration.prepare(experiment_task())
    b = BatchNarration.prepare(experiment_task())
    assert a.custom_id == b.custom_id
    assert re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", a.custom_id)
    changed = experiment_facts()
    changed["results"][0]["lift"] = 0.0322
    assert BatchNarration.prepare(experiment_task(changed)).custom_id != a.custom_id
    assert BatchNarration.prepare(experiment_task(), model="claude-haiku-4-5").custom_id != a.custom_id
    assert BatchNarration.prepare(experiment_task(), persona="backend-architect").custom_id != a.custom_id


def test_batch_lifecycle_and_retried_task_reattaches(tmp_path: Path) -> None:
    fake = FakeAnthropic(batch_polls_until_end=3, batch_result=succeeded(GOOD_ANSWER))
    client = fake.client()
    ledger = JsonFileLedger(tmp_path / "ledger")

    first = BatchNarration.prepare(experiment_task(), retry=NO_SLEEP)
    batch_id = first.submit_or_attach(client, ledger)
    assert batch_id.startswith("msgbatch_")
    assert poll_batch(client, batch_id).processing_status == "in_progress"

    # The worker dies; the retried task rebuilds the task and must find the same batch.
    retried = BatchNarration.prepare(experiment_task(), retry=NO_SLEEP)
    assert retried.submit_or_attach(client, JsonFileLedger(tmp_path / "ledger")) == batch_id
    assert fake.count("POST", BATCHES) == 1, "a retried task must not pay for a second batch"

    with pytest.raises(BatchNotReadyError):
        retried.collect(client, batch_id)
    status = poll_batch(client, batch_id)
    assert status.ended and status.request_counts["succeeded"] == 1
    assert json.loads(json.dumps(status.to_dict()))["ended"] is True

    out = retried.collect(client, batch_id, ledger=ledger)
    assert out.provenance.narrator == "claude" and out.headline == GOOD_ANSWER["headline"]
    usage = out.provenance.usage
    assert usage is not None and usage["batch"] == 1.0
    # half price: (3000 * $2 + 400 * $10) / 1e6 * 0.5
    assert usage["usd"] == pytest.approx((3000 * 2 + 400 * 10) / 1e6 * 0.5)

    # the request that went into the batch: one turn, facts inline, only the final-answer tool, cached prompt
    sent = fake.bodies[[r.url.path for r in fake.requests].index(BATCHES)]["requests"][0]
    assert sent["custom_id"] == first.custom_id
    params = sent["params"]
    assert [t["name"] for t in params["tools"]] == ["final_answer"]
    assert params["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert "0.0321" in params["messages"][0]["content"][0]["text"]


def test_async_poll_for_the_trigger() -> None:
    fake = FakeAnthropic(batch_polls_until_end=2, batch_result=succeeded(GOOD_ANSWER))
    ledger = InMemoryLedger()
    narration = BatchNarration.prepare(experiment_task(), retry=NO_SLEEP)
    batch_id = narration.submit_or_attach(fake.client(), ledger)

    async def wait() -> list[str]:
        seen = []
        aclient = fake.async_client()
        while True:
            status = await apoll_batch(aclient, batch_id, retry=NO_SLEEP)
            seen.append(status.processing_status)
            if status.ended:
                return seen

    assert asyncio.run(wait()) == ["in_progress", "ended"]
    assert narration.collect(fake.client(), ledger=ledger).provenance.narrator == "claude"


def test_async_poll_retries_a_429_honouring_retry_after() -> None:
    fake = FakeAnthropic(batch_polls_until_end=1, batch_result=succeeded(GOOD_ANSWER))
    batch_id = BatchNarration.prepare(experiment_task()).submit_or_attach(fake.client(), InMemoryLedger())
    waits: list[float] = []

    async def fake_sleep(s: float) -> None:
        waits.append(s)

    original = fake.handle
    calls = {"n": 0}

    def flaky(request: Any) -> Any:
        if request.method == "GET" and calls["n"] == 0:
            calls["n"] += 1
            fake.requests.append(request)
            return rate_limited(retry_after=5)
        return original(request)

    fake.handle = flaky  # type: ignore[method-assign]
    from dataeng_agents.core.llm import RetryPolicy

    status = asyncio.run(
        apoll_batch(fake.async_client(), batch_id, retry=RetryPolicy(async_sleep=fake_sleep))
    )
    assert status.ended and waits == [5.0]


def test_errored_request_falls_back_and_leaves_the_ledger_so_a_retry_resubmits() -> None:
    fake = FakeAnthropic(
        batch_result=lambda cid, params: {
            "type": "errored",
            "error": {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
        }
    )
    client = fake.client()
    ledger = InMemoryLedger()
    n = BatchNarration.prepare(experiment_task(), retry=NO_SLEEP)
    batch_id = n.submit_or_attach(client, ledger)
    poll_batch(client, batch_id)
    out = n.collect(client, batch_id, ledger=ledger)
    assert out.provenance.narrator == "template"
    assert out.provenance.fallback_reason == "batch: request errored (overloaded_error)"
    assert ledger.get(n.custom_id) is None
    assert n.submit_or_attach(client, ledger) != batch_id
    assert fake.count("POST", BATCHES) == 2


def test_expired_request_falls_back() -> None:
    fake = FakeAnthropic(batch_result=lambda cid, params: {"type": "expired"})
    client = fake.client()
    n = BatchNarration.prepare(experiment_task(), retry=NO_SLEEP)
    batch_id = n.submit_or_attach(client, InMemoryLedger())
    poll_batch(client, batch_id)
    assert n.collect(client, batch_id).provenance.fallback_reason == "batch: request expired"


def test_ungrounded_batch_answer_gets_one_sync_repair_turn() -> None:
    invented = {**GOOD_ANSWER, "headline": "Conversion up 7.7%"}
    fake = FakeAnthropic(
        batch_result=succeeded(invented), messages=[message([tool_use("final_answer", GOOD_ANSWER)])]
    )
    client = fake.client()
    n = BatchNarration.prepare(experiment_task(), retry=NO_SLEEP)
    batch_id = n.submit_or_attach(client, InMemoryLedger())
    poll_batch(client, batch_id)
    out = n.collect(client, batch_id)
    assert out.provenance.narrator == "claude" and out.headline == GOOD_ANSWER["headline"]
    repair = fake.message_bodies()[0]["messages"]
    assert repair[-1]["content"][0]["is_error"] is True and "7.7" in repair[-1]["content"][0]["content"]
    assert out.provenance.usage is not None and out.provenance.usage["calls"] == 2


def test_ungrounded_batch_answer_without_repair_falls_back() -> None:
    invented = {**GOOD_ANSWER, "headline": "Conversion up 7.7%"}
    fake = FakeAnthropic(batch_result=succeeded(invented))
    client = fake.client()
    n = BatchNarration.prepare(experiment_task(), retry=NO_SLEEP)
    batch_id = n.submit_or_attach(client, InMemoryLedger())
    poll_batch(client, batch_id)
    out = n.collect(client, batch_id, repair=False)
    assert out.provenance.narrator == "template" and "7.7" in (out.provenance.fallback_reason or "")
    assert fake.count("POST", "/v1/messages") == 0


def test_text_only_batch_answer_is_repaired_by_reminder() -> None:
    fake = FakeAnthropic(
        batch_result=lambda cid, params: {"type": "succeeded", "message": message([text("Looks good.")])},
        messages=[message([tool_use("final_answer", GOOD_ANSWER)])],
    )
    client = fake.client()
    n = BatchNarration.prepare(experiment_task(), retry=NO_SLEEP)
    batch_id = n.submit_or_attach(client, InMemoryLedger())
    poll_batch(client, batch_id)
    assert n.collect(client, batch_id).provenance.narrator == "claude"


def test_batch_budget_is_checked_before_submitting() -> None:
    fake = FakeAnthropic()
    n = BatchNarration.prepare(experiment_task(), max_usd=0.0001)
    with pytest.raises(BudgetExceededError):
        n.submit_or_attach(fake.client(), InMemoryLedger())
    assert fake.requests == []
    fallback = n.fallback("budget: worst case exceeds max_usd")
    assert fallback.provenance.narrator == "template" and fallback.headline == "Template headline"


def test_many_tasks_share_one_batch_and_reattach(tmp_path: Path) -> None:
    fake = FakeAnthropic(batch_result=succeeded(GOOD_ANSWER))
    client = fake.client()
    ledger = JsonFileLedger(tmp_path)
    tasks = [experiment_task() for _ in range(3)]
    for i, t in enumerate(tasks):
        t.subject_id = f"exp-{i}"
    narrations = [BatchNarration.prepare(t, retry=NO_SLEEP) for t in tasks]
    ids = submit_or_attach_many(narrations, client, ledger)
    assert len(set(ids.values())) == 1 and len(ids) == 3
    again = submit_or_attach_many([BatchNarration.prepare(t) for t in tasks], client, ledger)
    assert again == ids and fake.count("POST", BATCHES) == 1
    batch_id = next(iter(ids.values()))
    poll_batch(client, batch_id)
    assert all(n.collect(client, batch_id).provenance.narrator == "claude" for n in narrations)
    # an ended batch's results are downloaded once for all the narrations it carries
    assert fake.count("GET", f"{BATCHES}/{batch_id}/results") == 1


def test_json_ledger_survives_torn_files_and_rejects_bad_ids(tmp_path: Path) -> None:
    from dataeng_agents.core.errors import ConfigError
    from dataeng_agents.core.llm import LedgerEntry

    ledger = JsonFileLedger(tmp_path)
    ledger.put(
        LedgerEntry("experiment-abc", "msgbatch_1", "2026-11-27T00:00:00+00:00", "m", "p", "experiment", "s")
    )
    assert ledger.get("experiment-abc") is not None
    (tmp_path / "experiment-abc.json").write_text('{"custom_id": "experiment-ab')
    assert ledger.get("experiment-abc") is None  # torn write: resubmit rather than crash
    with pytest.raises(ConfigError):
        ledger.get("../../etc/passwd")


def test_a_batch_that_no_longer_exists_falls_back_and_leaves_the_ledger() -> None:
    from dataeng_agents.core.llm import LedgerEntry

    fake = FakeAnthropic()
    ledger = InMemoryLedger()
    n = BatchNarration.prepare(experiment_task(), retry=NO_SLEEP)
    ledger.put(
        LedgerEntry(
            n.custom_id,
            "msgbatch_gone",
            "2026-10-01T00:00:00+00:00",
            n.model,
            "data-engineer",
            "experiment",
            "checkout-v2",
        )
    )
    out = n.collect(fake.client(), ledger=ledger)
    assert re.fullmatch(
        r"batch: HTTP 404 NotFoundError: batch not found \(request-id req_\d+\)",
        out.provenance.fallback_reason or "",
    )
    assert ledger.get(n.custom_id) is None


def test_custom_id_ignores_last_bit_noise_of_recomputed_results() -> None:
    """A resumed task recomputes its aggregates; parallel sums differ in the last bits, not the id."""
    from dataeng_agents.core.agents import BatchNarration
    from dataeng_agents.core.narrative import ExperimentNarrative, NarrationTask

    def task(value: float) -> NarrationTask[ExperimentNarrative]:
        return NarrationTask(
            kind="experiment",
            subject_id="exp-1",
            facts={"results": [{"id": "r1", "estimate": value}]},
            output_model=ExperimentNarrative,
            template=lambda: ExperimentNarrative(headline="h", summary="s"),
        )

    first = BatchNarration.prepare(task(0.1 + 0.2))
    again = BatchNarration.prepare(task(0.3))  # 0.30000000000000004 vs 0.3
    changed = BatchNarration.prepare(task(0.31))
    assert first.custom_id == again.custom_id
    assert first.custom_id != changed.custom_id


def test_two_workers_at_once_pay_for_one_batch(tmp_path: Path) -> None:
    """A cleared task's second try starting while the first still submits: the ledger's lock
    makes the second wait and attach instead of creating a second batch."""
    import threading
    import time

    fake = FakeAnthropic(batch_result=succeeded(GOOD_ANSWER))
    create = fake._create_batch

    def slow_create(body: dict[str, Any]) -> Any:
        time.sleep(0.3)  # wide enough that both workers look the id up before either records it
        return create(body)

    fake._create_batch = slow_create  # type: ignore[method-assign]
    client = fake.client()
    start = threading.Barrier(2)
    got: list[str] = []

    def worker() -> None:
        narration = BatchNarration.prepare(experiment_task(), retry=NO_SLEEP)
        start.wait()
        got.append(narration.submit_or_attach(client, JsonFileLedger(tmp_path / "ledger")))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(got) == 2 and got[0] == got[1]
    assert fake.count("POST", BATCHES) == 1
