"""Power analysis.

Two families:

- the spotify-confidence convention (``sample_size_per_variant``, ``mde_at_n``, ``power_at_n``):
  baseline variance on both arms, a two-sided fixed-horizon z test on the absolute difference, alpha
  Bonferroni-split over the ``variants - 1`` comparisons with control;
- plans sized for the analysis actually run (``analysis_power``, ``analysis_sample_size``,
  ``analysis_mde``, ``plan_analysis``): the same scale (log ratio for a relative lift), the same
  test (the sequential confidence sequence's always-valid p-value, or the fixed-horizon test), the
  Holm correction over the ``tests`` comparisons of the family, and the minimum counts below which
  a result is "not enough data". Power is the probability that the analysis at the planned size
  declares the effect (its Holm-adjusted p-value below alpha): Holm's first step, alpha/tests, i.e.
  the power when this is the family's only real effect (more real effects only raise it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Required, TypedDict, Unpack

from dataeng_agents.core.stats.models import (
    AnalysisPlan,
    PowerInput,
    PowerOutput,
    StatsInputError,
    parse_power_input,
)
from scipy import special


def _baseline_variance(kind: str, baseline_mean: float, baseline_variance: float | None) -> float:
    if kind == "proportion":
        if not 0 < baseline_mean < 1:
            raise StatsInputError(
                "a proportion's baseline must lie strictly between 0 and 1", field="baseline_mean"
            )
        return baseline_mean * (1.0 - baseline_mean)
    if baseline_variance is None or not baseline_variance > 0 or not math.isfinite(baseline_variance):
        raise StatsInputError("a mean metric needs a positive baseline_variance", field="baseline_variance")
    return baseline_variance


def _z_alpha(alpha: float, variants: int) -> float:
    return float(special.ndtri(1.0 - alpha / (2.0 * max(variants - 1, 1))))


def _absolute_mde(mde: float, mde_type: str, baseline_mean: float) -> float:
    if mde_type == "relative":
        if baseline_mean == 0:
            raise StatsInputError("a relative MDE needs a non-zero baseline_mean", field="baseline_mean")
        return abs(mde * baseline_mean)
    return abs(mde)


class FixedHorizonOptions(TypedDict, total=False):
    """Keyword arguments shared by :func:`sample_size_per_variant`, :func:`mde_at_n` and
    :func:`power_at_n` (the spotify-confidence convention; defaults in brackets).

    ``kind`` and ``baseline_mean`` are required; ``mde_type`` ["absolute"]; ``baseline_variance``
    [None: a mean metric needs one]; ``alpha`` [0.05], Bonferroni-split over the ``variants`` [2]
    minus one comparisons with control.
    """

    kind: Required[Literal["proportion", "mean"]]
    baseline_mean: Required[float]
    mde_type: Literal["absolute", "relative"]
    baseline_variance: float | None
    alpha: float
    variants: int


@dataclass(frozen=True)
class _FixedHorizon:
    """:class:`FixedHorizonOptions` with their defaults (an unknown or missing argument is a TypeError)."""

    kind: Literal["proportion", "mean"]
    baseline_mean: float
    mde_type: Literal["absolute", "relative"] = "absolute"
    baseline_variance: float | None = None
    alpha: float = 0.05
    variants: int = 2

    def variance(self) -> float:
        return _baseline_variance(self.kind, self.baseline_mean, self.baseline_variance)

    def z_alpha(self) -> float:
        return _z_alpha(self.alpha, self.variants)


def _at_least_two(n_per_variant: int) -> None:
    if n_per_variant < 2:
        raise StatsInputError("must be at least 2", field="n_per_variant")


def sample_size_per_variant(*, mde: float, power: float = 0.8, **options: Unpack[FixedHorizonOptions]) -> int:
    """Units per variant to detect ``mde`` with probability ``power`` at level ``alpha`` (two-sided)."""
    f = _FixedHorizon(**options)
    var = f.variance()
    delta = _absolute_mde(mde, f.mde_type, f.baseline_mean)
    if not delta > 0:
        raise StatsInputError("must be positive", field="mde")
    z = f.z_alpha() + float(special.ndtri(power))
    n = z * z * 2.0 * var / (delta * delta)
    # ceil, but not of float noise: 4999.9999999999 is 5000 units, 5000.0000000001 is too.
    return max(2, math.ceil(n - 1e-9 * n))


def mde_at_n(*, n_per_variant: int, power: float = 0.8, **options: Unpack[FixedHorizonOptions]) -> float:
    """Smallest effect detectable with ``n_per_variant`` units per arm (in ``mde_type`` units)."""
    f = _FixedHorizon(**options)
    var = f.variance()
    _at_least_two(n_per_variant)
    z = f.z_alpha() + float(special.ndtri(power))
    delta = z * math.sqrt(2.0 * var / n_per_variant)
    if f.mde_type == "relative":
        if f.baseline_mean == 0:
            raise StatsInputError("a relative MDE needs a non-zero baseline_mean", field="baseline_mean")
        return delta / abs(f.baseline_mean)
    return delta


def power_at_n(*, mde: float, n_per_variant: int, **options: Unpack[FixedHorizonOptions]) -> float:
    """Probability that a two-sided z test at ``alpha`` rejects when the true effect is ``mde``."""
    f = _FixedHorizon(**options)
    var = f.variance()
    _at_least_two(n_per_variant)
    delta = _absolute_mde(mde, f.mde_type, f.baseline_mean)
    shift = delta / math.sqrt(2.0 * var / n_per_variant)
    za = f.z_alpha()
    return float(special.ndtr(shift - za) + special.ndtr(-shift - za))


PlanMethod = Literal["frequentist", "sequential"]
_MAX_N = 10**13  # units per variant beyond any experiment: the target is unreachable


def _effect_scale(
    kind: str,
    baseline_mean: float,
    baseline_variance: float | None,
    mde: float,
    mde_type: str,
    difference: str,
) -> tuple[float, float, float]:
    """(effect on the analysis scale, per-unit variance of the estimator x n, treatment mean).

    The treatment mean is ``baseline + mde`` (absolute) or ``baseline x (1 + mde)`` (relative); a
    proportion's treatment variance is its own p(1-p), a mean metric keeps the baseline variance.
    """
    var_c = _baseline_variance(kind, baseline_mean, baseline_variance)
    if not mde > 0 or not math.isfinite(mde):
        raise StatsInputError("must be positive", field="mde")
    shift = _absolute_mde(mde, mde_type, baseline_mean)
    mean_t = baseline_mean + shift
    if kind == "proportion":
        if not mean_t < 1:
            raise StatsInputError("baseline + mde must stay below 1 for a proportion", field="mde")
        var_t = mean_t * (1.0 - mean_t)
    else:
        var_t = var_c
    if difference == "relative":
        if not (baseline_mean > 0 and mean_t > 0):
            # the analysis falls back to the linear delta method for non-positive means
            return (
                shift / abs(baseline_mean),
                var_t / baseline_mean**2 + var_c * mean_t**2 / baseline_mean**4,
                mean_t,
            )
        return math.log(mean_t / baseline_mean), var_c / baseline_mean**2 + var_t / mean_t**2, mean_t
    return shift, var_c + var_t, mean_t


def critical_z(
    method: PlanMethod, *, alpha: float, tests: int, total_units: float, sequential_tuning: float = 5000.0
) -> float:
    """|z| above which the analysis' Holm-first-step p-value is below ``alpha / tests``.

    Sequential: the always-valid p-value ``1/e`` of the Gaussian-mixture confidence sequence (with
    rho tuned for ``alpha`` and ``sequential_tuning``, as the analysis computes it) is below
    ``alpha/tests`` when ``z^2 > 2(N rho^2 + 1)/(N rho^2) * (ln(tests/alpha) + ln(N rho^2 + 1)/2)``,
    N the units of both arms of the comparison.
    """
    if method == "frequentist":
        return float(special.ndtri(1.0 - alpha / (2.0 * tests)))
    from dataeng_agents.core.stats.engine import sequential_rho

    rho = sequential_rho(alpha, sequential_tuning)
    nr2 = total_units * rho * rho
    return math.sqrt(2.0 * (nr2 + 1.0) / nr2 * (math.log(tests / alpha) + 0.5 * math.log(nr2 + 1.0)))


class AnalysisOptions(TypedDict, total=False):
    """Keyword arguments shared by :func:`analysis_power`, :func:`analysis_sample_size`,
    :func:`analysis_mde` and :func:`plan_analysis`: the metric's baseline and the analysis that will
    be run (defaults in brackets).

    ``kind`` and ``baseline_mean`` are required; ``mde_type`` ["relative"]; ``baseline_variance``
    [None: a mean metric needs one]; ``method`` ["sequential"]; ``difference`` ["relative"];
    ``alpha`` [0.05]; ``tests``, the size of the Holm family (metrics x treatment arms corrected
    together) [1]; ``sequential_tuning`` [5000.0]; ``min_units`` / ``min_conversions``, the expected
    counts below which the result is "not enough data" [0].
    """

    kind: Required[Literal["proportion", "mean"]]
    baseline_mean: Required[float]
    mde_type: Literal["absolute", "relative"]
    baseline_variance: float | None
    method: PlanMethod
    difference: Literal["relative", "absolute"]
    alpha: float
    tests: int
    sequential_tuning: float
    min_conversions: int
    min_units: int


@dataclass(frozen=True)
class _Analysis:
    """:class:`AnalysisOptions` with their defaults (an unknown or missing argument is a TypeError)."""

    kind: Literal["proportion", "mean"]
    baseline_mean: float
    mde_type: Literal["absolute", "relative"] = "relative"
    baseline_variance: float | None = None
    method: PlanMethod = "sequential"
    difference: Literal["relative", "absolute"] = "relative"
    alpha: float = 0.05
    tests: int = 1
    sequential_tuning: float = 5000.0
    min_conversions: int = 0
    min_units: int = 0

    def critical_z(self, n_per_variant: int) -> float:
        return critical_z(
            self.method,
            alpha=self.alpha,
            tests=self.tests,
            total_units=2.0 * n_per_variant,
            sequential_tuning=self.sequential_tuning,
        )


def analysis_power(*, mde: float, n_per_variant: int, **options: Unpack[AnalysisOptions]) -> float:
    """Probability that the analysis at ``n_per_variant`` units per arm declares an effect of ``mde``.

    ``options``: see :class:`AnalysisOptions`. Zero when the expected counts are below ``min_units`` /
    ``min_conversions`` (the result would be "not enough data").
    """
    a = _Analysis(**options)
    _at_least_two(n_per_variant)
    if a.tests < 1:
        raise StatsInputError("must be at least 1", field="tests")
    effect, s2, mean_t = _effect_scale(
        a.kind, a.baseline_mean, a.baseline_variance, mde, a.mde_type, a.difference
    )
    if n_per_variant < a.min_units:
        return 0.0
    if a.kind == "proportion":
        rarest = min(a.baseline_mean, 1.0 - a.baseline_mean, mean_t, 1.0 - mean_t)
        if rarest * n_per_variant < a.min_conversions:
            return 0.0
    shift = effect / math.sqrt(s2 / n_per_variant)
    z = a.critical_z(n_per_variant)
    return float(special.ndtr(shift - z) + special.ndtr(-shift - z))


def analysis_sample_size(*, mde: float, power: float = 0.8, **options: Unpack[AnalysisOptions]) -> int:
    """Smallest units per variant at which :func:`analysis_power` reaches ``power``."""
    _Analysis(**options)
    if not 0 < power < 1:
        raise StatsInputError("must be between 0 and 1", field="power")

    def reaches(n: int) -> bool:
        return analysis_power(mde=mde, n_per_variant=n, **options) >= power

    lo, hi = 1, 2
    while not reaches(hi):
        lo, hi = hi, hi * 2
        if hi > _MAX_N:
            raise StatsInputError("no experiment size reaches this power for this mde", field="mde")
    while hi - lo > 1:  # reaches(hi) and not reaches(lo) (or lo = 1)
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if reaches(mid) else (mid, hi)
    return max(hi, 2)


def analysis_mde(
    *, n_per_variant: int, power: float = 0.8, **options: Unpack[AnalysisOptions]
) -> float | None:
    """Smallest positive effect (in ``mde_type`` units) the analysis detects with ``power`` at this size.

    ``None`` when no effect is detectable (below the minimum counts, or a proportion that would have
    to pass 1).
    """
    a = _Analysis(**options)

    def power_at(mde: float) -> float:
        try:
            return analysis_power(mde=mde, n_per_variant=n_per_variant, **options)
        except StatsInputError:
            return -1.0  # beyond the proportion's range

    _baseline_variance(a.kind, a.baseline_mean, a.baseline_variance)
    scale = abs(a.baseline_mean) if a.mde_type == "absolute" and a.baseline_mean != 0 else 1.0
    hi = 1e-6 * scale
    while power_at(hi) < power:
        hi *= 2.0
        if hi > 1e6 * scale or power_at(hi) < 0:
            return None
    lo = 0.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if power_at(mid) >= power else (mid, hi)
        if hi - lo <= 1e-9 * hi:
            break
    return hi


def plan_analysis(
    *,
    mde: float,
    power: float = 0.8,
    variants: int = 2,
    daily_units: float | None = None,
    **options: Unpack[AnalysisOptions],
) -> AnalysisPlan:
    """Units per variant, total units, achieved power and (given ``daily_units``, all arms) days to run.

    ``options``: see :class:`AnalysisOptions`.
    """
    a = _Analysis(**options)
    n = analysis_sample_size(mde=mde, power=power, **options)
    achieved = analysis_power(mde=mde, n_per_variant=n, **options)
    days = None
    if daily_units is not None:
        if not daily_units > 0:
            raise StatsInputError("must be positive", field="daily_units")
        days = n * variants / daily_units
    return AnalysisPlan(
        per_variant=n,
        total=n * variants,
        power=achieved,
        method=a.method,
        tests=a.tests,
        alpha_per_test=a.alpha / a.tests,
        critical_z=a.critical_z(n),
        days=days,
    )


def power(inp: PowerInput | dict[str, object]) -> PowerOutput:
    """``dataeng stats power``: sample size for an MDE, or the MDE (and power) at a given size.

    Without ``method`` the spotify-confidence convention; with ``method`` the plan sized for that
    analysis (see :func:`analysis_power`).
    """
    p = parse_power_input(inp)
    if p.method is not None:
        return _power_for_analysis(p)
    options: FixedHorizonOptions = {
        "kind": p.kind,
        "baseline_mean": p.baseline_mean,
        "baseline_variance": p.baseline_variance,
        "mde_type": p.mde_type,
        "alpha": p.alpha,
        "variants": p.variants,
    }
    if p.mde is not None and p.n_per_variant is None:
        n = sample_size_per_variant(mde=p.mde, power=p.power, **options)
        return PowerOutput(per_variant=n, total=n * p.variants)
    if p.n_per_variant is None:
        raise StatsInputError("give `mde` (for a sample size) or `n_per_variant` (for the MDE)", field="mde")
    n = p.n_per_variant
    reachable = mde_at_n(n_per_variant=n, power=p.power, **options)
    achieved = None
    if p.mde is not None:
        achieved = power_at_n(mde=p.mde, n_per_variant=n, **options)
    return PowerOutput(per_variant=n, total=n * p.variants, mde=reachable, power=achieved)


def _power_for_analysis(p: PowerInput) -> PowerOutput:
    assert p.method is not None
    tests = p.tests if p.tests is not None else p.variants - 1
    options: AnalysisOptions = {
        "kind": p.kind,
        "baseline_mean": p.baseline_mean,
        "baseline_variance": p.baseline_variance,
        "mde_type": p.mde_type,
        "method": p.method,
        "difference": p.difference,
        "alpha": p.alpha,
        "tests": tests,
        "sequential_tuning": p.sequential_tuning,
        "min_conversions": p.min_conversions,
    }
    if p.mde is not None and p.n_per_variant is None:
        n = analysis_sample_size(mde=p.mde, power=p.power, **options)
        achieved = analysis_power(mde=p.mde, n_per_variant=n, **options)
        return PowerOutput(per_variant=n, total=n * p.variants, power=achieved, method=p.method, tests=tests)
    if p.n_per_variant is None:
        raise StatsInputError("give `mde` (for a sample size) or `n_per_variant` (for the MDE)", field="mde")
    n = p.n_per_variant
    reachable = analysis_mde(n_per_variant=n, power=p.power, **options)
    at_mde: float | None = None
    if p.mde is not None:
        at_mde = analysis_power(mde=p.mde, n_per_variant=n, **options)
    return PowerOutput(
        per_variant=n, total=n * p.variants, mde=reachable, power=at_mde, method=p.method, tests=tests
    )
