"""Sample ratio mismatch: Pearson's chi-squared test of observed units against configured weights."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from dataeng_agents.core.stats.models import SrmResult, StatsInputError
from scipy import special


def srm_test(
    units: Sequence[float], weights: Sequence[float] | None = None, threshold: float = 0.001
) -> SrmResult:
    """Pearson chi-squared goodness of fit of ``units`` to ``weights`` (equal weights when ``None``).

    ``mismatch`` is true when the p-value is below ``threshold``.
    """
    obs = np.asarray(units, dtype=np.float64)
    if obs.ndim != 1 or obs.size < 2:
        raise StatsInputError("the SRM test needs the units of at least two variants", field="units")
    if not np.all(np.isfinite(obs)) or np.any(obs < 0):
        raise StatsInputError("units must be finite and non-negative", field="units")
    w = np.full(obs.size, 1.0) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != obs.shape:
        raise StatsInputError("needs one weight per variant", field="weights")
    if not np.all(np.isfinite(w)) or np.any(w <= 0):
        raise StatsInputError("weights must be finite and positive", field="weights")
    if not 0 < threshold < 1:
        raise StatsInputError("must be between 0 and 1", field="srm_threshold")
    total = obs.sum()
    if total <= 0:
        raise StatsInputError("no units in any variant", field="units")
    expected = total * w / w.sum()
    stat = float(np.sum((obs - expected) ** 2 / expected))
    p = float(special.chdtrc(obs.size - 1, stat))
    return SrmResult(p_value=p, mismatch=p < threshold)
