"""``analyze``: the facade from the JSON contract to the vectorised engine and back."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from dataeng_agents.core.stats import engine
from dataeng_agents.core.stats.models import (
    AnalysisInput,
    AnalysisOutput,
    MetricResult,
    Risk,
    SrmResult,
    StatsInputError,
    parse_analysis_input,
)
from dataeng_agents.core.stats.multiple import adjust_pvalues
from dataeng_agents.core.stats.srm import srm_test


def _srm(inp: AnalysisInput) -> SrmResult | None:
    given = [v.units is not None for v in inp.variants]
    if not any(given):
        return None
    if not all(given):
        i = given.index(False)
        raise StatsInputError("give `units` for every variant or for none", field=f"variants[{i}].units")
    weighted = [v.weight is not None for v in inp.variants]
    if any(weighted) and not all(weighted):
        i = weighted.index(False)
        raise StatsInputError("give `weight` for every variant or for none", field=f"variants[{i}].weight")
    units = [float(v.units or 0) for v in inp.variants]
    weights = [float(v.weight or 0.0) for v in inp.variants] if all(weighted) else None
    return srm_test(units, weights, threshold=inp.settings.srm_threshold)


def analyze_arrays(inp: AnalysisInput) -> engine.ArrayResults:
    """The engine's array results (NaN where absent), with adjusted p-values not yet applied."""
    s = inp.settings
    if s.method == "sequential" and s.alternative != "two-sided" and s.alpha >= 0.5:
        raise StatsInputError("a one-sided sequential test needs alpha < 0.5", field="settings.alpha")
    cells = engine.collect(inp)
    cuped, ckind = engine.validate(cells)
    return engine.compute(cells, s, cuped, ckind)


def _num(x: float) -> float | None:
    return None if math.isnan(x) or math.isinf(x) else x


def analyze(inp: AnalysisInput | dict[str, Any]) -> AnalysisOutput:
    """Analyse every metric x variant of an experiment against control (one vectorised pass).

    Raises :class:`StatsInputError` (naming metric, variant and field) for bad input; results whose
    statistic is undefined for valid data carry an ``error`` string and null numbers.
    """
    parsed = parse_analysis_input(inp)
    srm = _srm(parsed)
    res = analyze_arrays(parsed)
    adjusted = np.full(res.p_value.shape, np.nan)
    if parsed.settings.correction != "none" and parsed.settings.method != "bayesian":
        adjusted = adjust_pvalues(res.p_value, parsed.settings.correction)
    results: list[MetricResult] = []
    bayes = parsed.settings.method == "bayesian"
    est, se, lo, hi = res.estimate.tolist(), res.std_error.tolist(), res.ci_lower.tolist(), res.ci_upper.tolist()
    pv, adj, ctw = res.p_value.tolist(), adjusted.tolist(), res.chance_to_win.tolist()
    rc, rv, err = res.risk_control.tolist(), res.risk_variant.tolist(), res.error.tolist()
    construct = MetricResult.model_construct
    for i, metric in enumerate(res.metric_names):
        for j, variant in enumerate(res.variant_names):
            code = err[i][j]
            if code:
                results.append(construct(metric=metric, variant=variant, estimate=None, std_error=None, ci=None,
                                         p_value=None, adjusted_p_value=None, chance_to_win=None, risk=None,
                                         error=engine.ERROR_MESSAGES[code]))
                continue
            results.append(construct(
                metric=metric,
                variant=variant,
                estimate=est[i][j],
                std_error=se[i][j],
                ci=(_num(lo[i][j]), _num(hi[i][j])),
                p_value=None if bayes else pv[i][j],
                adjusted_p_value=_num(adj[i][j]),
                chance_to_win=ctw[i][j] if bayes else None,
                risk=Risk.model_construct(control=rc[i][j], variant=rv[i][j]) if bayes else None,
                error=None,
            ))
    return AnalysisOutput.model_construct(srm=srm, results=results)
