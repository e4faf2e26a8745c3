"""Scheduled mode: narration through the Message Batches API (half price, results within 24 h).

The orchestrator-facing API (the Airflow deferrable operator + trigger, the Prefect tasks)::

    narration = BatchNarration.prepare(task, persona="data-engineer", max_usd=0.50)
    batch_id = narration.submit_or_attach(client, JsonFileLedger(ledger_dir))   # sync, in execute()
    status = await apoll_batch(async_client, batch_id)                          # in the trigger
    # ... when status.ended:
    narrative = narration.collect(client, batch_id, ledger=ledger)              # sync, after resuming

``custom_id`` is a hash of (persona, its prompt, model, task kind, subject id, the safe facts,
question, output model, max_tokens, prompt version), so the same task prepared again, in another
process or after a retry, has the same id and :meth:`submit_or_attach` finds its batch in the ledger
instead of paying for a second one. A batch request is one turn with every (safe) fact inline and
only the ``final_answer`` tool. Its answer gets the same validation and grounding check as the
interactive loop; a rejected answer gets one synchronous repair turn (``repair=True``), then the
template. An errored, expired or canceled request falls back to the template and leaves the ledger,
so the next retry submits again.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic

import anthropic
from dataeng_agents.core.agents.narrator import (
    AUTO_PERSONA,
    claude_answer,
    client_max_retries,
    task_persona,
    template_fallback,
)
from dataeng_agents.core.agents.persona import Persona, load_persona
from dataeng_agents.core.agents.prompting import PROMPT_VERSION, PreparedTask, prepare
from dataeng_agents.core.errors import BudgetExceededError, DataengError
from dataeng_agents.core.llm.budget import Budget, estimate_call
from dataeng_agents.core.llm.ledger import BatchLedger, LedgerEntry, claimed
from dataeng_agents.core.llm.pricing import PriceTable, RunUsage, TokenUsage
from dataeng_agents.core.llm.retry import (
    RetriesExhausted,
    RetryPolicy,
    aretry_call,
    describe_error,
    retry_call,
    without_sdk_retries,
)
from dataeng_agents.core.llm.runner import (
    FINAL_TOOL,
    ToolLoopRunner,
    message_blocks,
    parse_final,
)
from dataeng_agents.core.narrative import NarrationTask, NarrativeT


class BatchNotReadyError(DataengError):
    """``collect`` was called before the batch ended; poll until ``BatchStatus.ended``."""


@dataclass(frozen=True)
class BatchStatus:
    """What a poll saw. ``ended`` is the only status after which ``collect`` may run."""

    batch_id: str
    processing_status: str
    request_counts: dict[str, int] = field(default_factory=dict)
    results_url: str | None = None

    @property
    def ended(self) -> bool:
        return self.processing_status == "ended"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able (for an Airflow ``TriggerEvent`` payload)."""
        return {
            "batch_id": self.batch_id,
            "processing_status": self.processing_status,
            "request_counts": dict(self.request_counts),
            "results_url": self.results_url,
            "ended": self.ended,
        }


def _status(batch: Any) -> BatchStatus:
    counts = batch.request_counts
    return BatchStatus(
        batch_id=batch.id,
        processing_status=batch.processing_status,
        request_counts={
            k: int(getattr(counts, k, 0))
            for k in ("processing", "succeeded", "errored", "canceled", "expired")
        },
        results_url=batch.results_url,
    )


def poll_batch(client: Any, batch_id: str, *, retry: RetryPolicy | None = None) -> BatchStatus:
    """One poll (``messages.batches.retrieve``) with bounded retries."""
    c = without_sdk_retries(client)
    return _status(
        retry_call(
            lambda: c.messages.batches.retrieve(batch_id, timeout=POLL_TIMEOUT), retry or RetryPolicy()
        )
    )


async def apoll_batch(async_client: Any, batch_id: str, *, retry: RetryPolicy | None = None) -> BatchStatus:
    """One poll with an ``anthropic.AsyncAnthropic`` client (for the Airflow trigger's event loop)."""
    c = without_sdk_retries(async_client)

    async def retrieve() -> Any:
        return await c.messages.batches.retrieve(batch_id, timeout=POLL_TIMEOUT)

    return _status(await aretry_call(retrieve, retry or RetryPolicy()))


# Seconds per request: a poll is tiny; a submit carries every request; results can be megabytes.
POLL_TIMEOUT = 30.0
SUBMIT_TIMEOUT = 120.0
RESULTS_TIMEOUT = 300.0

_RESULTS_CACHE: OrderedDict[str, dict[str, Any]] = OrderedDict()
_RESULTS_CACHE_SIZE = 8
_RESULTS_LOCK = threading.Lock()


def _ended_results(client: Any, batch_id: str) -> dict[str, Any]:
    """``{custom_id: result line}`` of an ended batch, downloaded once per process.

    An ended batch's results never change, so collecting N narrations of one batch (a review of
    many DAGs) reads the JSONL once instead of N times. Only called after ``retrieve`` saw ``ended``.
    """
    with _RESULTS_LOCK:
        if batch_id in _RESULTS_CACHE:
            _RESULTS_CACHE.move_to_end(batch_id)
            return _RESULTS_CACHE[batch_id]
    items = {
        item.custom_id: item for item in client.messages.batches.results(batch_id, timeout=RESULTS_TIMEOUT)
    }
    with _RESULTS_LOCK:
        _RESULTS_CACHE[batch_id] = items
        while len(_RESULTS_CACHE) > _RESULTS_CACHE_SIZE:
            _RESULTS_CACHE.popitem(last=False)
    return items


#: significant digits of the floats in the facts that a batch ``custom_id`` is hashed from
FACT_DIGITS = 8


def stable_facts(value: Any, digits: int = FACT_DIGITS) -> Any:
    """``value`` with every float rounded to ``digits`` significant digits.

    A retried or resumed task computes its results again and must find its batch by the same
    ``custom_id``. Parallel aggregation in a warehouse (DuckDB, most MPP engines) is not
    bit-reproducible: sums differ in the last bits between two runs on the same data. Eight
    significant digits are far below anything prose states and far above that noise.
    """
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")) or value == 0.0:
            return value
        return float(f"{value:.{digits}g}")
    if isinstance(value, dict):
        return {k: stable_facts(v, digits) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [stable_facts(v, digits) for v in value]
    return value


def custom_id_for(prepared: PreparedTask[Any], model: str, max_tokens: int) -> str:
    """Deterministic, ``^[a-zA-Z0-9_-]{1,64}$`` as the API requires."""
    task = prepared.task
    material = {
        "v": PROMPT_VERSION,
        "persona": prepared.persona.name,
        "persona_prompt": hashlib.sha256(prepared.persona.system_prompt.encode()).hexdigest(),
        "model": model,
        "kind": task.kind,
        "subject_id": task.subject_id,
        "facts": stable_facts(prepared.facts),
        "question": task.question,
        "output": task.output_model.__name__,
        "max_tokens": max_tokens,
    }
    digest = hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()
    return f"{task.kind[:12]}-{digest[:48]}"


class BatchNarration(Generic[NarrativeT]):
    """One narration task as one Message Batches request. Build it with :meth:`prepare`."""

    def __init__(
        self,
        prepared: PreparedTask[NarrativeT],
        *,
        model: str,
        max_output_tokens: int,
        prices: PriceTable,
        budget: Budget,
        retry: RetryPolicy | None,
    ) -> None:
        self.prepared: PreparedTask[NarrativeT] = prepared
        self.task: NarrationTask[NarrativeT] = prepared.task
        self.persona = prepared.persona
        self.model = model
        self.max_output_tokens = max_output_tokens
        self.prices = prices
        self.budget = budget
        #: ``None``: the policy of the client each call gets (its ``max_retries``)
        self.retry = retry
        self.custom_id = custom_id_for(prepared, model, max_output_tokens)
        runner = ToolLoopRunner(None, model=model, prices=prices, max_output_tokens=max_output_tokens)
        self.params: dict[str, Any] = runner.request(
            prepared.system,
            [],
            self.task.output_model,
            [{"role": "user", "content": [{"type": "text", "text": prepared.user}]}],
            cache_messages=False,  # one turn: a breakpoint on it would never be read
        )
        self.usage = RunUsage(model=model)

    @classmethod
    def prepare(
        cls,
        task: NarrationTask[NarrativeT],
        *,
        persona: str | Persona | None = None,
        model: str | None = None,
        max_usd: float | None = None,
        max_tokens: int | None = None,
        max_output_tokens: int | None = None,
        prices: PriceTable | None = None,
        retry: RetryPolicy | None = None,
        persona_dirs: list[str | os.PathLike[str]] | None = None,
    ) -> BatchNarration[NarrativeT]:
        """Build the request for ``task`` (pure: no API call). Same task in, same ``custom_id`` out."""
        if isinstance(persona, str) and persona == AUTO_PERSONA:
            persona = None
        p = (
            persona
            if isinstance(persona, Persona)
            else load_persona(persona or task_persona(task), persona_dirs)
        )
        return cls(
            prepare(task, p, inline=True),
            model=model or p.resolved_model,
            max_output_tokens=max_output_tokens or p.max_output_tokens,
            prices=prices or PriceTable.load(),
            budget=Budget(max_usd=max_usd, max_tokens=max_tokens),
            retry=retry,
        )

    def _policy(self, client: Any) -> RetryPolicy:
        return self.retry if self.retry is not None else RetryPolicy(max_retries=client_max_retries(client))

    def request(self) -> dict[str, Any]:
        """The ``batches.create`` request item: ``{"custom_id", "params"}``."""
        return {"custom_id": self.custom_id, "params": self.params}

    def estimate_usd(self) -> float:
        return estimate_call(
            self.params, self.model, self.prices, max_tokens=self.max_output_tokens, batch=True
        ).usd

    def submit_or_attach(self, client: Any, ledger: BatchLedger) -> str:
        """The batch id carrying this request: from the ledger, else a new batch (one ``batches.create``).

        :raises BudgetExceededError: the request's worst-case cost exceeds the budget (nothing sent).
        :raises RetriesExhausted: the API kept failing; the caller falls back with :meth:`fallback`.
        """
        with claimed(ledger, [self.custom_id]):
            entry = ledger.get(self.custom_id)
            if entry is not None:
                return entry.batch_id
            self.budget.check(
                self.usage,
                estimate_call(
                    self.params, self.model, self.prices, max_tokens=self.max_output_tokens, batch=True
                ),
            )
            c = without_sdk_retries(client)
            batch = retry_call(
                lambda: c.messages.batches.create(requests=[self.request()], timeout=SUBMIT_TIMEOUT),
                self._policy(client),
            )
            ledger.put(
                LedgerEntry(
                    custom_id=self.custom_id,
                    batch_id=batch.id,
                    submitted_at=datetime.now(UTC).isoformat(timespec="seconds"),
                    model=self.model,
                    persona=self.persona.name,
                    kind=self.task.kind,
                    subject_id=self.task.subject_id,
                )
            )
            return str(batch.id)

    def fallback(self, reason: str) -> NarrativeT:
        """The template narrative, recording ``reason`` (for callers whose submit/poll failed)."""
        return template_fallback(
            self.task, persona=self.persona.name, model=self.model, reason=reason, usage=self.usage
        )

    def collect(
        self,
        client: Any,
        batch_id: str | None = None,
        *,
        ledger: BatchLedger | None = None,
        repair: bool = True,
    ) -> NarrativeT:
        """The narrative from an ended batch; never raises for an LLM failure (template fallback).

        :param batch_id: the batch; ``None`` reads it from ``ledger``.
        :param ledger: when given, a failed request (errored/expired/canceled) is discarded from it so
            the next attempt submits again.
        :param repair: a rejected answer gets one synchronous ``messages.create`` repair turn.
        :raises BatchNotReadyError: the batch has not ended yet.
        """
        if batch_id is None:
            entry = ledger.get(self.custom_id) if ledger is not None else None
            if entry is None:
                return self.fallback("batch: no batch recorded for this request")
            batch_id = entry.batch_id
        c = without_sdk_retries(client)
        try:
            status = _status(
                retry_call(
                    lambda: c.messages.batches.retrieve(batch_id, timeout=POLL_TIMEOUT), self._policy(client)
                )
            )
            if not status.ended:
                raise BatchNotReadyError(
                    f"batch {batch_id} is {status.processing_status}; poll until it has ended"
                )
            found = retry_call(lambda: self._find_result(c, batch_id), self._policy(client))
        except (RetriesExhausted, anthropic.APIError) as exc:
            if isinstance(exc, anthropic.NotFoundError) and ledger is not None:
                ledger.discard(self.custom_id)  # the batch is gone (deleted, or its results expired)
            return self.fallback(
                f"batch: {exc if isinstance(exc, RetriesExhausted) else describe_error(exc)}"
            )
        if found is None:
            return self.fallback(f"batch: no result for custom_id {self.custom_id} in batch {batch_id}")
        result = found.result
        if result.type != "succeeded":
            if ledger is not None:
                ledger.discard(self.custom_id)
            detail = ""
            if result.type == "errored":
                err = getattr(getattr(result, "error", None), "error", None)
                detail = f" ({getattr(err, 'type', 'error')})"
            return self.fallback(f"batch: request {result.type}{detail}")
        message = result.message
        self.usage.add(TokenUsage.from_api(message.usage), self.prices, batch=True)
        answer, problem = self._answer(message)
        if answer is not None:
            return self._claude(answer)
        if not repair:
            return self.fallback(f"rejected answer: {problem}")
        return self._repair(client, message, problem or "no final answer")

    def _find_result(self, client: Any, batch_id: str) -> Any:
        return _ended_results(client, batch_id).get(self.custom_id)

    def _answer(self, message: Any) -> tuple[NarrativeT | None, str | None]:
        finals = [
            b for b in message.content if getattr(b, "type", None) == "tool_use" and b.name == FINAL_TOOL
        ]
        if not finals:
            return None, f"the model did not call {FINAL_TOOL}"
        try:
            answer = parse_final(self.task.output_model, finals[0].input)
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            from dataeng_agents.core.llm.runner import _validation_message

            return None, _validation_message(exc)
        problem = self.prepared.validate(answer)
        return (answer, None) if problem is None else (None, problem)

    def _repair(self, client: Any, message: Any, problem: str) -> NarrativeT:
        runner = ToolLoopRunner(
            client,
            model=self.model,
            prices=self.prices,
            budget=self.budget,
            retry=self._policy(client),
            max_iterations=1,
            max_output_tokens=self.max_output_tokens,
            max_repairs=0,
            rng=random.Random(),
        )
        blocks = message_blocks(message)
        finals = [b for b in blocks if b.get("type") == "tool_use" and b.get("name") == FINAL_TOOL]
        if finals:
            follow = [
                {
                    "type": "tool_result",
                    "tool_use_id": finals[0]["id"],
                    "content": f"Your answer was rejected: {problem}. Call {FINAL_TOOL} again with a corrected answer.",
                    "is_error": True,
                }
            ]
        else:
            follow = [{"type": "text", "text": f"Submit your answer with the `{FINAL_TOOL}` tool."}]
        messages = [
            {"role": "user", "content": [{"type": "text", "text": self.prepared.user}]},
            {"role": "assistant", "content": blocks},
            {"role": "user", "content": follow},
        ]
        try:
            outcome = runner.continue_run(
                system=self.prepared.system,
                messages=messages,
                tools=[],
                output_model=self.task.output_model,
                validate=self.prepared.validate,
                usage=self.usage,
                repairs=0,
            )
        except BudgetExceededError as exc:
            return self.fallback(str(exc))
        if outcome.answer is None:
            return self.fallback(f"rejected answer after repair: {problem}; then {outcome.failure}")
        return self._claude(outcome.answer)

    def _claude(self, answer: NarrativeT) -> NarrativeT:
        return claude_answer(
            answer, persona=self.persona.name, model=self.model, usage=self.usage, batch=True
        )


def submit_or_attach_many(
    narrations: list[BatchNarration[Any]],
    client: Any,
    ledger: BatchLedger,
    *,
    retry: RetryPolicy | None = None,
) -> dict[str, str]:
    """Submit every narration not yet in the ledger in ONE batch; ``{custom_id: batch_id}`` for all."""
    out: dict[str, str] = {}
    pending: dict[str, BatchNarration[Any]] = {}
    with claimed(ledger, {n.custom_id for n in narrations}):
        for n in narrations:
            entry = ledger.get(n.custom_id)
            if entry is not None:
                out[n.custom_id] = entry.batch_id
            else:
                pending.setdefault(n.custom_id, n)
        if pending:
            for n in pending.values():
                n.budget.check(
                    n.usage,
                    estimate_call(n.params, n.model, n.prices, max_tokens=n.max_output_tokens, batch=True),
                )
            c = without_sdk_retries(client)
            batch = retry_call(
                lambda: c.messages.batches.create(
                    requests=[n.request() for n in pending.values()], timeout=SUBMIT_TIMEOUT
                ),
                retry or RetryPolicy(),
            )
            now = datetime.now(UTC).isoformat(timespec="seconds")
            for n in pending.values():
                ledger.put(
                    LedgerEntry(
                        n.custom_id, batch.id, now, n.model, n.persona.name, n.task.kind, n.task.subject_id
                    )
                )
                out[n.custom_id] = str(batch.id)
    return out
