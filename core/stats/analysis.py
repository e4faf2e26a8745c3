"""``analyze``: the facade from the JSON contract to the vectorised engine and back."""

from __future__ import annotations

from collections import deque
from itertools import chain, repeat
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
from dataeng_agents.core._runtime import gc_paused
from dataeng_agents.core.stats import engine
from dataeng_agents.core.stats.models import (
    AnalysisInput,
    AnalysisOutput,
    AnalysisSettings,
    MetricResult,
    Risk,
    SrmResult,
    StatsInputError,
    parse_analysis_input,
)
from dataeng_agents.core.stats.multiple import adjust_pvalues
from dataeng_agents.core.stats.srm import srm_test
from pydantic import BaseModel

_M = TypeVar("_M", bound=BaseModel)


def srm_of(inp: AnalysisInput) -> SrmResult | None:
    """The sample-ratio-mismatch test of the variants' ``units``, or None when none are given."""
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


def _prepare(inp: AnalysisInput | dict[str, Any]) -> tuple[AnalysisInput, engine.CellArrays]:
    """Validate and gather: the light array path for plain JSON, pydantic for models and anything odd."""
    cells = None
    if isinstance(inp, dict) and type(inp.get("metrics", [])) is list:
        header = parse_analysis_input({k: v for k, v in inp.items() if k != "metrics"})
        cells = engine.collect_raw(inp, header)
        parsed = header
    if cells is None:
        parsed = parse_analysis_input(inp)
        cells = engine.collect(parsed)
    check_settings(parsed.settings)
    return parsed, cells


def check_settings(s: AnalysisSettings) -> None:
    """Checks across settings fields that the model cannot express per field."""
    if s.method == "sequential" and s.alternative != "two-sided" and s.alpha >= 0.5:
        raise StatsInputError("a one-sided sequential test needs alpha < 0.5", field="settings.alpha")


def analyze_arrays(inp: AnalysisInput | dict[str, Any]) -> engine.ArrayResults:
    """The engine's array results (NaN where absent), before adjusted p-values and output models."""
    # tens of thousands of acyclic objects: GC passes would re-traverse the caller's large input and
    # took longer than the statistics themselves
    with gc_paused():
        parsed, cells = _prepare(inp)
        cuped, ckind = engine.validate(cells)
        return engine.compute(cells, parsed.settings, cuped, ckind)


def _finite_or_none(arr: npt.NDArray[np.float64]) -> list[float | None]:
    """A flat list of Python floats, with None where the value is NaN or infinite."""
    flat = arr.ravel()
    finite = np.isfinite(flat)
    if not finite.any():
        return [None] * flat.size
    obj = flat.astype(object)
    obj[~finite] = None
    out: list[float | None] = obj.tolist()
    return out


_RESULT_FIELDS = set(MetricResult.model_fields)
_RISK_FIELDS = set(Risk.model_fields)


def _trusted_many(cls: type[_M], dicts: list[dict[str, Any]], fields: set[str]) -> list[_M]:
    """Models from values the engine computed (already the right types), skipping validation.

    This is what ``model_construct`` does, minus its per-call bookkeeping, with the four slot
    writes of each object driven by ``map`` (C-level iteration): building 20,000 results with
    validation costs ~10x the analysis itself, and a Python loop over them ~1.5x. Each object gets
    its own mutable fields-set (as ``model_construct`` gives it): pydantic adds to it on attribute
    assignment and ``model_copy(update=...)``.
    """
    count = len(dicts)
    objs = list(map(cls.__new__, repeat(cls, count)))
    set_ = object.__setattr__
    deque(map(set_, objs, repeat("__dict__", count), dicts), maxlen=0)
    field_sets = map(set.copy, repeat(fields, count))
    deque(map(set_, objs, repeat("__pydantic_fields_set__", count), field_sets), maxlen=0)
    deque(map(set_, objs, repeat("__pydantic_extra__", count), repeat(None, count)), maxlen=0)
    deque(map(set_, objs, repeat("__pydantic_private__", count), repeat(None, count)), maxlen=0)
    return objs


def _results(
    res: engine.ArrayResults,
    adjusted: npt.NDArray[np.float64],
    *,
    bayes: bool,
    adjusted_ci: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]] | None = None,
) -> list[MetricResult]:
    """Result models from the array grids, row-major (metric, then variant).

    Errored results are NaN in every array, so every column maps NaN/inf to None in one vectorised
    step; the few errored rows are then patched (their ``ci``/``risk`` are null, not a pair of nulls).
    """
    n_var = len(res.variant_names)
    count = res.estimate.size
    metrics = list(chain.from_iterable(map(repeat, res.metric_names, repeat(n_var))))
    variants = res.variant_names * len(res.metric_names)
    est, se, lo, hi, p, adj, ctw, rc, rv = (
        _finite_or_none(a)
        for a in (
            res.estimate,
            res.std_error,
            res.ci_lower,
            res.ci_upper,
            res.p_value,
            adjusted,
            res.chance_to_win,
            res.risk_control,
            res.risk_variant,
        )
    )
    ci: list[tuple[float | None, float | None] | None] = list(zip(lo, hi, strict=True))
    nan = np.full(res.estimate.shape, np.nan)
    cm, vm = (_finite_or_none(nan if a is None else a) for a in (res.control_mean, res.variant_mean))
    adj_ci: list[tuple[float | None, float | None] | None] = [None] * count
    if adjusted_ci is not None:
        alo, ahi = (_finite_or_none(a) for a in adjusted_ci)
        for i in np.flatnonzero(~np.isnan(adjusted_ci[0].ravel())).tolist():
            adj_ci[i] = (alo[i], ahi[i])
    risk: list[Risk | None]
    if bayes:
        risk_dicts = [{"control": c, "variant": v} for c, v in zip(rc, rv, strict=True)]
        risk = list(_trusted_many(Risk, risk_dicts, _RISK_FIELDS))
    else:
        risk = [None] * count
    error: list[str | None] = [None] * count
    codes = res.error.ravel()
    messages = engine.ERROR_MESSAGES
    for i in np.flatnonzero(codes).tolist():
        ci[i], risk[i], error[i] = None, None, messages[int(codes[i])]
    dicts = [
        {
            "metric": m,
            "variant": v,
            "estimate": e,
            "std_error": s,
            "ci": c,
            "p_value": pv,
            "adjusted_p_value": a,
            "adjusted_ci": ac,
            "chance_to_win": w,
            "risk": r,
            "control_mean": mc,
            "variant_mean": mv,
            "error": x,
        }
        for m, v, e, s, c, pv, a, ac, w, r, mc, mv, x in zip(
            metrics, variants, est, se, ci, p, adj, adj_ci, ctw, risk, cm, vm, error, strict=True
        )
    ]
    return _trusted_many(MetricResult, dicts, _RESULT_FIELDS)


def analyze(inp: AnalysisInput | dict[str, Any]) -> AnalysisOutput:
    """Analyse every metric x variant of an experiment against control (one vectorised pass).

    Raises :class:`StatsInputError` (naming metric, variant and field) for bad input; results whose
    statistic is undefined for valid data carry an ``error`` string and null numbers.
    """
    with gc_paused():
        return _analyze(inp)


def _analyze(inp: AnalysisInput | dict[str, Any]) -> AnalysisOutput:
    parsed, cells = _prepare(inp)
    srm = srm_of(parsed)
    cuped, ckind = engine.validate(cells)
    res = engine.compute(cells, parsed.settings, cuped, ckind)
    settings = parsed.settings
    adjusted = np.full(res.p_value.shape, np.nan)
    adjusted_ci = None
    if settings.correction != "none" and settings.method != "bayesian":
        adjusted = adjust_pvalues(res.p_value, settings.correction)
        adjusted_ci = engine.adjusted_interval(res, settings, adjusted)
    results = _results(res, adjusted, bayes=settings.method == "bayesian", adjusted_ci=adjusted_ci)
    return AnalysisOutput.model_construct(srm=srm, results=results)
