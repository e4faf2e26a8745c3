"""The tool-use loop over the Messages API, with budget, retries, usage and a validated final answer.

One run: the model reads the results through read-only tools, then calls the ``final_answer`` tool
whose ``input_schema`` is the JSON schema of the output pydantic model. The runner validates that
input with pydantic (extra fields are rejected, so no severity or number field can be smuggled in)
and with an optional ``validate`` callback (the grounding check). A rejected answer gets one repair
turn (a ``tool_result`` with ``is_error``) and then the run fails with the reason; the caller falls
back to the deterministic template.

Requests carry three prompt-cache breakpoints: the system prompt, the last tool definition, and the
first user message; a fourth moves to the newest tool result so each turn reads the previous turn
from the cache. No ``tool_choice`` is forced and no sampling parameter is sent: current models reject
both; the system prompt asks for ``final_answer`` and a text-only turn gets one reminder.
"""

from __future__ import annotations

import copy
import functools
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import anthropic
from dataeng_agents.core.errors import BudgetExceededError
from dataeng_agents.core.llm.budget import Budget, estimate_call
from dataeng_agents.core.llm.pricing import PriceTable, RunUsage, TokenUsage
from dataeng_agents.core.llm.retry import (
    RetriesExhausted,
    RetryPolicy,
    RetryStats,
    describe_error,
    retry_call,
    without_sdk_retries,
)
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)
FINAL_TOOL = "final_answer"
CACHE = {"type": "ephemeral"}
DEFAULT_REQUEST_TIMEOUT = 120.0


@dataclass
class Tool:
    """A read-only tool: its definition for the model and the function that answers it (text)."""

    name: str
    description: str
    input_schema: dict[str, Any]
    handler: Callable[[dict[str, Any]], str]

    def definition(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "input_schema": self.input_schema}


@dataclass
class LoopOutcome(Generic[M]):
    """What a run produced: the answer, or ``failure`` saying why not; usage either way."""

    answer: M | None
    failure: str | None
    usage: RunUsage
    iterations: int = 0
    repairs: int = 0
    messages: list[dict[str, Any]] = field(default_factory=list)


def final_tool_schema(output_model: type[BaseModel]) -> dict[str, Any]:
    """The output model's JSON schema without ``provenance`` (the narrator fills that in)."""
    return copy.deepcopy(_final_tool_schema(output_model))


def _shared_final_tool_schema(output_model: type[BaseModel]) -> dict[str, Any]:
    # The cached schema itself, for request bodies the runner builds and never mutates.
    return _final_tool_schema(output_model)


@functools.lru_cache(maxsize=32)
def _final_tool_schema(output_model: type[BaseModel]) -> dict[str, Any]:
    schema = copy.deepcopy(output_model.model_json_schema())
    schema.get("properties", {}).pop("provenance", None)
    if "required" in schema:
        schema["required"] = [r for r in schema["required"] if r != "provenance"]
    defs = schema.get("$defs", {})
    defs.pop("NarrationProvenance", None)
    if not defs:
        schema.pop("$defs", None)
    schema["additionalProperties"] = False
    return schema


def parse_final(output_model: type[M], data: Any) -> M:
    """Validate the ``final_answer`` input. ``provenance`` is the narrator's, never the model's."""
    if not isinstance(data, dict):
        raise ValueError("final_answer input must be a JSON object")
    if "provenance" in data:
        raise ValueError("provenance: extra inputs are not permitted (the narrator sets it)")
    return output_model.model_validate(data)


def message_blocks(message: Any) -> list[dict[str, Any]]:
    """An assistant message's content as request params, unchanged (thinking blocks included)."""
    blocks: list[dict[str, Any]] = []
    for b in message.content:
        blocks.append(b.to_dict() if hasattr(b, "to_dict") else dict(b))
    return blocks


def with_cache_breakpoints(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A copy with a breakpoint on the first user message and on the newest user message only.

    Only the containers on the way to a changed block are copied; ``messages`` is never modified.
    """
    out: list[dict[str, Any]] = []
    last = len(messages) - 1
    for i, msg in enumerate(messages):
        content = msg.get("content")
        if not isinstance(content, list) or not content:
            out.append(msg)
            continue
        blocks = [
            {k: v for k, v in b.items() if k != "cache_control"} if isinstance(b, dict) and "cache_control" in b else b
            for b in content
        ]
        if (i == 0 or i == last) and msg.get("role") == "user" and isinstance(blocks[-1], dict):
            blocks[-1] = {**blocks[-1], "cache_control": dict(CACHE)}
        out.append({**msg, "content": blocks})
    return out


class ToolLoopRunner:
    """Runs one tool-use conversation with an SDK client that the caller built.

    :param client: an ``anthropic.Anthropic`` (or Bedrock/Vertex/...) client; its own retries are
        switched off on a copy so that :class:`RetryPolicy` bounds every wait.
    :param model: the model id.
    :param prices: the price table for usage accounting and budget estimates.
    :param budget: checked before every request.
    :param retry: retries with backoff honouring ``retry-after``.
    :param max_iterations: most requests in one run (repairs and reminders included).
    :param max_output_tokens: ``max_tokens`` of every request.
    :param max_repairs: how many rejected answers get another turn (1: one repair, then fail).
    :param request_timeout: seconds one request may take (the SDK default is 10 minutes; a hung
        connection must not hold a scheduled task that long); a timeout is retried like a 5xx.
    """

    def __init__(
        self,
        client: Any,
        *,
        model: str,
        prices: PriceTable,
        budget: Budget | None = None,
        retry: RetryPolicy | None = None,
        max_iterations: int = 6,
        max_output_tokens: int = 2048,
        max_repairs: int = 1,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        rng: random.Random | None = None,
    ) -> None:
        self.client = without_sdk_retries(client)
        self.model = model
        self.prices = prices
        self.budget = budget or Budget()
        self.retry = retry or RetryPolicy()
        self.max_iterations = max_iterations
        self.max_output_tokens = max_output_tokens
        self.max_repairs = max_repairs
        self.request_timeout = request_timeout
        self.rng = rng or random.Random()

    def request(self, system: str, tools: list[Tool], output_model: type[BaseModel], messages: list[dict[str, Any]]) -> dict[str, Any]:
        """The Messages API body of the next call."""
        defs = [t.definition() for t in tools]
        defs.append(
            {
                "name": FINAL_TOOL,
                "description": (
                    "Submit your final answer. Call this exactly once, when you are done reading the "
                    "results. Use only numbers and ids that appear in the results."
                ),
                "input_schema": _shared_final_tool_schema(output_model),
            }
        )
        defs[-1]["cache_control"] = dict(CACHE)
        return {
            "model": self.model,
            "max_tokens": self.max_output_tokens,
            "system": [{"type": "text", "text": system, "cache_control": dict(CACHE)}],
            "tools": defs,
            "messages": with_cache_breakpoints(messages),
        }

    def call(self, body: dict[str, Any], usage: RunUsage) -> Any:
        """Check the budget, send one request with retries, account its usage."""
        estimate = estimate_call(body, self.model, self.prices, max_tokens=int(body["max_tokens"]))
        self.budget.check(usage, estimate)
        stats = RetryStats()
        try:
            message = retry_call(lambda: self.client.messages.create(**body, timeout=self.request_timeout), self.retry, stats=stats, rng=self.rng)
        finally:
            usage.retries += stats.retries
        usage.add(TokenUsage.from_api(message.usage), self.prices)
        return message

    def run(
        self,
        *,
        system: str,
        user: str,
        tools: list[Tool],
        output_model: type[M],
        validate: Callable[[M], str | None] | None = None,
        usage: RunUsage | None = None,
    ) -> LoopOutcome[M]:
        usage = usage or RunUsage(model=self.model)
        messages: list[dict[str, Any]] = [{"role": "user", "content": [{"type": "text", "text": user}]}]
        return self.continue_run(
            system=system, messages=messages, tools=tools, output_model=output_model, validate=validate, usage=usage
        )

    def continue_run(
        self,
        *,
        system: str,
        messages: list[dict[str, Any]],
        tools: list[Tool],
        output_model: type[M],
        validate: Callable[[M], str | None] | None,
        usage: RunUsage,
        repairs: int = 0,
    ) -> LoopOutcome[M]:
        """Run (or resume, e.g. after a batch answer failed its check) the loop from ``messages``."""
        handlers = {t.name: t for t in tools}
        iterations = 0

        def fail(reason: str) -> LoopOutcome[M]:
            return LoopOutcome(None, reason, usage, iterations, repairs, messages)

        while iterations < self.max_iterations:
            iterations += 1
            body = self.request(system, tools, output_model, messages)
            try:
                message = self.call(body, usage)
            except BudgetExceededError as exc:
                return fail(str(exc))
            except RetriesExhausted as exc:
                return fail(f"api: {exc}")
            except anthropic.APIError as exc:
                return fail(f"api: {describe_error(exc)} (not retryable)")
            messages.append({"role": "assistant", "content": message_blocks(message)})
            if message.stop_reason == "refusal":
                return fail("model refused to answer")
            if message.stop_reason == "pause_turn":
                continue
            tool_uses = [b for b in message.content if getattr(b, "type", None) == "tool_use"]
            if not tool_uses:
                messages.append(
                    {"role": "user", "content": [{"type": "text", "text": f"Submit your answer with the `{FINAL_TOOL}` tool."}]}
                )
                continue
            results: list[dict[str, Any]] = []
            accepted: M | None = None
            for block in tool_uses:
                if block.name == FINAL_TOOL:
                    problem: str | None
                    try:
                        candidate = parse_final(output_model, block.input)
                        problem = validate(candidate) if validate else None
                    except (ValidationError, ValueError) as exc:
                        candidate, problem = None, _validation_message(exc)
                    if problem is None and candidate is not None:
                        accepted = candidate
                        results.append(_tool_result(block.id, "Accepted."))
                    else:
                        if repairs >= self.max_repairs:
                            return fail(f"rejected answer: {problem}")
                        repairs += 1
                        results.append(
                            _tool_result(block.id, f"Your answer was rejected: {problem}. Call {FINAL_TOOL} again with a corrected answer.", error=True)
                        )
                elif block.name in handlers:
                    try:
                        results.append(_tool_result(block.id, handlers[block.name].handler(dict(block.input))))
                    except Exception as exc:  # a bad tool argument is the model's to fix
                        results.append(_tool_result(block.id, f"error: {exc}", error=True))
                else:
                    results.append(_tool_result(block.id, f"error: no tool named {block.name!r}", error=True))
            if accepted is not None:
                return LoopOutcome(accepted, None, usage, iterations, repairs, messages)
            messages.append({"role": "user", "content": results})
        return fail(f"iteration cap reached ({self.max_iterations} requests) without an accepted answer")


def _tool_result(tool_use_id: str, text: str, *, error: bool = False) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": tool_use_id, "content": text}
    if error:
        block["is_error"] = True
    return block


def _validation_message(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        parts = []
        for err in exc.errors()[:8]:
            loc = ".".join(str(p) for p in err["loc"])
            parts.append(f"{loc}: {err['msg']}")
        return "schema: " + "; ".join(parts)
    return f"schema: {exc}"


def json_text(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, default=str)
