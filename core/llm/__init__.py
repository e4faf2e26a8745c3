"""The LLM plumbing under the agents: clients, the tool loop, prices, budget, retries, safety, batches.

Nothing here decides a number or a finding; it only moves safe, capped, redacted results to Claude
and validated prose back. See ``docs/agents.md``.
"""

from __future__ import annotations

from dataeng_agents.core.llm.budget import Budget, CallEstimate, estimate_call
from dataeng_agents.core.llm.client import build_async_client, build_client
from dataeng_agents.core.llm.grounding import GroundingResult, check_grounding, extract_numbers
from dataeng_agents.core.llm.ledger import BatchLedger, InMemoryLedger, JsonFileLedger, LedgerEntry
from dataeng_agents.core.llm.models import default_model, newest_sonnet, sdk_model_ids
from dataeng_agents.core.llm.pricing import ModelPrice, PriceTable, RunUsage, TokenUsage
from dataeng_agents.core.llm.retry import RetriesExhausted, RetryPolicy, aretry_call, retry_call
from dataeng_agents.core.llm.runner import LoopOutcome, Tool, ToolLoopRunner, final_tool_schema
from dataeng_agents.core.llm.safety import SafetyLimits, redact, sanitize, wrap_untrusted

__all__ = [
    "BatchLedger",
    "Budget",
    "CallEstimate",
    "GroundingResult",
    "InMemoryLedger",
    "JsonFileLedger",
    "LedgerEntry",
    "LoopOutcome",
    "ModelPrice",
    "PriceTable",
    "RetriesExhausted",
    "RetryPolicy",
    "RunUsage",
    "SafetyLimits",
    "TokenUsage",
    "Tool",
    "ToolLoopRunner",
    "aretry_call",
    "build_async_client",
    "build_client",
    "check_grounding",
    "default_model",
    "estimate_call",
    "extract_numbers",
    "final_tool_schema",
    "newest_sonnet",
    "redact",
    "retry_call",
    "sanitize",
    "sdk_model_ids",
    "wrap_untrusted",
]
