"""Multiple-testing corrections over the (metric, variant) results of one analysis."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt
from dataeng_agents.core.stats.models import StatsInputError


def adjust_pvalues(
    p: Sequence[float] | npt.NDArray[np.float64], method: Literal["holm", "bh", "none"]
) -> npt.NDArray[np.float64]:
    """Holm-Bonferroni (family-wise) or Benjamini-Hochberg (false discovery rate) adjusted p-values.

    NaN entries (results without a p-value) are ignored and stay NaN; the output keeps input order.
    """
    arr = np.asarray(p, dtype=np.float64)
    out = np.full(arr.shape, np.nan)
    flat = arr.ravel()
    ok = ~np.isnan(flat)
    if np.any((flat[ok] < 0) | (flat[ok] > 1)):
        raise StatsInputError("p-values must lie in [0, 1]", field="p")
    vals = flat[ok]
    m = vals.size
    if m == 0:
        return out
    if method == "none":
        adj = vals.copy()
    elif method in ("holm", "bh"):
        order = np.argsort(vals, kind="stable")
        ranked = vals[order]
        if method == "holm":
            adj_sorted = np.maximum.accumulate((m - np.arange(m)) * ranked)
        else:
            adj_sorted = np.minimum.accumulate((m / np.arange(1, m + 1) * ranked)[::-1])[::-1]
        adj = np.empty(m)
        adj[order] = np.minimum(adj_sorted, 1.0)
    else:
        raise StatsInputError(f"unknown correction {method!r} (holm, bh or none)", field="correction")
    flat_out = out.ravel()
    flat_out[ok] = adj
    return flat_out.reshape(arr.shape)
