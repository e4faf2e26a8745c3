"""The tool-use loop over the Messages API, with budget, retries, usage and a validated final answer.

One run: the model reads the results through read-only tools, then calls the ``final_answer`` tool
whose ``input_schema`` is the JSON schema of the output pydantic model. The runner validates that
input with pydantic (extra fields are rejected, so no severity or number field can be smuggled in)
and with an optional ``validate`` callback (the grounding check). A rejected answer gets one repair
turn (a ``tool_result`` with ``is_error``) and then the run fails with the reason; the caller falls
back to the deterministic template.

The ``final_answer`` tool is *strict* (``"strict": true``, grammar-constrained sampling): its schema
is the output model's, made strict-compatible (references inlined, every object closed, every
property required) so the API itself guarantees the shape and pydantic re-checks it. A turn that
stops at ``max_tokens`` is not an answer: the same request is sent again with twice the room (up to
``max_output_tokens_cap``), once per stop, and never reaches the schema check truncated.

Prompt caching: two breakpoints, both read. The system prompt's breakpoint (tools and system are
the same for every task of a kind and persona, so the next narration within five minutes reads
it) and the newest user turn's (each turn of the loop reads the previous turn's prefix). A
breakpoint on the tool list or on the first user turn would never be read: the longer prefix
after it always hits first. Batch requests (one turn) carry only the system breakpoint.
No ``tool_choice`` is forced and no sampling parameter is sent: current models reject both with
extended thinking; the system prompt asks for ``final_answer`` and a text-only turn gets one reminder.

Time: ``request_timeout`` bounds one request and ``deadline`` the whole run (every request,
retry and wait): a hung API costs at most ``deadline`` seconds, then the template writes the prose.
Every user-side text is passed through the secret detector once more before it is sent.
"""

from __future__ import annotations

import copy
import functools
import json
import random
import time
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
from dataeng_agents.core.llm.safety import redact, redact_outgoing
from dataeng_agents.core.narrative import DEFAULT_DEADLINE_SECONDS
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)
FINAL_TOOL = "final_answer"
CACHE = {"type": "ephemeral"}
DEFAULT_REQUEST_TIMEOUT = 120.0
#: seconds one whole narration (every request, retry and wait) may take by default
DEFAULT_DEADLINE = DEFAULT_DEADLINE_SECONDS
#: the most ``max_tokens`` a retry after a ``max_tokens`` stop may ask for
MAX_OUTPUT_TOKENS_CAP = 16_384


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
    defs = schema.pop("$defs", {})
    defs.pop("NarrationProvenance", None)
    return strict_schema(schema, defs)


#: JSON-schema keywords strict tool use does not accept or that only describe (dropped)
_UNSUPPORTED = frozenset(
    {
        "default",
        "title",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "pattern",
        "format",
        "examples",
    }
)


def strict_schema(schema: dict[str, Any], defs: dict[str, Any] | None = None) -> dict[str, Any]:
    """A strict-tool-compatible copy of a pydantic JSON schema.

    ``$ref`` inlined, every object ``additionalProperties: false`` with every property required
    (an optional list is then sent as ``[]``, an optional string as ``""``: pydantic accepts both),
    and the keywords grammar-constrained sampling does not support dropped (pydantic still
    enforces them when it validates the answer).
    """
    defs = defs or {}

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                name = str(node["$ref"]).split("/")[-1]
                return walk(copy.deepcopy(defs[name]))
            out = {k: walk(v) for k, v in node.items() if k not in _UNSUPPORTED}
            if out.get("type") == "object" or "properties" in out:
                out["additionalProperties"] = False
                out["required"] = list(out.get("properties", {}))
            return out
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    result = walk(schema)
    assert isinstance(result, dict)
    return result


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


def with_cache_breakpoints(messages: list[dict[str, Any]], *, cache: bool = True) -> list[dict[str, Any]]:
    """A copy with one breakpoint, on the newest user message (none when ``cache`` is false).

    Stale breakpoints a caller left on older turns are removed. Only the containers on the way to a
    changed block are copied; ``messages`` is never modified.
    """
    out: list[dict[str, Any]] = []
    last = len(messages) - 1
    for i, msg in enumerate(messages):
        content = msg.get("content")
        if not isinstance(content, list) or not content:
            out.append(msg)
            continue
        blocks = [
            {k: v for k, v in b.items() if k != "cache_control"}
            if isinstance(b, dict) and "cache_control" in b
            else b
            for b in content
        ]
        if cache and i == last and msg.get("role") == "user" and isinstance(blocks[-1], dict):
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
    :param max_iterations: most requests in one run (repairs, reminders and max_tokens retries included).
    :param max_output_tokens: ``max_tokens`` of every request (doubled after a ``max_tokens`` stop).
    :param max_repairs: how many rejected answers get another turn (1: one repair, then fail).
    :param request_timeout: seconds one request may take (the SDK default is 10 minutes; a hung
        connection must not hold a scheduled task that long); a timeout is retried like a 5xx.
    :param deadline: seconds the whole run may take (requests, retries and waits); ``None``: no bound
        beyond ``max_iterations`` x the retry policy.
    :param clock: monotonic clock (tests pass a fake one).
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
        deadline: float | None = DEFAULT_DEADLINE,
        max_output_tokens_cap: int = MAX_OUTPUT_TOKENS_CAP,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = without_sdk_retries(client)
        self.model = model
        self.prices = prices
        self.budget = budget or Budget()
        self.retry = retry or RetryPolicy()
        self.max_iterations = max_iterations
        self.max_output_tokens = max_output_tokens
        self.max_output_tokens_cap = max(max_output_tokens_cap, max_output_tokens)
        self.max_repairs = max_repairs
        self.request_timeout = request_timeout
        self.deadline = deadline
        self.rng = rng or random.Random()
        self.clock = clock
        self._deadline_at: float | None = None

    def request(
        self,
        system: str,
        tools: list[Tool],
        output_model: type[BaseModel],
        messages: list[dict[str, Any]],
        *,
        max_tokens: int | None = None,
        cache_messages: bool = True,
    ) -> dict[str, Any]:
        """The Messages API body of the next call (user-side text redacted once more)."""
        defs = [t.definition() for t in tools]
        defs.append(
            {
                "name": FINAL_TOOL,
                "description": (
                    "Submit your final answer. Call this exactly once, when you are done reading the "
                    "results. Use only numbers and ids that appear in the results."
                ),
                "input_schema": _shared_final_tool_schema(output_model),
                "strict": True,
            }
        )
        return {
            "model": self.model,
            "max_tokens": max_tokens or self.max_output_tokens,
            "system": [{"type": "text", "text": redact(system), "cache_control": dict(CACHE)}],
            "tools": defs,
            "messages": with_cache_breakpoints(redact_outgoing(messages), cache=cache_messages),
        }

    def remaining(self) -> float | None:
        """Seconds left before the run's deadline (``None``: no deadline)."""
        return None if self._deadline_at is None else self._deadline_at - self.clock()

    def call(self, body: dict[str, Any], usage: RunUsage) -> Any:
        """Check the budget and the deadline, send one request with retries, account its usage."""
        estimate = estimate_call(body, self.model, self.prices, max_tokens=int(body["max_tokens"]))
        self.budget.check(usage, estimate)
        left = self.remaining()
        if left is not None and left <= 0:
            raise RetriesExhausted(
                0, TimeoutError("no time left"), f"narration deadline ({self.deadline:g} s) reached"
            )
        stats = RetryStats()

        def send() -> Any:
            left = self.remaining()
            timeout = self.request_timeout if left is None else max(min(self.request_timeout, left), 0.001)
            return self.client.messages.create(**body, timeout=timeout)

        try:
            message = retry_call(
                send, self.retry, stats=stats, rng=self.rng, deadline=self._deadline_at, clock=self.clock
            )
        finally:
            usage.retries += stats.retries
        usage.add(TokenUsage.from_api(message.usage), self.prices)
        request_id = getattr(message, "_request_id", None)
        if isinstance(request_id, str) and request_id:
            usage.request_ids.append(request_id)
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
            system=system,
            messages=messages,
            tools=tools,
            output_model=output_model,
            validate=validate,
            usage=usage,
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
        max_tokens = self.max_output_tokens
        if self.deadline is not None and self._deadline_at is None:
            self._deadline_at = self.clock() + self.deadline

        def fail(reason: str) -> LoopOutcome[M]:
            return LoopOutcome(None, reason, usage, iterations, repairs, messages)

        try:
            while iterations < self.max_iterations:
                iterations += 1
                body = self.request(system, tools, output_model, messages, max_tokens=max_tokens)
                try:
                    message = self.call(body, usage)
                except BudgetExceededError as exc:
                    return fail(str(exc))
                except RetriesExhausted as exc:
                    return fail(f"api: {exc}")
                except anthropic.APIError as exc:
                    return fail(f"api: {describe_error(exc)} (not retryable)")
                if message.stop_reason == "max_tokens":
                    if max_tokens >= self.max_output_tokens_cap:
                        return fail(f"the answer did not fit in max_tokens={max_tokens} (the cap)")
                    max_tokens = min(max_tokens * 2, self.max_output_tokens_cap)
                    continue  # the cut turn is dropped, not answered: the same request with more room
                messages.append({"role": "assistant", "content": message_blocks(message)})
                if message.stop_reason == "refusal":
                    return fail("model refused to answer")
                if message.stop_reason == "pause_turn":
                    continue
                tool_uses = [b for b in message.content if getattr(b, "type", None) == "tool_use"]
                if not tool_uses:
                    messages.append(
                        {
                            "role": "user",
                            "content": [
                                {"type": "text", "text": f"Submit your answer with the `{FINAL_TOOL}` tool."}
                            ],
                        }
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
                                _tool_result(
                                    block.id,
                                    f"Your answer was rejected: {problem}. Call {FINAL_TOOL} again with a corrected answer.",
                                    error=True,
                                )
                            )
                    elif block.name in handlers:
                        try:
                            results.append(
                                _tool_result(block.id, handlers[block.name].handler(dict(block.input)))
                            )
                        except Exception as exc:  # a bad tool argument is the model's to fix
                            results.append(_tool_result(block.id, f"error: {exc}", error=True))
                    else:
                        results.append(
                            _tool_result(block.id, f"error: no tool named {block.name!r}", error=True)
                        )
                if accepted is not None:
                    return LoopOutcome(accepted, None, usage, iterations, repairs, messages)
                messages.append({"role": "user", "content": results})
            return fail(f"iteration cap reached ({self.max_iterations} requests) without an accepted answer")
        finally:
            self._deadline_at = None


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
