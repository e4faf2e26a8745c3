"""Token prices and per-run usage accounting.

Prices come from a packaged YAML table (``prices.yaml`` next to this module) that a deployment can
replace with ``DATAENG_LLM_PRICES=/path/prices.yaml`` or :meth:`PriceTable.load`. Costs are computed
from the ``usage`` block the API returns (input, output, cache-write and cache-read tokens), so the
reported USD is what the tokens cost at list price, not an estimate.
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from dataeng_agents.core.errors import ConfigError

PRICES_ENV = "DATAENG_LLM_PRICES"
_PACKAGED = Path(__file__).with_name("prices.yaml")
_DATED = re.compile(r"-\d{8}$")
_FIELDS = ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read")


@dataclass(frozen=True)
class ModelPrice:
    """USD per million tokens for one model."""

    input: float
    output: float
    cache_write_5m: float
    cache_write_1h: float
    cache_read: float

    @property
    def max_input(self) -> float:
        """The dearest way an input token of ours can be billed (we only write 5-minute cache entries)."""
        return max(self.input, self.cache_write_5m)


@dataclass(frozen=True)
class PriceTable:
    """A price per model id or pattern, a batch discount, and a conservative price for unknown models."""

    models: tuple[tuple[str, ModelPrice], ...]
    unknown_model: ModelPrice
    batch_discount: float = 0.5
    source: str = "packaged"

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> PriceTable:
        """Read a table: ``path``, else ``$DATAENG_LLM_PRICES``, else the packaged ``prices.yaml``."""
        chosen = Path(path) if path is not None else Path(os.environ.get(PRICES_ENV) or _PACKAGED)
        try:
            raw = yaml.safe_load(chosen.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError("prices", f"cannot read price table {chosen}: {exc}") from exc
        return cls.from_dict(raw, source=str(chosen))

    @classmethod
    def from_dict(cls, raw: Any, *, source: str = "dict") -> PriceTable:
        if not isinstance(raw, dict) or not isinstance(raw.get("models"), dict):
            raise ConfigError("prices.models", "a price table needs a `models` mapping")
        models = tuple((str(k), _price(v, f"prices.models.{k}")) for k, v in raw["models"].items())
        unknown = _price(raw.get("unknown_model") or max_price(m for _, m in models), "prices.unknown_model")
        discount = raw.get("batch_discount", 0.5)
        if not isinstance(discount, int | float) or not 0 < discount <= 1:
            raise ConfigError("prices.batch_discount", "must be a number in (0, 1]")
        return cls(models=models, unknown_model=unknown, batch_discount=float(discount), source=source)

    def lookup(self, model: str) -> tuple[ModelPrice, bool]:
        """``(price, known)``; an unknown model gets ``unknown_model`` and ``known=False``."""
        for candidate in (model, _DATED.sub("", model)):
            for pattern, price in self.models:
                if pattern == candidate or fnmatch.fnmatchcase(candidate, pattern):
                    return price, True
        return self.unknown_model, False

    def cost_usd(self, usage: TokenUsage, model: str, *, batch: bool = False) -> float:
        price, _ = self.lookup(model)
        factor = self.batch_discount if batch else 1.0
        # The API reports 5m/1h writes together unless the breakdown is given; bill writes at 5m then.
        return (
            (
                usage.input_tokens * price.input
                + usage.output_tokens * price.output
                + usage.cache_write_5m_tokens * price.cache_write_5m
                + usage.cache_write_1h_tokens * price.cache_write_1h
                + usage.cache_read_tokens * price.cache_read
            )
            * factor
            / 1_000_000
        )


def max_price(prices: Any) -> ModelPrice:
    items = list(prices)
    return ModelPrice(*(max(getattr(p, f) for p in items) for f in _FIELDS))


def _price(raw: Any, where: str) -> ModelPrice:
    if isinstance(raw, ModelPrice):
        return raw
    if not isinstance(raw, dict):
        raise ConfigError(where, "must be a mapping of input/output/cache_write_5m/cache_write_1h/cache_read")
    values: list[float] = []
    for name in _FIELDS:
        v = raw.get(name)
        if name == "cache_write_1h" and v is None:
            v = raw.get("cache_write_5m")
        if not isinstance(v, int | float) or v < 0:
            raise ConfigError(f"{where}.{name}", "must be a non-negative number (USD per million tokens)")
        values.append(float(v))
    return ModelPrice(*values)


@dataclass
class TokenUsage:
    """Tokens of one or more calls. ``cache_write_*`` split what the API calls cache creation."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0

    @property
    def cache_write_tokens(self) -> int:
        return self.cache_write_5m_tokens + self.cache_write_1h_tokens

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens + self.cache_read_tokens + self.cache_write_tokens

    @classmethod
    def from_api(cls, usage: Any) -> TokenUsage:
        """From an ``anthropic.types.Usage`` (or its dict form)."""

        def get(name: str) -> Any:
            return usage.get(name) if isinstance(usage, dict) else getattr(usage, name, None)

        created = int(get("cache_creation_input_tokens") or 0)
        breakdown = get("cache_creation")
        w1h = 0
        if isinstance(breakdown, dict):
            w1h = int(breakdown.get("ephemeral_1h_input_tokens") or 0)
        elif breakdown is not None:
            w1h = int(getattr(breakdown, "ephemeral_1h_input_tokens", 0) or 0)
        return cls(
            input_tokens=int(get("input_tokens") or 0),
            output_tokens=int(get("output_tokens") or 0),
            cache_read_tokens=int(get("cache_read_input_tokens") or 0),
            cache_write_5m_tokens=max(created - w1h, 0),
            cache_write_1h_tokens=w1h,
        )


@dataclass
class RunUsage:
    """Usage of one narration run: tokens, USD, calls and retries."""

    model: str
    tokens: TokenUsage = field(default_factory=TokenUsage)
    usd: float = 0.0
    calls: int = 0
    retries: int = 0
    price_known: bool = True
    #: the ``request-id`` of every answered request (for support tickets and the provenance)
    request_ids: list[str] = field(default_factory=list)

    def add(self, usage: TokenUsage, prices: PriceTable, *, batch: bool = False) -> float:
        cost = prices.cost_usd(usage, self.model, batch=batch)
        t = self.tokens
        t.input_tokens += usage.input_tokens
        t.output_tokens += usage.output_tokens
        t.cache_read_tokens += usage.cache_read_tokens
        t.cache_write_5m_tokens += usage.cache_write_5m_tokens
        t.cache_write_1h_tokens += usage.cache_write_1h_tokens
        self.usd += cost
        self.calls += 1
        self.price_known = self.price_known and prices.lookup(self.model)[1]
        return cost

    def as_dict(self) -> dict[str, float]:
        """The ``NarrationProvenance.usage`` mapping (all numbers, so it fits ``dict[str, float]``)."""
        t = self.tokens
        out = {
            "input_tokens": float(t.input_tokens),
            "output_tokens": float(t.output_tokens),
            "cache_read_tokens": float(t.cache_read_tokens),
            "cache_write_tokens": float(t.cache_write_tokens),
            "usd": round(self.usd, 6),
            "calls": float(self.calls),
            "retries": float(self.retries),
        }
        if not self.price_known:
            out["price_estimated"] = 1.0  # the model is not in the price table: priced at its dearest row
        return out
