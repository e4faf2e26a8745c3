"""The two example requests of ``docs/pipeline.md`` and what the fake Messages API drafts for them.

Shared by the entry-point tests of the request -> design path (CLI, core facade, Airflow operator,
Prefect task): each suite runs the same request through its entry point and through the CLI, and
compares the designs.
"""

from __future__ import annotations

import itertools
from typing import Any

KAFKA_BQ = "Design a real-time streaming pipeline from Kafka to BigQuery"
PG_SNOW = "Build a daily batch ELT pipeline from PostgreSQL orders to Snowflake with dbt"

#: A spec Claude could draft for ``KAFKA_BQ`` (valid against the spec schema, unlike the generic
#: schema-example answer of the fakes, which the drafter rejects twice and replaces by the extractor's).
CLAUDE_SPEC: dict[str, Any] = {
    "name": "clicks_to_bq",
    "sources": [
        {
            "name": "clicks",
            "kind": "event_stream",
            "volume_gb_per_day": 30,
            "replayable": True,
            "event_time_field": "ts",
        }
    ],
    "sinks": [{"name": "fct_clicks", "kind": "warehouse", "partition_by": ["date(ts)"]}],
    "freshness_slo_minutes": 2,
    "warehouse": {"product": "bigquery"},
    "cloud": "gcp",
}
CLAUDE_ANSWER: dict[str, Any] = {
    "spec": CLAUDE_SPEC,
    "assumptions": ["Kafka keeps 7 days of clicks", "30 GB/day of clicks"],
    "open_questions": ["Which key deduplicates a click?"],
}

_ids = itertools.count(1)


def is_draft_request(params: dict[str, Any]) -> bool:
    """True for the drafter's request: its ``final_answer`` tool takes a ``spec``."""
    return any(
        t.get("name") == "final_answer" and "spec" in t.get("input_schema", {}).get("properties", {})
        for t in params.get("tools") or []
    )


def draft_message(params: dict[str, Any], answer: dict[str, Any] = CLAUDE_ANSWER) -> dict[str, Any]:
    """The Messages API answer calling ``final_answer`` with ``answer``."""
    n = next(_ids)
    return {
        "id": f"msg_draft{n:04d}",
        "type": "message",
        "role": "assistant",
        "model": params.get("model", "claude-sonnet-4-5"),
        "content": [
            {"type": "tool_use", "id": f"toolu_draft{n:04d}", "name": "final_answer", "input": answer}
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 2400,
            "output_tokens": 400,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }
