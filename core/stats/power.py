"""Power analysis with the spotify-confidence convention: baseline variance on both arms, two-sided z.

With more than two variants the significance level is Bonferroni-split over the ``variants - 1``
comparisons against control.
"""

from __future__ import annotations

import math
from typing import Literal

from dataeng_agents.core.stats.models import PowerInput, PowerOutput, StatsInputError, parse_power_input
from scipy import special


def _baseline_variance(kind: str, baseline_mean: float, baseline_variance: float | None) -> float:
    if kind == "proportion":
        if not 0 < baseline_mean < 1:
            raise StatsInputError("a proportion's baseline must lie strictly between 0 and 1", field="baseline_mean")
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


def sample_size_per_variant(
    *,
    kind: Literal["proportion", "mean"],
    baseline_mean: float,
    mde: float,
    mde_type: Literal["absolute", "relative"] = "absolute",
    baseline_variance: float | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    variants: int = 2,
) -> int:
    """Units per variant to detect ``mde`` with probability ``power`` at level ``alpha`` (two-sided)."""
    var = _baseline_variance(kind, baseline_mean, baseline_variance)
    delta = _absolute_mde(mde, mde_type, baseline_mean)
    if not delta > 0:
        raise StatsInputError("must be positive", field="mde")
    z = _z_alpha(alpha, variants) + float(special.ndtri(power))
    n = z * z * 2.0 * var / (delta * delta)
    # ceil, but not of float noise: 4999.9999999999 is 5000 units, 5000.0000000001 is too.
    return max(2, math.ceil(n - 1e-9 * n))


def mde_at_n(
    *,
    kind: Literal["proportion", "mean"],
    baseline_mean: float,
    n_per_variant: int,
    mde_type: Literal["absolute", "relative"] = "absolute",
    baseline_variance: float | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    variants: int = 2,
) -> float:
    """Smallest effect detectable with ``n_per_variant`` units per arm (in ``mde_type`` units)."""
    var = _baseline_variance(kind, baseline_mean, baseline_variance)
    if n_per_variant < 2:
        raise StatsInputError("must be at least 2", field="n_per_variant")
    z = _z_alpha(alpha, variants) + float(special.ndtri(power))
    delta = z * math.sqrt(2.0 * var / n_per_variant)
    if mde_type == "relative":
        if baseline_mean == 0:
            raise StatsInputError("a relative MDE needs a non-zero baseline_mean", field="baseline_mean")
        return delta / abs(baseline_mean)
    return delta


def power_at_n(
    *,
    kind: Literal["proportion", "mean"],
    baseline_mean: float,
    mde: float,
    n_per_variant: int,
    mde_type: Literal["absolute", "relative"] = "absolute",
    baseline_variance: float | None = None,
    alpha: float = 0.05,
    variants: int = 2,
) -> float:
    """Probability that a two-sided z test at ``alpha`` rejects when the true effect is ``mde``."""
    var = _baseline_variance(kind, baseline_mean, baseline_variance)
    if n_per_variant < 2:
        raise StatsInputError("must be at least 2", field="n_per_variant")
    delta = _absolute_mde(mde, mde_type, baseline_mean)
    shift = delta / math.sqrt(2.0 * var / n_per_variant)
    za = _z_alpha(alpha, variants)
    return float(special.ndtr(shift - za) + special.ndtr(-shift - za))


def power(inp: PowerInput | dict[str, object]) -> PowerOutput:
    """``dataeng stats power``: sample size for an MDE, or the MDE (and power) at a given size."""
    p = parse_power_input(inp)
    common = {"kind": p.kind, "baseline_mean": p.baseline_mean, "baseline_variance": p.baseline_variance,
              "alpha": p.alpha, "variants": p.variants}
    if p.mde is not None and p.n_per_variant is None:
        n = sample_size_per_variant(mde=p.mde, mde_type=p.mde_type, power=p.power, **common)  # type: ignore[arg-type]
        return PowerOutput(per_variant=n, total=n * p.variants)
    if p.n_per_variant is None:
        raise StatsInputError("give `mde` (for a sample size) or `n_per_variant` (for the MDE)", field="mde")
    n = p.n_per_variant
    reachable = mde_at_n(n_per_variant=n, mde_type=p.mde_type, power=p.power, **common)  # type: ignore[arg-type]
    achieved = None
    if p.mde is not None:
        achieved = power_at_n(mde=p.mde, n_per_variant=n, mde_type=p.mde_type, **common)  # type: ignore[arg-type]
    return PowerOutput(per_variant=n, total=n * p.variants, mde=reachable, power=achieved)
