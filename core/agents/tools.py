"""Read-only tools over a task's facts: what the model may look at, and nothing else.

Every tool returns sanitised JSON (secrets redacted, raw rows dropped, sizes capped) wrapped in
``<untrusted_data>`` tags. The named views map to the conventional top-level keys of the facts the
domain code builds; a view is offered only when the persona allows it and the facts have its section.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dataeng_agents.core.llm.runner import Tool
from dataeng_agents.core.llm.safety import SafetyLimits, dump_for_model, read_page

# tool name -> (facts keys it shows, description)
SECTION_VIEWS: dict[str, tuple[tuple[str, ...], str]] = {
    "get_experiment_results": (
        ("results", "metrics", "experiment", "decision", "variants", "power", "design"),
        "The experiment's computed results: per-metric effects, intervals, p-values/probabilities, decision.",
    ),
    "get_health_checks": (
        ("health_checks", "health", "checks", "srm", "guardrails"),
        "The experiment's health checks (sample-ratio mismatch, guardrails, power, data quality).",
    ),
    "get_review_findings": (
        ("findings", "summary", "files", "unresolved"),
        "The pipeline review's findings (id, rule_id, severity, path, line, message, fix) and summary.",
    ),
    "get_rule_docs": (
        ("rules", "rule_docs"),
        "Documentation of the review rules that produced findings (why a rule exists, how to fix).",
    ),
    "get_pipeline_spec": (
        ("spec", "pipeline_spec", "pipeline", "architecture", "components"),
        "The pipeline spec or design (sources, sinks, schedule, architecture pattern, components).",
    ),
    "get_context": (("context",), "Context files the user attached to the question."),
}
GENERIC = ("list_results", "get_result", "get_section", "read_text")
#: every tool name a persona file may list
TOOL_NAMES: tuple[str, ...] = (*GENERIC, *SECTION_VIEWS)


def _find_id(obj: Any, wanted: str) -> Any:
    if isinstance(obj, dict):
        if obj.get("id") == wanted:
            return obj
        for v in obj.values():
            hit = _find_id(v, wanted)
            if hit is not None:
                return hit
    elif isinstance(obj, list):
        for v in obj:
            hit = _find_id(v, wanted)
            if hit is not None:
                return hit
    return None


def _ids(obj: Any, out: list[str], cap: int = 300) -> None:
    if len(out) >= cap:
        return
    if isinstance(obj, dict):
        v = obj.get("id")
        if isinstance(v, str):
            out.append(v)
        for x in obj.values():
            _ids(x, out, cap)
    elif isinstance(obj, list):
        for x in obj:
            _ids(x, out, cap)


def overview(facts: dict[str, Any]) -> dict[str, Any]:
    """Sections of the facts with their sizes and the ids they hold (what the first message shows)."""
    sections: dict[str, Any] = {}
    for key, value in facts.items():
        ids: list[str] = []
        _ids(value, ids)
        size = len(value) if isinstance(value, list | dict) else 1
        sections[key] = {"type": type(value).__name__, "size": size, "ids": ids}
    return sections


def fact_tools(
    facts: dict[str, Any],
    allowed: tuple[str, ...] | None,
    limits: SafetyLimits | None = None,
    *,
    sanitized: bool = False,
    pages: dict[str, str] | None = None,
) -> list[Tool]:
    """The tools a persona may use over ``facts`` (``allowed=None``: every tool; ``()``: none).

    ``sanitized=True``: ``facts`` already came out of :func:`~dataeng_agents.core.llm.safety.sanitize`
    (what the narrator passes), so results are only capped and wrapped, not sanitised again.
    ``pages`` holds the long texts cut in the views (filled by ``sanitize``, and here by tool
    results longer than ``max_result_chars``); ``read_text`` pages through them.
    """
    limits = limits or SafetyLimits()
    pages = {} if pages is None else pages

    def dump(obj: Any, source: str) -> str:
        return dump_for_model(obj, source, limits, sanitized=sanitized, pages=pages)

    def ok(name: str) -> bool:
        return allowed is None or name in allowed

    tools: list[Tool] = []
    empty: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": False}
    if ok("list_results"):
        tools.append(
            Tool(
                "list_results",
                "List the sections of the deterministic results, their sizes and the ids of their items.",
                empty,
                lambda _inp: dump(overview(facts), "tool:list_results"),
            )
        )
    if ok("get_result"):

        def get_result(inp: dict[str, Any]) -> str:
            wanted = str(inp.get("id", ""))
            hit = _find_id(facts, wanted)
            if hit is None:
                raise KeyError(f"no result with id {wanted!r}; call list_results for the ids")
            return dump(hit, f"tool:get_result:{wanted}")

        tools.append(
            Tool(
                "get_result",
                "Get one result item (a metric, a check, a finding, a component) by its id.",
                {
                    "type": "object",
                    "properties": {"id": {"type": "string"}},
                    "required": ["id"],
                    "additionalProperties": False,
                },
                get_result,
            )
        )
    if ok("get_section"):

        def get_section(inp: dict[str, Any]) -> str:
            name = str(inp.get("name", ""))
            if name not in facts:
                raise KeyError(f"no section {name!r}; sections: {', '.join(facts)}")
            value = facts[name]
            offset = int(inp.get("offset", 0) or 0)
            limit = min(int(inp.get("limit", 50) or 50), limits.max_list_items)
            if isinstance(value, list):
                value = {"offset": offset, "total": len(value), "items": value[offset : offset + limit]}
            return dump(value, f"tool:get_section:{name}")

        tools.append(
            Tool(
                "get_section",
                "Get a whole section of the results by name (lists are paged with offset/limit).",
                {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "offset": {"type": "integer", "minimum": 0},
                        "limit": {"type": "integer", "minimum": 1, "maximum": 200},
                    },
                    "required": ["name"],
                    "additionalProperties": False,
                },
                get_section,
            )
        )
    if ok("read_text"):

        def read_text(inp: dict[str, Any]) -> str:
            return read_page(
                pages,
                str(inp.get("ref", "")),
                int(inp.get("offset", 0) or 0),
                int(inp.get("limit", limits.max_page_chars) or limits.max_page_chars),
                limits,
            )

        tools.append(
            Tool(
                "read_text",
                (
                    "Read a long text that a result view cut (a context file, a docstring, a large result): "
                    f"pass the ref and offset its '[truncated ... read_text(...)]' notice names; at most "
                    f"{limits.max_page_chars} characters per call."
                ),
                {
                    "type": "object",
                    "properties": {
                        "ref": {"type": "string"},
                        "offset": {"type": "integer", "minimum": 0},
                        "limit": {"type": "integer", "minimum": 1, "maximum": limits.max_page_chars},
                    },
                    "required": ["ref"],
                    "additionalProperties": False,
                },
                read_text,
            )
        )
    for name, (keys, description) in SECTION_VIEWS.items():
        present = [k for k in keys if k in facts]
        if not present or not ok(name):
            continue
        tools.append(Tool(name, description, empty, _section_view(facts, present, name, dump)))
    return tools


def _section_view(
    facts: dict[str, Any], keys: list[str], name: str, dump: Callable[[Any, str], str]
) -> Callable[[dict[str, Any]], str]:
    def view(_inp: dict[str, Any]) -> str:
        return dump({k: facts[k] for k in keys}, f"tool:{name}")

    return view
