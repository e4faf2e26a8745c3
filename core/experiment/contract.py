"""The experiment's sufficient statistics as input of the statistics engine (``dataeng stats analyze``).

Every number of a report comes from :func:`dataeng_agents.core.stats.analyze` over these contracts;
this module only maps the config and the warehouse's sums onto the engine's input, and reads the
per-unit moments (baseline mean and variance) the power calculations need.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from dataeng_agents.core.experiment.aggregates import GroupStats
from dataeng_agents.core.experiment.config import ExperimentConfig, Metric


def finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def metric_stats(metric: Metric, s: dict[str, float]) -> dict[str, float]:
    keys = ["n", "sum"]
    if metric.kind != "proportion":
        keys.append("sum_squares")
    if metric.kind == "ratio":
        keys += ["denominator_sum", "denominator_sum_squares", "sum_product_denominator"]
    if metric.cuped is not None:
        keys += ["covariate_sum", "covariate_sum_squares", "sum_product_covariate"]
        if metric.kind == "ratio":
            keys.append("denominator_sum_product_covariate")
    return {k: s[k] for k in keys}


def metric_mean(metric: Metric, s: dict[str, float] | None) -> float | None:
    if not s:
        return None
    if metric.kind == "ratio":
        return s["sum"] / s["denominator_sum"] if s["denominator_sum"] else None
    return s["sum"] / s["n"] if s["n"] else None


def engine_settings(
    config: ExperimentConfig, *, correction: str | None = None, method: str | None = None
) -> dict[str, Any]:
    a = config.analysis
    return {
        "method": method or a.method,
        "difference": a.difference,
        "alpha": a.alpha,
        "alternative": "two-sided",
        "sequential_tuning": a.sequential_tuning,
        "prior": a.prior.model_dump() if a.prior is not None and (method or a.method) == "bayesian" else None,
        "correction": correction if correction is not None else a.correction,
        "srm_threshold": a.srm_threshold,
        "min_conversions": a.min_conversions,
        "min_units": a.min_units,
    }


def stats_contract(
    config: ExperimentConfig,
    group: GroupStats,
    entries: Sequence[tuple[str, Metric]],
    settings: dict[str, Any],
    *,
    with_units: bool,
) -> dict[str, Any]:
    """The ``dataeng stats analyze`` input for ``entries`` (result name, metric) over one group."""
    variants: list[dict[str, Any]] = []
    for v in config.variants:
        item: dict[str, Any] = {"name": v.name}
        if with_units:
            item["units"] = group.units.get(v.name, 0)
            item["weight"] = v.weight
        variants.append(item)
    metrics = []
    for name, metric in entries:
        entry: dict[str, Any] = {
            "name": name,
            "kind": metric.kind,
            "inverse": metric.inverse,
            "stats": {
                v.name: metric_stats(metric, group.stats[v.name][metric.name]) for v in config.variants
            },
        }
        if metric.margin is not None:
            entry["margin"] = metric.margin
        metrics.append(entry)
    return {"control": config.control_name, "variants": variants, "settings": settings, "metrics": metrics}


def analyze_tolerant(contract: dict[str, Any]) -> dict[str, Any]:
    """Analyse, dropping metrics the engine rejects (used for days and dimension levels, where a
    thin slice can hold impossible-looking sums): returns ``{name: MetricResult}`` by variant key."""
    from dataeng_agents.core.stats import StatsInputError, analyze

    metrics = list(contract["metrics"])
    for _ in range(len(metrics) + 1):
        if not metrics:
            return {}
        try:
            out = analyze({**contract, "metrics": metrics})
        except StatsInputError as exc:
            bad = exc.metric
            kept = [m for m in metrics if m["name"] != bad]
            if bad is None or len(kept) == len(metrics):
                return {}
            metrics = kept
            continue
        return {f"{r.metric}\x00{r.variant}": r for r in out.results}
    return {}


def is_significant(config: ExperimentConfig, r: Any) -> bool:
    if r.error is not None:
        return False
    if config.analysis.method == "bayesian":
        ctw = r.chance_to_win
        return ctw is not None and (
            ctw >= config.decision.min_chance_to_win or ctw <= 1.0 - config.decision.min_chance_to_win
        )
    p = r.adjusted_p_value if r.adjusted_p_value is not None else r.p_value
    return p is not None and p < config.analysis.alpha


def baseline_moments(m: Metric, s: dict[str, float]) -> tuple[float, float] | None:
    """Per-unit mean and variance of a metric from its sums (ratio: delta-method variance of the ratio)."""
    n = s["n"]
    if n < 2:
        return None
    if m.kind == "proportion":
        p = s["sum"] / n
        return (p, p * (1 - p)) if 0 < p < 1 else None
    var_y = (s["sum_squares"] - s["sum"] ** 2 / n) / (n - 1)
    if m.kind == "mean":
        mean = s["sum"] / n
        return (mean, var_y) if var_y > 0 and mean != 0 else None
    mean_d = s["denominator_sum"] / n
    if mean_d == 0:
        return None
    ratio = s["sum"] / s["denominator_sum"]
    var_d = (s["denominator_sum_squares"] - s["denominator_sum"] ** 2 / n) / (n - 1)
    cov = (s["sum_product_denominator"] - s["sum"] * s["denominator_sum"] / n) / (n - 1)
    var = (var_y - 2 * ratio * cov + ratio**2 * var_d) / mean_d**2
    return (ratio, var) if var > 0 and ratio != 0 else None
