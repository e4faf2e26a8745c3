"""Realistic Anthropic API payloads for the fake servers of the airflow and prefect suites.

Both suites drive the real ``anthropic`` SDK against a fake API (the airflow suite through an
``httpx2.MockTransport``, the prefect suite through a local HTTP server); the JSON they answer with
is built here: an assistant message that calls the answer tool with a minimal valid, number-free
input generated from the tool's JSON schema, and Message Batches objects.
"""

from __future__ import annotations

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


def assistant_message(
    params: dict[str, Any], msg_id: str, *, input_tokens: int = 1200, output_tokens: int = 350
) -> dict[str, Any]:
    """The assistant message the API would return for a ``messages.create`` payload.

    It calls the forced tool, else the answer tool (a model that has read enough facts answers),
    else the first tool; with no tools it answers in text.
    """
    tools = params.get("tools") or []
    choice = params.get("tool_choice") or {}
    wanted = choice.get("name") or "final_answer"
    tool = next((t for t in tools if t.get("name") == wanted), tools[0] if tools else None)
    if tool is not None:
        content: list[dict[str, Any]] = [
            {
                "type": "tool_use",
                "id": f"toolu_{msg_id}",
                "name": tool["name"],
                "input": example_from_schema(tool.get("input_schema", {"type": "object"})),
            }
        ]
    else:
        content = [{"type": "text", "text": "Claude wrote this answer."}]
    return {
        "id": f"msg_{msg_id}",
        "type": "message",
        "role": "assistant",
        "model": params.get("model", MODEL),
        "content": content,
        "stop_reason": "tool_use" if tool is not None else "end_turn",
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
