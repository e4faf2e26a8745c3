"""Seeded, vectorised simulations: CI coverage and the false-positive rate under daily peeking.

Each simulated experiment becomes one metric of a single analysis, so one ``analyze`` call tests
thousands of experiments (the engine's vectorised path) from sums aggregated from raw numpy rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from dataeng_agents.core.stats import analyze

N_EXPERIMENTS = 10_000
Arr = npt.NDArray[np.float64]


def _input(stats: dict[str, dict[str, Arr]], kind: str, **settings: Any) -> dict[str, Any]:
    n_exp = len(next(iter(stats["control"].values())))
    metrics = [
        {"name": f"e{i}", "kind": kind,
         "stats": {arm: {k: float(v[i]) for k, v in fields.items()} for arm, fields in stats.items()}}
        for i in range(n_exp)
    ]
    return {"control": "control", "variants": [{"name": "control"}, {"name": "treatment"}],
            "settings": settings, "metrics": metrics}


def _coverage(inp: dict[str, Any], truth: float) -> float:
    out = analyze(inp)
    assert all(r.error is None for r in out.results)
    lo = np.array([r.ci[0] for r in out.results if r.ci is not None], dtype=float)
    hi = np.array([r.ci[1] for r in out.results if r.ci is not None], dtype=float)
    assert lo.size == len(out.results)
    return float(np.mean((lo <= truth) & (truth <= hi)))


def _sums(y: Arr, **more: Arr) -> dict[str, Arr]:
    out = {"n": np.full(y.shape[0], float(y.shape[1])), "sum": y.sum(axis=1), "sum_squares": (y * y).sum(axis=1)}
    for name, v in more.items():
        out[name] = v
    return out


@pytest.mark.slow
def test_mean_ci_coverage_95() -> None:
    rng = np.random.default_rng(20261127)
    n = 300
    # Skewed revenue-like values: gamma(2, 5) has mean 10; the treatment multiplies by 1.02.
    stats = {arm: _sums(rng.gamma(2.0, 5.0 * lift, size=(N_EXPERIMENTS, n)))
             for arm, lift in (("control", 1.0), ("treatment", 1.02))}
    cov = _coverage(_input(stats, "mean"), truth=0.02)
    print(f"\nmean metric, relative lift: 95% CI coverage = {cov:.2%} over {N_EXPERIMENTS} experiments")
    assert 0.935 <= cov <= 0.965


@pytest.mark.slow
def test_ratio_ci_coverage_95() -> None:
    rng = np.random.default_rng(7)
    n = 300
    stats = {}
    for arm, lift in (("control", 1.0), ("treatment", 1.03)):
        d = rng.poisson(2.0, size=(N_EXPERIMENTS, n)).astype(float) + 1.0
        y = d * rng.gamma(2.0, 5.0 * lift, size=d.shape)  # E[y]/E[d] = 10 * lift exactly
        stats[arm] = _sums(y, denominator_sum=d.sum(axis=1), denominator_sum_squares=(d * d).sum(axis=1),
                           sum_product_denominator=(y * d).sum(axis=1))
    cov = _coverage(_input(stats, "ratio"), truth=0.03)
    print(f"\nratio metric, relative lift: 95% CI coverage = {cov:.2%} over {N_EXPERIMENTS} experiments")
    assert 0.935 <= cov <= 0.965


@pytest.mark.slow
@pytest.mark.parametrize("difference,truth", [("absolute", 0.3), ("relative", 0.03)])
def test_cuped_ci_coverage_95(difference: str, truth: float) -> None:
    rng = np.random.default_rng(99 if difference == "absolute" else 100)
    n = 300
    stats = {}
    for arm, effect in (("control", 0.0), ("treatment", 0.3)):
        x = rng.normal(10.0, 3.0, size=(N_EXPERIMENTS, n))
        y = 2.0 + 0.8 * x + rng.normal(0.0, 1.5, size=x.shape) + effect  # E[y_control] = 10
        stats[arm] = _sums(y, covariate_sum=x.sum(axis=1), covariate_sum_squares=(x * x).sum(axis=1),
                           sum_product_covariate=(x * y).sum(axis=1))
    inp = _input(stats, "mean", difference=difference)
    cov = _coverage(inp, truth=truth)
    print(f"\nCUPED mean metric, {difference} effect: 95% CI coverage = {cov:.2%} over {N_EXPERIMENTS} experiments")
    assert 0.935 <= cov <= 0.965
    # The adjustment must earn its keep: intervals are much narrower than without the covariate.
    plain = {arm: {k: v for k, v in s.items() if not k.startswith(("covariate", "sum_product"))}
             for arm, s in stats.items()}
    se_cuped = np.mean([r.std_error for r in analyze(_input({a: {k: v[:500] for k, v in s.items()}
                                                              for a, s in stats.items()}, "mean",
                                                             difference=difference)).results])
    se_plain = np.mean([r.std_error for r in analyze(_input({a: {k: v[:500] for k, v in s.items()}
                                                              for a, s in plain.items()}, "mean",
                                                             difference=difference)).results])
    assert se_cuped < 0.7 * se_plain


@pytest.mark.slow
def test_daily_peeking_a_a_false_positive_rate() -> None:
    rng = np.random.default_rng(4242)
    n_exp, days, per_day, alpha = 2_000, 20, 150, 0.05
    # A/A: both arms convert at 10%; each day adds `per_day` units to each arm of every experiment.
    daily = rng.binomial(per_day, 0.10, size=(2, days, n_exp)).astype(float)
    cum = np.cumsum(daily, axis=1)
    rejected = {"frequentist": np.zeros(n_exp, dtype=bool), "sequential": np.zeros(n_exp, dtype=bool)}
    final_fixed = 0.0
    for day in range(days):
        n = float(per_day * (day + 1))
        stats = {arm: {"n": np.full(n_exp, n), "sum": cum[i, day]} for i, arm in enumerate(("control", "treatment"))}
        for method in rejected:
            out = analyze(_input(stats, "proportion", method=method, difference="absolute", alpha=alpha))
            p = np.array([np.nan if r.p_value is None else r.p_value for r in out.results])
            assert not np.isnan(p).any()
            rejected[method] |= p < alpha
            if method == "frequentist" and day == days - 1:
                final_fixed = float(np.mean(p < alpha))
    fpr = {m: float(r.mean()) for m, r in rejected.items()}
    print(f"\nA/A, {n_exp} experiments peeked daily for {days} days at alpha={alpha}: "
          f"fixed-horizon FPR = {fpr['frequentist']:.2%} (single look at day {days}: {final_fixed:.2%}), "
          f"sequential FPR = {fpr['sequential']:.2%}")
    assert fpr["frequentist"] > 2 * alpha  # peeking a fixed-horizon test inflates false positives...
    assert fpr["sequential"] <= alpha + 0.01  # ...an always-valid sequential test does not
    assert abs(final_fixed - alpha) < 0.015  # and the single final look is calibrated


@pytest.mark.slow
def test_cuped_ratio_ci_coverage_95() -> None:
    rng = np.random.default_rng(31)
    n = 300
    stats = {}
    for arm, lift in (("control", 1.0), ("treatment", 1.03)):
        d = rng.poisson(2.0, size=(N_EXPERIMENTS, n)).astype(float) + 1.0
        x = rng.normal(5.0, 2.0, size=d.shape)  # pre-period covariate, independent of assignment
        y = d * (rng.gamma(4.0, 2.5 * lift, size=d.shape) + 3.0 * (x - 5.0))  # E[y]/E[d] = 10 * lift
        stats[arm] = _sums(y, denominator_sum=d.sum(axis=1), denominator_sum_squares=(d * d).sum(axis=1),
                           sum_product_denominator=(y * d).sum(axis=1), covariate_sum=x.sum(axis=1),
                           covariate_sum_squares=(x * x).sum(axis=1), sum_product_covariate=(x * y).sum(axis=1),
                           denominator_sum_product_covariate=(x * d).sum(axis=1))
    cov = _coverage(_input(stats, "ratio"), truth=0.03)
    print(f"\nCUPED ratio metric, relative lift: 95% CI coverage = {cov:.2%} over {N_EXPERIMENTS} experiments")
    assert 0.935 <= cov <= 0.965
    plain = {a: {k: v for k, v in s.items() if "covariate" not in k} for a, s in stats.items()}
    head = {a: {k: v[:500] for k, v in s.items()} for a, s in stats.items()}
    head_plain = {a: {k: v[:500] for k, v in s.items()} for a, s in plain.items()}
    se_cuped = np.mean([r.std_error for r in analyze(_input(head, "ratio")).results])
    se_plain = np.mean([r.std_error for r in analyze(_input(head_plain, "ratio")).results])
    assert se_cuped < 0.8 * se_plain
