"""Always-valid confidence sequences over sufficient statistics, vectorised with numpy.

The asymptotic confidence sequence of Waudby-Smith et al. ("Time-uniform central limit theory and
asymptotic confidence sequences", 2023, eq. 9) with the tuning parameter ``N*`` that GrowthBook's
gbstats and :mod:`dataeng_agents.core.stats` use: the interval is tightest around ``n = N*`` units
and holds simultaneously at every sample size, so a rollout may be checked every hour without the
false-alarm rate growing with the number of looks.

Every function takes arrays of any (broadcastable) shape, so one call evaluates all guardrails of
all simulated rollouts at once.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]


def sequential_rho(alpha: ArrayLike, tuning: ArrayLike) -> FloatArray:
    """The mixing parameter ρ for tuning parameter ``N*`` (Waudby-Smith et al., eq. 161)."""
    a = np.asarray(alpha, dtype=np.float64)
    t = np.asarray(tuning, dtype=np.float64)
    log_a = np.log(a)
    return np.asarray(np.sqrt((-2.0 * log_a + np.log(-2.0 * log_a + 1.0)) / t), dtype=np.float64)


def cs_halfwidth(variance: ArrayLike, n: ArrayLike, alpha: ArrayLike, tuning: ArrayLike) -> FloatArray:
    """Half-width of the two-sided (1-α) confidence sequence of an estimator.

    :param variance: variance of the estimator (``SE²``), not the per-unit variance.
    :param n: units behind the estimator (both arms together).
    :param alpha: error level of the whole sequence.
    :param tuning: ``N*``, where the sequence is tightest.
    :returns: the half-width; ``nan`` where ``n < 1`` or the variance is not positive.
    """
    v = np.asarray(variance, dtype=np.float64)
    nn = np.asarray(n, dtype=np.float64)
    rho = sequential_rho(alpha, tuning)
    with np.errstate(divide="ignore", invalid="ignore"):
        s2 = v * nn
        n_rho2_p1 = nn * rho**2 + 1.0
        width = np.sqrt(s2) * np.sqrt(
            2.0
            * n_rho2_p1
            * np.log(np.sqrt(n_rho2_p1) / np.asarray(alpha, dtype=np.float64))
            / (nn * rho) ** 2
        )
    ok = (nn >= 1) & (v > 0) & np.isfinite(v)
    return np.asarray(np.where(ok, width, np.nan), dtype=np.float64)


def always_valid_p_value(
    estimate: ArrayLike,
    variance: ArrayLike,
    n: ArrayLike,
    alpha: ArrayLike,
    tuning: ArrayLike,
    null: ArrayLike = 0.0,
) -> FloatArray:
    """Two-sided always-valid p-value against ``null`` (the inverse of the mixture e-value, capped at 1)."""
    est = np.asarray(estimate, dtype=np.float64)
    v = np.asarray(variance, dtype=np.float64)
    nn = np.asarray(n, dtype=np.float64)
    rho = sequential_rho(alpha, tuning)
    with np.errstate(divide="ignore", invalid="ignore"):
        z2 = (est - np.asarray(null, dtype=np.float64)) ** 2 / v
        n_rho2_p1 = nn * rho**2 + 1.0
        log_e = rho**2 * z2 * nn / (2.0 * n_rho2_p1) - 0.5 * np.log(n_rho2_p1)
        p = np.exp(-np.maximum(log_e, 0.0))
    ok = (nn >= 1) & (v > 0) & np.isfinite(v) & np.isfinite(est)
    return np.asarray(np.where(ok, np.minimum(p, 1.0), np.nan), dtype=np.float64)
