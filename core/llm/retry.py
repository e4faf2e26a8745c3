"""Bounded retries with backoff that honour ``retry-after`` (sync and async).

The SDK can retry by itself, but its retries are invisible to our budget and to our bound on the
total wait, so every client we use is copied with ``max_retries=0`` (:func:`without_sdk_retries`)
and this module does the retrying: 429, 408, 409, 5xx (incl. 529 overloaded), timeouts, connection
errors and unparseable response bodies are retried at most ``max_retries`` times, never sleeping
more than ``max_total_sleep`` seconds in all. A ``retry-after`` longer than ``max_retry_after`` ends
the retrying at once: a scheduled report then uses the template rather than block a worker slot.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anthropic

T = TypeVar("T")

RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504, 529})


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry one API call.

    :param max_retries: retries after the first attempt (so at most ``max_retries + 1`` requests).
    :param base_delay: first backoff delay in seconds when the server gives no ``retry-after``.
    :param max_delay: cap of one exponential-backoff delay.
    :param max_retry_after: the longest ``retry-after`` we wait for; longer ones end the retrying.
    :param max_total_sleep: cap of the summed sleeps of one call.
    :param jitter: +/- fraction of random jitter on exponential delays (not on ``retry-after``).
    :param sleep: the sleep function (tests pass a fake clock).
    :param async_sleep: the coroutine sleep used by :func:`aretry_call`.
    """

    max_retries: int = 3
    base_delay: float = 1.0
    max_delay: float = 20.0
    max_retry_after: float = 60.0
    max_total_sleep: float = 120.0
    jitter: float = 0.25
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    async_sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, compare=False)


class RetriesExhausted(Exception):
    """The call failed ``attempts`` times (or a retry-after was too long); ``last`` is the last error."""

    def __init__(self, attempts: int, last: BaseException, reason: str) -> None:
        self.attempts = attempts
        self.last = last
        self.reason = reason
        super().__init__(f"{reason} after {attempts} attempt(s): {describe_error(last)}")


def describe_error(exc: BaseException) -> str:
    """One line for a fallback reason: status, the API's own message (a 400 says what was wrong) and
    the ``request-id`` support needs; secrets are redacted in case the message echoes input."""
    if isinstance(exc, anthropic.APIStatusError):
        from dataeng_agents.core.security.secrets import redact

        text = f"HTTP {exc.status_code} {type(exc).__name__}"
        detail = _api_message(exc)
        if detail:
            text += f": {redact(detail)[:300]}"
        request_id = getattr(exc, "request_id", None)
        if request_id:
            text += f" (request-id {request_id})"
        return text
    if isinstance(exc, anthropic.APITimeoutError):
        return "timeout"
    if isinstance(exc, anthropic.APIConnectionError):
        return "connection error"
    if isinstance(exc, json.JSONDecodeError | anthropic.APIResponseValidationError):
        return "malformed response body"
    return type(exc).__name__


def _api_message(exc: anthropic.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return str(err["message"])
    return ""


def is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, anthropic.APIStatusError):
        should = exc.response.headers.get("x-should-retry")
        if should == "false":
            return False
        return should == "true" or exc.status_code in RETRYABLE_STATUS or exc.status_code >= 500
    # APITimeoutError is an APIConnectionError; a garbled 200 body surfaces as JSONDecodeError.
    return isinstance(
        exc, anthropic.APIConnectionError | anthropic.APIResponseValidationError | json.JSONDecodeError
    )


def retry_after_seconds(exc: BaseException) -> float | None:
    """The server's requested wait: ``retry-after-ms``, ``retry-after`` seconds or HTTP date."""
    if not isinstance(exc, anthropic.APIStatusError):
        return None
    headers = exc.response.headers
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return max(float(ms) / 1000.0, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        if parsed is None:
            return None
        return max(parsed.timestamp() - time.time(), 0.0)


def next_delay(policy: RetryPolicy, exc: BaseException, retry_index: int, rng: random.Random) -> float | None:
    """Seconds to wait before retry ``retry_index`` (0-based); ``None`` means give up now."""
    after = retry_after_seconds(exc)
    if after is not None:
        return None if after > policy.max_retry_after else after
    delay = min(policy.base_delay * (2.0**retry_index), policy.max_delay)
    if policy.jitter:
        delay *= 1.0 + rng.uniform(-policy.jitter, policy.jitter)
    return max(delay, 0.0)


@dataclass
class RetryStats:
    """Counted across calls: retries made and seconds slept."""

    retries: int = 0
    slept: float = 0.0


def retry_call(
    fn: Callable[[], T],
    policy: RetryPolicy,
    *,
    stats: RetryStats | None = None,
    rng: random.Random | None = None,
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Call ``fn`` until it succeeds, retrying retryable errors within ``policy``.

    :param deadline: a ``clock()`` time after which no retry starts (a wait that would end after it
        ends the retrying at once, with reason ``deadline``).
    :raises RetriesExhausted: when the error is retryable but the bound is reached.
    Non-retryable errors propagate unchanged.
    """
    rng = rng or random.Random()
    slept = 0.0
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn()
        except Exception as exc:
            delay = _delay_before_retry(exc, attempt, slept, policy, stats, rng)
            if deadline is not None and clock() + delay >= deadline:
                if stats is not None:
                    stats.retries -= 1
                    stats.slept -= delay
                raise RetriesExhausted(attempt, exc, "narration deadline reached") from exc
            slept += delay
            policy.sleep(delay)


def _delay_before_retry(
    exc: Exception,
    attempt: int,
    slept: float,
    policy: RetryPolicy,
    stats: RetryStats | None,
    rng: random.Random,
) -> float:
    """How long to wait before retrying after ``exc`` (attempt ``attempt`` failed, ``slept`` so far).

    Re-raises ``exc`` when it is not retryable and raises :class:`RetriesExhausted` when the retry
    count, a too-long ``retry-after`` or the total wait budget says stop; shared by the sync and
    async loops so both stop at exactly the same point.
    """
    if not is_retryable(exc):
        raise exc
    reason = "retries exhausted" if attempt > policy.max_retries else None
    delay = None if reason else next_delay(policy, exc, attempt - 1, rng)
    if delay is None:
        raise RetriesExhausted(attempt, exc, reason or "retry-after too long") from exc
    if slept + delay > policy.max_total_sleep:
        raise RetriesExhausted(attempt, exc, "retry wait budget spent") from exc
    if stats is not None:
        stats.retries += 1
        stats.slept += delay
    return delay


async def aretry_call(
    fn: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    stats: RetryStats | None = None,
    rng: random.Random | None = None,
) -> T:
    """The coroutine twin of :func:`retry_call` (for ``anthropic.AsyncAnthropic``)."""
    rng = rng or random.Random()
    slept = 0.0
    attempt = 0
    while True:
        attempt += 1
        try:
            return await fn()
        except Exception as exc:
            delay = _delay_before_retry(exc, attempt, slept, policy, stats, rng)
            slept += delay
            await policy.async_sleep(delay)


def without_sdk_retries(client: Any) -> Any:
    """A copy of an SDK client with its own retries off, so :func:`retry_call` is the only retrier.

    Works for every Stainless-built client (``Anthropic``, ``AsyncAnthropic``, Bedrock, Vertex, ...);
    an object without ``with_options`` (a test double) is returned as it is.
    """
    with_options = getattr(client, "with_options", None)
    if with_options is None or getattr(client, "max_retries", 0) == 0:
        return client
    return with_options(max_retries=0)
