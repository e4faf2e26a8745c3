"""Realistic Anthropic API payloads for the fake servers of the airflow and prefect suites.

Both suites drive the real ``anthropic`` SDK against a fake API (the airflow suite through an
``httpx2.MockTransport``, the prefect suite through a local HTTP server); the JSON they answer with
is built here, and Message Batches objects.

The assistant behaves like a diligent model: on its first turn it calls every argument-free reading
tool, then pages through every text a view cut (``read_text``), so everything the tools can reveal
really reaches a request body (what the secret tests need); then it calls the answer tool with a
minimal valid, number-free input generated from the tool's JSON schema, whose recommendation states
the computed decision and whose priorities cover every error-level finding it read (what the
consistency check demands of a real answer).
"""

from __future__ import annotations

import re
from typing import Any

MODEL = "claude-sonnet-4-5"


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].split("/")[-1]
        schema = root.get("$defs", root.get("definitions", {}))[name]
    return schema


def example_from_schema(
    schema: dict[str, Any], root: dict[str, Any] | None = None, name: str = "value"
) -> Any:
    """A minimal valid instance of a (pydantic-generated) JSON schema: prose strings, empty lists."""
    root = root or schema
    schema = _resolve(schema, root)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [s for s in schema[key] if _resolve(s, root).get("type") != "null"]
            return example_from_schema(options[0], root, name) if options else None
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        return {
            prop: example_from_schema(props[prop], root, prop) for prop in schema.get("required", list(props))
        }
    if kind == "array":
        return [example_from_schema(schema["items"], root, name) for _ in range(schema.get("minItems", 0))]
    if kind == "string":
        return f"Claude wrote this {name.replace('_', ' ')}."
    if kind == "integer":
        return 0
    if kind == "number":
        return 0.0
    if kind == "boolean":
        return False
    return None


_NOTICE = re.compile(r"read_text\(ref='([^']+)', offset=(\d+)\)")
_NEXT = re.compile(r"\[characters \d+-\d+ of \d+; next offset (\d+)\]")
_VERDICT = re.compile(r'"verdict":\s*"(ship|do not ship|keep running|investigate)"')
_ROLLOUT = re.compile(r'"decision":\s*"(advance|hold|roll back)"')
_ERROR_FINDING = re.compile(r'"id":\s*"([^"]+)",\s*"rule_id":\s*"[^"]*",\s*"severity":\s*"error"')
RECOMMENDATION = {
    "ship": "Ship it, as the computed decision says.",
    "do not ship": "Do not ship it, as the computed decision says.",
    "keep running": "Keep the experiment running, as the computed decision says.",
    "investigate": "Investigate the health checks before deciding.",
    "advance": "Advance to the next stage.",
    "hold": "Hold at this stage.",
    "roll back": "Roll back now.",
}


def _user_texts(params: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for msg in params.get("messages", []):
        if msg.get("role") != "user" or not isinstance(msg.get("content"), list):
            continue
        for block in msg["content"]:
            if block.get("type") == "text":
                out.append(block["text"])
            elif block.get("type") == "tool_result" and isinstance(block.get("content"), str):
                out.append(block["content"])
    return out


def _asked(params: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        b
        for msg in params.get("messages", [])
        if msg.get("role") == "assistant" and isinstance(msg.get("content"), list)
        for b in msg["content"]
        if b.get("type") == "tool_use"
    ]


def _reads(params: dict[str, Any], tools: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """The tool calls still worth making: every argument-free view once, then every unread page."""
    names = {t["name"] for t in tools}
    asked = _asked(params)
    if not asked:
        return [
            (t["name"], {})
            for t in tools
            if t["name"] != "final_answer" and not t.get("input_schema", {}).get("required")
        ]
    if "read_text" not in names:
        return []
    done = {
        (b["input"].get("ref"), int(b["input"].get("offset", 0))) for b in asked if b["name"] == "read_text"
    }
    wanted: list[tuple[str, dict[str, Any]]] = []
    last = params["messages"][-1]
    results = [b for b in last.get("content", []) if isinstance(b, dict) and b.get("type") == "tool_result"]
    by_id = {b["id"]: b for b in asked}
    for result in results:
        content = result.get("content")
        text = content if isinstance(content, str) else ""
        for ref, offset in _NOTICE.findall(text):
            wanted.append((ref, {"ref": ref, "offset": int(offset)}))
        call = by_id.get(result.get("tool_use_id"), {})
        nxt = _NEXT.search(text)
        if call.get("name") == "read_text" and nxt:
            ref = call["input"]["ref"]
            wanted.append((ref, {"ref": ref, "offset": int(nxt.group(1))}))
    return [("read_text", inp) for ref, inp in wanted if (ref, inp["offset"]) not in done]


def _consistent(answer: Any, params: dict[str, Any]) -> Any:
    if not isinstance(answer, dict):
        return answer
    text = "\n".join(_user_texts(params))
    verdict = _VERDICT.search(text) or _ROLLOUT.search(text)
    if "recommendation" in answer and verdict:
        answer["recommendation"] = RECOMMENDATION[verdict.group(1)]
    if "priorities" in answer:
        errors = list(dict.fromkeys(_ERROR_FINDING.findall(text)))
        if errors:
            answer["priorities"] = [
                {
                    "finding_ids": errors,
                    "why": "Claude wrote why these come first.",
                    "how_to_fix": "Claude wrote how to fix them.",
                }
            ]
    return answer


def assistant_message(
    params: dict[str, Any], msg_id: str, *, input_tokens: int = 1200, output_tokens: int = 350
) -> dict[str, Any]:
    """The assistant message the API would return for a ``messages.create`` payload.

    It calls the forced tool if any; else it reads (every argument-free view, then every unread
    page of a cut text); else it calls the answer tool (consistent with what it read); with no
    tools it answers in text.
    """
    tools = params.get("tools") or []
    choice = params.get("tool_choice") or {}
    reads = [] if choice.get("name") else _reads(params, tools)
    content: list[dict[str, Any]]
    if reads:
        content = [
            {"type": "tool_use", "id": f"toolu_{msg_id}_{i}", "name": name, "input": inp}
            for i, (name, inp) in enumerate(reads)
        ]
    else:
        wanted = choice.get("name") or "final_answer"
        tool = next((t for t in tools if t.get("name") == wanted), tools[0] if tools else None)
        if tool is not None:
            answer = example_from_schema(tool.get("input_schema", {"type": "object"}))
            if tool["name"] == "final_answer":
                answer = _consistent(answer, params)
            content = [{"type": "tool_use", "id": f"toolu_{msg_id}", "name": tool["name"], "input": answer}]
        else:
            content = [{"type": "text", "text": "Claude wrote this answer."}]
    has_tool = any(b["type"] == "tool_use" for b in content)
    return {
        "id": f"msg_{msg_id}",
        "type": "message",
        "role": "assistant",
        "model": params.get("model", MODEL),
        "content": content,
        "stop_reason": "tool_use" if has_tool else "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }


def batch_object(batch_id: str, requests: int, *, ended: bool, results_url: str) -> dict[str, Any]:
    """A ``message_batch`` object: ``in_progress`` with every request processing, or ``ended``."""
    return {
        "id": batch_id,
        "type": "message_batch",
        "processing_status": "ended" if ended else "in_progress",
        "request_counts": {
            "processing": 0 if ended else requests,
            "succeeded": requests if ended else 0,
            "errored": 0,
            "canceled": 0,
            "expired": 0,
        },
        "created_at": "2026-11-27T00:00:00Z",
        "expires_at": "2026-11-28T00:00:00Z",
        "ended_at": "2026-11-27T00:05:00Z" if ended else None,
        "archived_at": None,
        "cancel_initiated_at": None,
        "results_url": results_url if ended else None,
    }
