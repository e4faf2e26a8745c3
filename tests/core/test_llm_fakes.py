"""A fake Anthropic API behind the real ``anthropic`` SDK (``httpx2.MockTransport``), shared by the
agent/LLM tests, plus self-tests showing the SDK parses what it serves.

The installed SDK (anthropic 2.14) talks through ``httpx2``; ``httpx.Client`` is rejected by its
constructor, so the transport is ``httpx2.MockTransport``. Payloads follow the Messages API: ``msg_``
ids, ``type``/``role``/``model``, content blocks (text, thinking, tool_use), ``stop_reason`` and
``usage`` with cache-creation/cache-read tokens; batches are ``message_batch`` objects and results
are JSONL lines of ``{"custom_id", "result"}``.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anthropic
import httpx2

_ids = itertools.count(1)

Responder = Callable[[dict[str, Any]], "httpx2.Response | dict[str, Any] | BaseException"]


def text(t: str) -> dict[str, Any]:
    return {"type": "text", "text": t, "citations": None}


def thinking(t: str = "Reading the results first.") -> dict[str, Any]:
    return {"type": "thinking", "thinking": t, "signature": "EqQBCkYIBxgCKkBsig" + "A" * 40}


def tool_use(name: str, input: dict[str, Any], id: str | None = None) -> dict[str, Any]:
    return {"type": "tool_use", "id": id or f"toolu_01{next(_ids):020d}", "name": name, "input": input}


def message(
    content: list[dict[str, Any]],
    *,
    stop_reason: str | None = None,
    model: str = "claude-sonnet-5-5",
    input_tokens: int = 1200,
    output_tokens: int = 300,
    cache_creation: int = 0,
    cache_read: int = 0,
) -> dict[str, Any]:
    if stop_reason is None:
        stop_reason = "tool_use" if any(b["type"] == "tool_use" for b in content) else "end_turn"
    return {
        "id": f"msg_01{next(_ids):022d}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cache_creation_input_tokens": cache_creation,
            "cache_read_input_tokens": cache_read,
            "cache_creation": {"ephemeral_5m_input_tokens": cache_creation, "ephemeral_1h_input_tokens": 0},
            "service_tier": "standard",
        },
    }


def error(
    status: int, etype: str, msg: str = "error", headers: dict[str, str] | None = None
) -> httpx2.Response:
    body = {"type": "error", "error": {"type": etype, "message": msg}, "request_id": f"req_{next(_ids)}"}
    return httpx2.Response(status, json=body, headers={"request-id": f"req_{next(_ids)}", **(headers or {})})


def rate_limited(retry_after: float = 2) -> httpx2.Response:
    return error(
        429,
        "rate_limit_error",
        "Number of request tokens has exceeded your per-minute rate limit",
        {"retry-after": str(retry_after)},
    )


def overloaded() -> httpx2.Response:
    return error(529, "overloaded_error", "Overloaded")


def server_error() -> httpx2.Response:
    return error(500, "api_error", "Internal server error")


def malformed() -> httpx2.Response:
    return httpx2.Response(
        200,
        content=b'{"id": "msg_01", "type": "message", "content": [{"ty',
        headers={"content-type": "application/json"},
    )


class Timeout(Exception):
    """Marker: the fake raises ``httpx2.ReadTimeout`` for this call."""


@dataclass
class FakeAnthropic:
    """Routes SDK requests. ``messages`` answers ``POST /v1/messages`` (a responder or a queue)."""

    messages: Responder | list[Any] | None = None
    batch_polls_until_end: int = 1
    batch_result: Callable[[str, dict[str, Any]], dict[str, Any]] | None = None
    requests: list[httpx2.Request] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)
    batch_requests: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    polls: dict[str, int] = field(default_factory=dict)

    # --- transport -------------------------------------------------------------------------
    def handle(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        raw = request.content
        body = json.loads(raw) if raw else {}
        self.bodies.append(body)
        path = request.url.path
        if request.method == "POST" and path == "/v1/messages":
            return self._messages(body, request)
        if request.method == "POST" and path == "/v1/messages/batches":
            return self._create_batch(body)
        if request.method == "GET" and path.startswith("/v1/messages/batches/") and path.endswith("/results"):
            return self._results(path.split("/")[-2])
        if request.method == "GET" and path.startswith("/v1/messages/batches/"):
            return self._retrieve(path.split("/")[-1])
        return error(404, "not_found_error", f"no route {request.method} {path}")

    def _messages(self, body: dict[str, Any], request: httpx2.Request) -> httpx2.Response:
        if isinstance(self.messages, list):
            if not self.messages:
                raise AssertionError("the fake API ran out of scripted messages")
            out = self.messages.pop(0)
        elif self.messages is not None:
            out = self.messages(body)
        else:
            raise AssertionError("no messages responder configured")
        if isinstance(out, Timeout) or out is Timeout:
            raise httpx2.ReadTimeout("read timed out", request=request)
        if isinstance(out, BaseException):
            raise out
        if isinstance(out, httpx2.Response):
            return out
        return httpx2.Response(200, json=out, headers={"request-id": f"req_{next(_ids)}"})

    def _batch_obj(self, batch_id: str) -> dict[str, Any]:
        return self.batches[batch_id]

    def _create_batch(self, body: dict[str, Any]) -> httpx2.Response:
        batch_id = f"msgbatch_01{next(_ids):020d}"
        n = len(body["requests"])
        self.batch_requests[batch_id] = body["requests"]
        self.batches[batch_id] = {
            "id": batch_id,
            "type": "message_batch",
            "processing_status": "in_progress",
            "request_counts": {"processing": n, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0},
            "created_at": "2026-11-27T00:00:00Z",
            "expires_at": "2026-11-28T00:00:00Z",
            "ended_at": None,
            "archived_at": None,
            "cancel_initiated_at": None,
            "results_url": None,
        }
        self.polls[batch_id] = 0
        return httpx2.Response(200, json=self.batches[batch_id])

    def _retrieve(self, batch_id: str) -> httpx2.Response:
        if batch_id not in self.batches:
            return error(404, "not_found_error", "batch not found")
        self.polls[batch_id] += 1
        b = self.batches[batch_id]
        if b["processing_status"] != "ended" and self.polls[batch_id] >= self.batch_polls_until_end:
            results = [self._result_for(r) for r in self.batch_requests[batch_id]]
            counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
            for r in results:
                counts[r["result"]["type"]] += 1
            b.update(
                processing_status="ended",
                ended_at="2026-11-27T00:30:00Z",
                request_counts=counts,
                results_url=f"https://api.anthropic.com/v1/messages/batches/{batch_id}/results",
            )
            b["_results"] = results
        return httpx2.Response(200, json={k: v for k, v in b.items() if not k.startswith("_")})

    def _result_for(self, req: dict[str, Any]) -> dict[str, Any]:
        if self.batch_result is None:
            raise AssertionError("no batch_result configured")
        return {"custom_id": req["custom_id"], "result": self.batch_result(req["custom_id"], req["params"])}

    def _results(self, batch_id: str) -> httpx2.Response:
        lines = "\n".join(json.dumps(r) for r in self.batches[batch_id].get("_results", []))
        return httpx2.Response(200, content=lines.encode(), headers={"content-type": "application/binary"})

    # --- clients ----------------------------------------------------------------------------
    def client(self, **kwargs: Any) -> anthropic.Anthropic:
        """A real SDK client on this fake. SDK retries stay at their default (2) on purpose: the
        narrator must switch them off, which the request counts in the tests prove."""
        return anthropic.Anthropic(
            api_key="test", http_client=httpx2.Client(transport=httpx2.MockTransport(self.handle)), **kwargs
        )

    def async_client(self, **kwargs: Any) -> anthropic.AsyncAnthropic:
        return anthropic.AsyncAnthropic(
            api_key="test",
            http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(self.handle)),
            **kwargs,
        )

    # --- assertions helpers -----------------------------------------------------------------
    def message_bodies(self) -> list[dict[str, Any]]:
        return [b for r, b in zip(self.requests, self.bodies, strict=True) if r.url.path == "/v1/messages"]

    def count(self, method: str, path: str) -> int:
        return sum(1 for r in self.requests if r.method == method and r.url.path == path)

    def raw_bodies(self) -> str:
        return "\n".join(r.content.decode("utf-8", "replace") for r in self.requests)


def test_sdk_parses_the_fake_message_with_thinking_and_tool_use() -> None:
    fake = FakeAnthropic(messages=[message([thinking(), tool_use("list_results", {})], cache_creation=900)])
    msg = fake.client().messages.create(
        model="claude-sonnet-5-5", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
    )
    assert msg.stop_reason == "tool_use"
    assert [b.type for b in msg.content] == ["thinking", "tool_use"]
    assert msg.usage.cache_creation_input_tokens == 900


def test_sdk_batch_round_trip_on_the_fake() -> None:
    fake = FakeAnthropic(
        batch_result=lambda cid, params: {"type": "succeeded", "message": message([text("ok")])}
    )
    c = fake.client()
    b = c.messages.batches.create(
        requests=[{"custom_id": "a-1", "params": {"model": "m", "max_tokens": 5, "messages": []}}]
    )
    assert b.processing_status == "in_progress"
    assert c.messages.batches.retrieve(b.id).processing_status == "ended"
    rows = list(c.messages.batches.results(b.id))
    assert [r.custom_id for r in rows] == ["a-1"] and rows[0].result.type == "succeeded"
