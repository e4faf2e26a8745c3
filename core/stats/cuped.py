"""CUPED with several covariates (regression adjustment) from sufficient statistics.

With covariates ``X`` (K columns: pre-period metrics, assignment properties as 0/1 indicators, ...),
the regression adjustment subtracts ``beta' (x_i - x_bar)`` with ``beta`` the least-squares slope of
the metric on ``X`` over the pooled arms. That equals one-covariate CUPED on the single combined
covariate ``z = X beta``: the engine's theta for ``z`` (its joint covariance with the metric over its
joint variance) is ``beta' S_xy / beta' S_xx beta = 1`` when ``S_xx beta = S_xy``. So this module
only turns per-arm sums of ``X`` into the three CUPED fields of ``z``; :func:`analyze` /
:func:`analyze_columns` do the rest (variance, tests, intervals) unchanged.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from dataeng_agents.core.stats.models import StatsInputError

FloatArray = npt.NDArray[np.float64]


def combine_covariates(
    n: Any, metric_sum: Any, covariate_sums: Any, covariate_cross: Any, covariate_metric: Any
) -> dict[str, FloatArray]:
    """The CUPED fields (``covariate_sum``, ``covariate_sum_squares``, ``sum_product_covariate``) of
    the combined covariate ``z = X beta``, per arm.

    Shapes (leading axes ``...`` are any, e.g. ``(metrics, variants)``; the arms to pool are the last
    of them): ``n``, ``metric_sum`` ``(..., arms)``; ``covariate_sums`` ``(..., arms, K)`` = Σx_k;
    ``covariate_cross`` ``(..., arms, K, K)`` = Σx_j·x_k; ``covariate_metric`` ``(..., arms, K)`` =
    Σx_k·y. ``beta`` is solved per leading index from the arms' pooled, centred sums (least squares:
    a collinear covariate gets the minimum-norm solution rather than an error).

    For a ratio metric, pass the sums of its linearisation's products instead (as the single-covariate
    contract does); the combined covariate then also needs ``denominator_sum_product_covariate`` =
    ``beta' Σx·d``, which callers can compute with the returned ``beta``.
    """
    nn = np.asarray(n, dtype=np.float64)
    sy = np.asarray(metric_sum, dtype=np.float64)
    sx = np.asarray(covariate_sums, dtype=np.float64)
    sxx = np.asarray(covariate_cross, dtype=np.float64)
    sxy = np.asarray(covariate_metric, dtype=np.float64)
    if sx.ndim < 2 or sx.shape[:-1] != nn.shape or sy.shape != nn.shape:
        raise StatsInputError("covariate_sums must have shape n.shape + (K,)", field="covariate_sums")
    k = sx.shape[-1]
    if sxx.shape != (*nn.shape, k, k) or sxy.shape != (*nn.shape, k):
        raise StatsInputError(
            f"covariate_cross needs shape {(*nn.shape, k, k)}, covariate_metric {(*nn.shape, k)}",
            field="covariate_cross",
        )
    for name, arr in (
        ("n", nn),
        ("metric_sum", sy),
        ("covariate_sums", sx),
        ("covariate_cross", sxx),
        ("covariate_metric", sxy),
    ):
        if not np.isfinite(arr).all():
            raise StatsInputError("must be finite numbers", field=name)
    total = nn.sum(axis=-1)
    tx = sx.sum(axis=-2)
    # Joint (pooled-arm) centred moments, as gbstats pools theta over the compared arms.
    s_xx = sxx.sum(axis=-3) - tx[..., :, None] * tx[..., None, :] / total[..., None, None]
    s_xy = sxy.sum(axis=-2) - tx * sy.sum(axis=-1)[..., None] / total[..., None]
    beta = np.einsum("...ij,...j->...i", np.linalg.pinv(s_xx), s_xy)
    b = beta[..., None, :]  # broadcast over arms
    return {
        "covariate_sum": np.einsum("...k,...k->...", sx, b),
        "covariate_sum_squares": np.einsum("...j,...jk,...k->...", b, sxx, b),
        "sum_product_covariate": np.einsum("...k,...k->...", sxy, b),
        "beta": beta,
    }
