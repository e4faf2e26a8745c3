"""Failures: retries honour retry-after and stay bounded; 1,000 runs with 30% failing calls all
yield a narrative, none hangs."""

from __future__ import annotations

import random
import re
import time
from typing import Any

import anthropic
import pytest
from dataeng_agents.core.agents import ClaudeNarrator
from dataeng_agents.core.llm import PriceTable, RetriesExhausted, RetryPolicy, retry_call
from test_agents_narrator import GOOD_ANSWER, experiment_task
from test_llm_fakes import (
    FakeAnthropic,
    Timeout,
    malformed,
    message,
    overloaded,
    rate_limited,
    server_error,
    tool_use,
)


class Clock:
    def __init__(self) -> None:
        self.sleeps: list[float] = []

    def __call__(self, s: float) -> None:
        self.sleeps.append(s)


def test_429_retry_after_is_honoured_and_sdk_retries_are_off() -> None:
    clock = Clock()
    fake = FakeAnthropic(
        messages=[rate_limited(7), overloaded(), message([tool_use("final_answer", GOOD_ANSWER)])]
    )
    n = ClaudeNarrator(fake.client(max_retries=5), retry=RetryPolicy(sleep=clock, jitter=0.0, base_delay=1.0))
    out = n.narrate(experiment_task())
    assert out.provenance.narrator == "claude"
    assert len(fake.requests) == 3  # the SDK's own 5 retries did not multiply the requests
    assert clock.sleeps == [7.0, 2.0]  # retry-after 7 s, then backoff 1 s * 2**1 for the 529
    assert out.provenance.usage is not None and out.provenance.usage["retries"] == 2


def test_retry_after_longer_than_the_cap_gives_up_at_once() -> None:
    clock = Clock()
    fake = FakeAnthropic(messages=[rate_limited(3600)])
    out = ClaudeNarrator(fake.client(), retry=RetryPolicy(sleep=clock, max_retry_after=60)).narrate(
        experiment_task()
    )
    assert clock.sleeps == [] and len(fake.requests) == 1
    assert "retry-after too long" in (out.provenance.fallback_reason or "")


def test_retries_exhaust_after_max_retries() -> None:
    clock = Clock()
    fake = FakeAnthropic(messages=lambda body: server_error())
    out = ClaudeNarrator(fake.client(), retry=RetryPolicy(sleep=clock, max_retries=3, jitter=0.0)).narrate(
        experiment_task()
    )
    assert len(fake.requests) == 4 and clock.sleeps == [1.0, 2.0, 4.0]
    assert re.fullmatch(
        r"api: retries exhausted after 4 attempt\(s\): HTTP 500 InternalServerError: Internal server error \(request-id req_\d+\)",
        out.provenance.fallback_reason or "",
    )


def test_total_sleep_is_bounded() -> None:
    clock = Clock()
    fake = FakeAnthropic(messages=lambda body: rate_limited(50))
    policy = RetryPolicy(sleep=clock, max_retries=10, max_total_sleep=120)
    out = ClaudeNarrator(fake.client(), retry=policy).narrate(experiment_task())
    assert sum(clock.sleeps) <= 120 and clock.sleeps == [50.0, 50.0]
    assert "retry wait budget spent" in (out.provenance.fallback_reason or "")


def test_retry_after_ms_and_http_date_are_understood() -> None:
    import httpx2
    from dataeng_agents.core.llm.retry import retry_after_seconds

    req = httpx2.Request("POST", "https://api.anthropic.com/v1/messages")

    def err(headers: dict[str, str]) -> anthropic.RateLimitError:
        return anthropic.RateLimitError(
            "rl", response=httpx2.Response(429, headers=headers, request=req), body=None
        )

    assert retry_after_seconds(err({"retry-after-ms": "1500"})) == 1.5
    assert retry_after_seconds(err({"retry-after": "3"})) == 3.0
    assert 0 <= (retry_after_seconds(err({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})) or 0) <= 1
    assert retry_after_seconds(err({})) is None


def test_x_should_retry_false_is_respected() -> None:
    import httpx2

    calls = []

    def fn() -> Any:
        calls.append(1)
        req = httpx2.Request("POST", "https://api.anthropic.com/v1/messages")
        raise anthropic.InternalServerError(
            "x", response=httpx2.Response(500, headers={"x-should-retry": "false"}, request=req), body=None
        )

    with pytest.raises(anthropic.InternalServerError):
        retry_call(fn, RetryPolicy(sleep=lambda s: None))
    assert len(calls) == 1
    with pytest.raises(RetriesExhausted):
        retry_call(
            lambda: (_ for _ in ()).throw(anthropic.APITimeoutError(httpx2.Request("GET", "https://x"))),
            RetryPolicy(sleep=lambda s: None, max_retries=2),
        )


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_fault_injection_1000_runs_30_percent_failing_calls() -> None:
    """Every call fails with probability 0.3 (429 with retry-after, 529, 500, timeout, malformed JSON);
    each run is a two-turn tool loop. Every run must yield a narrative; retries are bounded."""
    rng = random.Random(20261127)
    failures = {"429": 0, "529": 0, "500": 0, "timeout": 0, "malformed": 0}
    state = {"turn": 0}

    def responder(body: dict[str, Any]) -> Any:
        if rng.random() < 0.30:
            kind = rng.choice(list(failures))
            failures[kind] += 1
            return {
                "429": lambda: rate_limited(rng.choice([1, 2, 5])),
                "529": overloaded,
                "500": server_error,
                "timeout": lambda: Timeout(),
                "malformed": malformed,
            }[kind]()
        # a successful call: first turn reads the results, the next one answers
        if len(body["messages"]) == 1:
            return message(
                [tool_use("get_experiment_results", {})],
                input_tokens=1500,
                output_tokens=60,
                cache_creation=1200,
            )
        return message(
            [tool_use("final_answer", GOOD_ANSWER)], input_tokens=600, output_tokens=350, cache_read=1200
        )

    fake = FakeAnthropic(messages=responder)
    clock = Clock()
    policy = RetryPolicy(sleep=clock, max_retries=3, max_total_sleep=60)
    narrator = ClaudeNarrator(fake.client(), retry=policy, prices=PriceTable.load())
    task = experiment_task()
    runs, claude, fallbacks, retries, usd = 1000, 0, 0, 0, 0.0
    reasons: dict[str, int] = {}
    started = time.perf_counter()
    for _ in range(runs):
        state["turn"] = 0
        out = narrator.narrate(task)
        assert out is not None and out.headline
        usage = out.provenance.usage or {}
        retries += int(usage.get("retries", 0))
        usd += usage.get("usd", 0.0)
        if out.provenance.narrator == "claude":
            claude += 1
        else:
            fallbacks += 1
            key = (out.provenance.fallback_reason or "").split(":")[0]
            reasons[key] = reasons.get(key, 0) + 1
    elapsed = time.perf_counter() - started
    calls = sum(1 for r in fake.requests if r.url.path == "/v1/messages")
    print(
        f"\n1000 runs: {claude} claude, {fallbacks} template {reasons}; {calls} requests, {retries} retries, "
        f"injected {failures}; slept (fake) {sum(clock.sleeps):.0f}s; ${usd:.2f}; {elapsed:.1f}s wall"
    )
    assert claude + fallbacks == runs
    # bound: each run makes at most max_iterations requests, each with at most max_retries retries
    assert retries <= runs * 6 * policy.max_retries
    assert calls <= runs * 6 * (policy.max_retries + 1)
    # with p=0.3 per call and 3 retries, a call fails for good with p = 0.3**4 = 0.0081; two calls per run
    assert fallbacks < 60
    assert all(v > 0 for v in failures.values())
    assert max(clock.sleeps) <= policy.max_retry_after
