"""A per-run budget (USD and/or tokens) checked *before* every call.

Before a request is sent, its worst case is estimated: the input tokens from the request's size
(``ceil(len(json) / CHARS_PER_TOKEN)``, a deliberately pessimistic 2.5 characters per token, all
billed at the dearer of the input and cache-write prices) plus ``max_tokens`` of output. If the
money already spent plus that worst case exceeds the budget, :class:`BudgetExceededError` is raised
and the request is never sent, so a run stops before it overspends, not after.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from dataeng_agents.core.errors import BudgetExceededError, InputError
from dataeng_agents.core.llm.pricing import PriceTable, RunUsage

CHARS_PER_TOKEN = 2.5


@dataclass(frozen=True)
class CallEstimate:
    """The most one request can cost."""

    input_tokens: int
    max_output_tokens: int
    usd: float

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.max_output_tokens


def estimate_call(
    request: dict[str, Any], model: str, prices: PriceTable, *, max_tokens: int, batch: bool = False
) -> CallEstimate:
    """Worst-case tokens and USD of sending ``request`` (the Messages API body)."""
    size = len(json.dumps(request, ensure_ascii=False, default=str))
    input_tokens = math.ceil(size / CHARS_PER_TOKEN)
    price, _ = prices.lookup(model)
    factor = prices.batch_discount if batch else 1.0
    usd = (input_tokens * price.max_input + max_tokens * price.output) * factor / 1_000_000
    return CallEstimate(input_tokens=input_tokens, max_output_tokens=max_tokens, usd=usd)


@dataclass(frozen=True)
class Budget:
    """Limits of one run. ``None`` means no limit on that axis."""

    max_usd: float | None = None
    max_tokens: int | None = None

    def __post_init__(self) -> None:
        if self.max_usd is not None and self.max_usd < 0:
            raise InputError("max_usd", "must be >= 0")
        if self.max_tokens is not None and self.max_tokens < 0:
            raise InputError("max_tokens", "must be >= 0")

    def check(self, spent: RunUsage, next_call: CallEstimate) -> None:
        """Raise :class:`BudgetExceededError` if ``next_call`` could take the run over a limit."""
        if self.max_usd is not None and spent.usd + next_call.usd > self.max_usd:
            raise BudgetExceededError(
                f"budget: the next call could cost up to ${next_call.usd:.4f}; with ${spent.usd:.4f} spent "
                f"that exceeds max_usd=${self.max_usd:.4f}"
            )
        if self.max_tokens is not None and spent.tokens.total_tokens + next_call.tokens > self.max_tokens:
            raise BudgetExceededError(
                f"budget: the next call could use up to {next_call.tokens} tokens; with "
                f"{spent.tokens.total_tokens} used that exceeds max_tokens={self.max_tokens}"
            )
