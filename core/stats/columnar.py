"""``analyze_columns``: the columnar API, sufficient statistics in as per-field grids, results out as grids.

A warehouse runner already holds columns (DuckDB's ``fetchnumpy()`` gives one numpy array per
selected column, a masked array where it holds NULLs), so this path skips the JSON shape of
:func:`~dataeng_agents.core.stats.analyze` entirely: each field is a ``(metrics, variants)`` grid
(or the same values flat, metric-major, as a query ordered by metric then variant returns them),
checked with the same vectorised rules and the same :class:`StatsInputError` messages, and the
results are :class:`ColumnarResults`, masked float grids of shape ``(metrics, treatment variants)``.
``ColumnarResults.to_output()`` gives the row-form :class:`AnalysisOutput` that ``analyze`` returns for
the same input, value for value.

Conventions of the columns: a masked (NULL) entry is an absent field, as a JSON ``null`` is; NaN or
an infinity is bad input (a typed error naming metric, variant and field), as in the JSON contract.
Results never hold NaN: a number that is undefined, infinite (a one-sided bound) or not produced by
the method (a p-value of a Bayesian test) is masked, with 0.0 under the mask.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt
from dataeng_agents.core._runtime import gc_paused
from dataeng_agents.core.stats import engine
from dataeng_agents.core.stats.models import (
    AnalysisOutput,
    AnalysisSettings,
    MetricResult,
    SrmResult,
    StatsInputError,
    parse_analysis_input,
)
from dataeng_agents.core.stats.multiple import adjust_pvalues

MaskedFloats: TypeAlias = "np.ma.MaskedArray[Any, np.dtype[np.float64]]"
FloatArray = npt.NDArray[np.float64]

_KIND_NAMES = "'proportion', 'mean', 'ratio' or 'quantile'"


@dataclass(frozen=True)
class ColumnarResults:
    """Results of :func:`analyze_columns` on the ``(metrics, treatment variants)`` grid.

    Every number grid is a masked float64 array: masked where the row form holds ``null`` (an errored
    result, an unbounded one-sided CI bound, a number the method does not produce); never NaN, 0.0
    under the mask. ``error`` holds the error string or ``None`` per result; ``error_code`` the
    engine's code (0 = none).
    """

    metric_names: list[str]
    variant_names: list[str]  # treatment variants, in input order (control left out)
    method: str
    estimate: MaskedFloats
    std_error: MaskedFloats
    ci_lower: MaskedFloats
    ci_upper: MaskedFloats
    p_value: MaskedFloats
    adjusted_p_value: MaskedFloats
    chance_to_win: MaskedFloats
    risk_control: MaskedFloats
    risk_variant: MaskedFloats
    error: npt.NDArray[np.object_]
    error_code: npt.NDArray[np.int64]
    # The interval at the adjusted verdict's level (excludes 0 iff adjusted_p_value < alpha); masked
    # without a correction, and where a bound is unbounded (one-sided).
    adjusted_ci_lower: MaskedFloats
    adjusted_ci_upper: MaskedFloats
    control_mean: MaskedFloats  # CUPED-adjusted / post-stratified means the effect compares
    variant_mean: MaskedFloats
    srm: SrmResult | None = None

    def to_results(self) -> list[MetricResult]:
        """The row-form results, metric-major (what ``analyze(...).results`` holds for this input)."""
        from dataeng_agents.core.stats.analysis import _results

        def nan_filled(col: MaskedFloats) -> FloatArray:
            out: FloatArray = col.filled(np.nan)
            return out

        arrays = engine.ArrayResults(
            metric_names=self.metric_names,
            variant_names=self.variant_names,
            estimate=nan_filled(self.estimate),
            std_error=nan_filled(self.std_error),
            ci_lower=nan_filled(self.ci_lower),
            ci_upper=nan_filled(self.ci_upper),
            p_value=nan_filled(self.p_value),
            chance_to_win=nan_filled(self.chance_to_win),
            risk_control=nan_filled(self.risk_control),
            risk_variant=nan_filled(self.risk_variant),
            error=self.error_code,
            control_mean=nan_filled(self.control_mean),
            variant_mean=nan_filled(self.variant_mean),
        )
        adjusted_ci = None
        present = ~np.ma.getmaskarray(self.adjusted_p_value)
        if present.any():
            # a masked bound of a present interval is an unbounded one
            adjusted_ci = (
                np.where(present, self.adjusted_ci_lower.filled(-np.inf), np.nan),
                np.where(present, self.adjusted_ci_upper.filled(np.inf), np.nan),
            )
        with gc_paused():
            return _results(
                arrays,
                nan_filled(self.adjusted_p_value),
                bayes=self.method == "bayesian",
                adjusted_ci=adjusted_ci,
            )

    def to_output(self) -> AnalysisOutput:
        """The row-form :class:`AnalysisOutput` (srm and results) of this analysis."""
        return AnalysisOutput.model_construct(srm=self.srm, results=self.to_results())


def _masked(values: FloatArray) -> MaskedFloats:
    """A masked grid of ``values``: NaN and infinities masked, 0.0 under the mask."""
    bad = ~np.isfinite(values)
    data = np.where(bad, 0.0, values) if bad.any() else values
    return np.ma.MaskedArray(data, mask=bad)


def _fully_masked(shape: tuple[int, ...]) -> MaskedFloats:
    return np.ma.MaskedArray(np.zeros(shape), mask=np.ones(shape, dtype=np.bool_))


def _names(values: Sequence[str], what: str) -> list[str]:
    if isinstance(values, str) or not isinstance(values, (Sequence, np.ndarray)):
        raise StatsInputError(f"give the {what} names as a list of strings", field=what)
    names = values.tolist() if isinstance(values, np.ndarray) else list(values)
    if set(map(type, names)) <= {str} and "" not in names:
        return names
    for i, name in enumerate(names):
        if not isinstance(name, str) or not name:
            message = (
                "String should have at least 1 character"
                if isinstance(name, str)
                else ("Input should be a valid string")
            )
            if what == "metrics":
                raise StatsInputError(message, metric=f"#{i}", field="name")
            raise StatsInputError(message, field=f"variants[{i}].name")
    return names


def _per_metric(value: Any, count: int, field: str) -> list[Any]:
    """A per-metric option given once for all metrics or as one value per metric."""
    if isinstance(value, (str, bool, int, float)) or value is None:
        return [value] * count
    out = np.asarray(value, dtype=object).ravel().tolist()
    if len(out) != count:
        raise StatsInputError(
            f"give one value for all metrics or one per metric ({count}), got {len(out)}", field=field
        )
    return out


def _first_bad(obj: npt.NDArray[np.object_]) -> tuple[int, int] | None:
    """Position of the first entry of an object grid that is neither a real number nor None."""
    for (m, v), x in np.ndenumerate(obj):
        if x is None:
            continue
        try:
            float(x)
        except (TypeError, ValueError):
            return m, v
    return None


def _grid(
    value: Any, shape: tuple[int, int], field: str, metrics: list[str], variants: list[str]
) -> FloatArray:
    """One field as a contiguous float64 ``(metrics, variants)`` grid, NaN where absent (masked/None)."""
    rows, cols = shape
    if (
        isinstance(value, list)
        and len(value) == rows
        and set(map(type, value)) == {list}
        and set(map(len, value)) == {cols}
    ):
        # Nested lists of plain numbers (what json.load or a row loop yields): one C-level pass.
        try:
            flat = np.fromiter(chain.from_iterable(value), dtype=np.float64, count=rows * cols)
        except (TypeError, ValueError):
            pass
        else:
            # fromiter reads None as NaN: anything non-finite takes the path that tells them apart
            if np.isfinite(flat).all():
                return flat.reshape(shape)
    mask: npt.NDArray[np.bool_] | None = None
    if isinstance(value, np.ma.MaskedArray):
        mask = np.ma.getmaskarray(value)
        value = value.data
    arr = np.asarray(value)
    if arr.dtype == object or arr.dtype.kind in "US":
        obj = np.asarray(arr, dtype=object)
        absent: npt.NDArray[np.bool_] = np.asarray(obj == None)  # noqa: E711  (elementwise)
        try:
            arr = np.where(absent, np.nan, obj).astype(np.float64)
        except (TypeError, ValueError):
            obj = obj.reshape(shape) if obj.size == rows * cols else obj
            at = _first_bad(obj) if obj.ndim == 2 else None
            if at is None:
                raise StatsInputError("must be numbers", field=field) from None
            raise StatsInputError(
                "Input should be a valid number", metric=metrics[at[0]], variant=variants[at[1]], field=field
            ) from None
        mask = absent if mask is None else (mask | absent)
    elif arr.dtype.kind not in "biuf":
        raise StatsInputError(f"must be numbers, got an array of {arr.dtype}", field=field)
    if arr.shape == (rows * cols,):
        arr = arr.reshape(shape)
        mask = mask.reshape(shape) if mask is not None else None
    if arr.shape != shape:
        raise StatsInputError(
            f"must have shape (metrics, variants) = {shape} or ({rows * cols},), got {arr.shape}", field=field
        )
    out: FloatArray = np.array(arr, dtype=np.float64)  # a copy: the caller's array is never written
    if mask is not None and mask.any():
        out[mask] = np.nan
        _checked_finite(np.where(mask, 0.0, out), field, metrics, variants)
        return out
    return _checked_finite(out, field, metrics, variants)


def _checked_finite(grid: FloatArray, field: str, metrics: list[str], variants: list[str]) -> FloatArray:
    bad = ~np.isfinite(grid)
    if bad.any():
        m, v = (int(x) for x in np.argwhere(bad)[0])
        raise StatsInputError(
            "Input should be a finite number", metric=metrics[m], variant=variants[v], field=field
        )
    return grid


def analyze_columns(
    stats: Mapping[str, Any],
    *,
    metrics: Sequence[str],
    variants: Sequence[str],
    kind: str | Sequence[str] = "mean",
    control: str = "control",
    settings: AnalysisSettings | Mapping[str, Any] | None = None,
    inverse: bool | Sequence[bool] | npt.NDArray[np.bool_] = False,
    quantile: float | Sequence[float | None] | FloatArray | None = None,
    units: Sequence[int] | npt.NDArray[np.integer[Any]] | None = None,
    weights: Sequence[float] | FloatArray | None = None,
    margin: float | Sequence[float | None] | FloatArray | None = None,
) -> ColumnarResults:
    """Analyse every metric x variant against control from per-field grids of sufficient statistics.

    ``stats`` maps field names of :class:`~dataeng_agents.core.stats.VariantStats` (``n``, ``sum``,
    ``sum_squares``, ...) to ``(len(metrics), len(variants))`` grids (numpy arrays, masked arrays,
    nested lists) or flat metric-major arrays of ``len(metrics) * len(variants)`` values. ``kind``,
    ``inverse`` and ``quantile`` (the level of quantile metrics) are one value for all metrics or one
    per metric. ``units``/``weights`` (one per variant) feed the sample-ratio-mismatch test.
    ``margin`` (one value or one per metric, None for none) makes a metric's test one-sided
    non-inferiority, as ``MetricInput.margin``.
    Post-stratified metrics are not supported here (use :func:`analyze` with ``strata``).

    Raises :class:`StatsInputError` naming metric, variant and field, with the messages of the JSON
    path for the same mistake.
    """
    with gc_paused():
        return _analyze_columns(
            stats, metrics, variants, kind, control, settings, inverse, quantile, units, weights, margin
        )


def _analyze_columns(
    stats: Mapping[str, Any],
    metrics: Sequence[str],
    variants: Sequence[str],
    kind: str | Sequence[str],
    control: str,
    settings: AnalysisSettings | Mapping[str, Any] | None,
    inverse: bool | Sequence[bool] | npt.NDArray[np.bool_],
    quantile: float | Sequence[float | None] | FloatArray | None,
    units: Sequence[int] | npt.NDArray[np.integer[Any]] | None,
    weights: Sequence[float] | FloatArray | None,
    margin: float | Sequence[float | None] | FloatArray | None = None,
) -> ColumnarResults:
    from dataeng_agents.core.stats.analysis import check_settings, srm_of

    if not isinstance(stats, Mapping):
        raise StatsInputError("give the statistics as a mapping of field name to grid", field="stats")
    metric_names = _names(metrics, "metrics")
    variant_names = _names(variants, "variants")
    unit_list = None if units is None else np.asarray(units).tolist()
    weight_list = None if weights is None else np.asarray(weights, dtype=np.float64).tolist()
    for given, what in ((unit_list, "units"), (weight_list, "weights")):
        if given is not None and len(given) != len(variant_names):
            raise StatsInputError(
                f"give one value per variant ({len(variant_names)}), got {len(given)}", field=what
            )
    header_variants: list[dict[str, Any]] = []
    for i, name in enumerate(variant_names):
        entry: dict[str, Any] = {"name": name}
        if unit_list is not None:
            entry["units"] = unit_list[i]
        if weight_list is not None:
            entry["weight"] = weight_list[i]
        header_variants.append(entry)
    if isinstance(settings, AnalysisSettings):
        settings = settings.model_dump()
    elif isinstance(settings, Mapping):
        settings = dict(settings)
    header = parse_analysis_input(
        {"control": control, "variants": header_variants, "settings": {} if settings is None else settings}
    )
    if len(set(variant_names)) != len(variant_names):
        dup = next(n for n in variant_names if variant_names.count(n) > 1)
        raise StatsInputError(f"variant {dup!r} is listed twice", field="variants")
    if control not in variant_names:
        raise StatsInputError(
            f"control {control!r} is not one of the variants {variant_names}", field="control"
        )
    if len(set(metric_names)) != len(metric_names):
        seen: set[str] = set()
        dup = next(n for n in metric_names if n in seen or seen.add(n))  # type: ignore[func-returns-value]
        raise StatsInputError("metric name is used twice", metric=dup, field="name")
    check_settings(header.settings)

    n_metrics = len(metric_names)
    codes, qlevel = _kinds_and_levels(kind, quantile, metric_names)
    if isinstance(inverse, (bool, np.bool_)):
        inverse_flags = np.full(n_metrics, bool(inverse))
    else:
        inverse_flags = np.asarray(inverse).ravel()
        if inverse_flags.dtype != np.bool_ or inverse_flags.size != n_metrics:
            raise StatsInputError(
                f"give one bool for all metrics or one per metric ({n_metrics})", field="inverse"
            )

    unknown = sorted(set(stats) - set(engine.FIELDS))
    if unknown:
        raise StatsInputError(
            f"is not a statistic (fields are {', '.join(engine.FIELDS)})", field=str(unknown[0])
        )
    if "n" not in stats:
        raise StatsInputError("Field required", field="n")
    shape = (n_metrics, len(variant_names))
    given = [f for f in engine.FIELDS if f in stats]
    # Only the given fields get a grid; every absent field reads the one all-NaN grid after them.
    values = np.empty((len(given) + 1, *shape))
    slots = dict.fromkeys(engine.FIELDS, len(given))
    for k, field in enumerate(given):
        values[k] = _grid(stats[field], shape, field, metric_names, variant_names)
        slots[field] = k
    values[len(given)] = np.nan
    absent_n = np.isnan(values[slots["n"]])
    if absent_n.any():
        m, v = (int(x) for x in np.argwhere(absent_n)[0])
        raise StatsInputError("Field required", metric=metric_names[m], variant=variant_names[v], field="n")
    cells = engine.CellArrays(
        values=values,
        cell_metric=np.arange(n_metrics, dtype=np.int64),
        cell_label=[""] * n_metrics,
        metric_names=metric_names,
        variant_names=variant_names,
        control=variant_names.index(control),
        kind=codes,
        inverse=inverse_flags,
        quantile_level=qlevel,
        slots=slots,
        margin=_margins(margin, metric_names),
    )
    srm = srm_of(header)
    cuped, ckind = engine.validate(cells)
    res = engine.compute(cells, header.settings, cuped, ckind)
    return columnar_results(res, header.settings, srm)


def _margins(
    margin: float | Sequence[float | None] | FloatArray | None, metric_names: list[str]
) -> FloatArray | None:
    if margin is None:
        return None
    values = _per_metric(margin, len(metric_names), "margin")
    out = np.full(len(metric_names), np.nan)
    for mi, value in enumerate(values):
        if value is None or (isinstance(value, float) and np.isnan(value)):
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
            raise StatsInputError("Input should be a valid number", metric=metric_names[mi], field="margin")
        if not 0 < float(value) < np.inf:
            raise StatsInputError("Input should be greater than 0", metric=metric_names[mi], field="margin")
        out[mi] = float(value)
    return out if np.isfinite(out).any() else None


def _kinds_and_levels(
    kind: str | Sequence[str],
    quantile: float | Sequence[float | None] | FloatArray | None,
    metric_names: list[str],
) -> tuple[npt.NDArray[np.int64], FloatArray]:
    """Kind codes and quantile levels per metric, checked (the loops run only for mixed kinds)."""
    n_metrics = len(metric_names)
    kinds = [kind] * n_metrics if isinstance(kind, str) else _per_metric(kind, n_metrics, "kind")
    code_of = {k: i for i, k in enumerate(engine.KINDS)}
    if isinstance(kind, str) and kind in code_of:
        codes = np.full(n_metrics, code_of[kind], dtype=np.int64)
    else:
        for mi, k in enumerate(kinds):
            if not isinstance(k, str) or k not in code_of:
                raise StatsInputError(f"Input should be {_KIND_NAMES}", metric=metric_names[mi], field="kind")
        codes = np.array([code_of[k] for k in kinds], dtype=np.int64)
    qlevel = np.full(n_metrics, np.nan)
    is_quantile = codes == code_of["quantile"]
    if is_quantile.any():
        levels = _per_metric(quantile, n_metrics, "quantile")
        for mi in np.flatnonzero(is_quantile).tolist():
            q = levels[mi]
            if q is None or (isinstance(q, float) and np.isnan(q)):
                raise StatsInputError(
                    "a quantile metric needs its level, e.g. 0.9", metric=metric_names[mi], field="quantile"
                )
            if not 0.0 < float(q) < 1.0:
                raise StatsInputError("must be between 0 and 1", metric=metric_names[mi], field="quantile")
            qlevel[mi] = float(q)
    return codes, qlevel


def columnar_results(
    res: engine.ArrayResults, settings: AnalysisSettings, srm: SrmResult | None
) -> ColumnarResults:
    """Masked result grids from the engine's NaN-marked arrays, with adjusted p-values and error strings."""
    shape = res.estimate.shape
    bayes = settings.method == "bayesian"
    if settings.correction != "none" and not bayes:
        adjusted_p = adjust_pvalues(res.p_value, settings.correction)
        adjusted = _masked(adjusted_p)
        adj_lo, adj_hi = (_masked(a) for a in engine.adjusted_interval(res, settings, adjusted_p))
    else:
        adjusted = _fully_masked(shape)
        adj_lo, adj_hi = _fully_masked(shape), _fully_masked(shape)
    nan = np.full(shape, np.nan)
    messages = np.array(
        [None, *(engine.ERROR_MESSAGES[c] for c in sorted(engine.ERROR_MESSAGES))], dtype=object
    )
    return ColumnarResults(
        metric_names=res.metric_names,
        variant_names=res.variant_names,
        method=settings.method,
        estimate=_masked(res.estimate),
        std_error=_masked(res.std_error),
        ci_lower=_masked(res.ci_lower),
        ci_upper=_masked(res.ci_upper),
        p_value=_fully_masked(shape) if bayes else _masked(res.p_value),
        adjusted_p_value=adjusted,
        chance_to_win=_masked(res.chance_to_win) if bayes else _fully_masked(shape),
        risk_control=_masked(res.risk_control) if bayes else _fully_masked(shape),
        risk_variant=_masked(res.risk_variant) if bayes else _fully_masked(shape),
        error=messages[res.error],
        error_code=res.error,
        adjusted_ci_lower=adj_lo,
        adjusted_ci_upper=adj_hi,
        control_mean=_masked(nan if res.control_mean is None else res.control_mean),
        variant_mean=_masked(nan if res.variant_mean is None else res.variant_mean),
        srm=srm,
    )
