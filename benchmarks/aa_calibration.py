#!/usr/bin/env python
"""Calibration under daily peeking, and power, of the experiment defaults (seeded simulations).

The defaults of a scheduled experiment report: ``method: sequential`` (confidence sequence,
N* = 5000), ``difference: relative`` (on the log ratio), alpha 0.05, Holm over metrics x arms and
``min_conversions: 150``. Every number below comes from sufficient statistics of simulated units
fed to the public API, the same way a warehouse query feeds it.

1. A/A false positives. ``--experiments`` (2,000) A/A experiments per (base rate, traffic): each day
   adds ``traffic`` units to each arm (the split itself random: Binomial(2 x traffic, 1/2)), and
   the cumulative sums are analysed after each of 20 days. A false positive is an experiment whose
   result was significant at ANY of the 20 looks (what a stakeholder reading the daily report sees).
   Columns: the defaults through ``analyze_columns`` and through ``analyze(dict)`` (the two must
   give the same p-values, checked), and the old convention (linear delta method, no minimum) for
   comparison. A skewed, zero-inflated revenue metric (5% buyers, lognormal spend) too.
2. Power. For each design, ``plan_analysis`` sizes the experiment for 80% power with the method and
   Holm family actually used (3 metrics x 2 treatment arms = 6 tests); ``--power-experiments``
   (4,000) experiments are simulated at that size with the effect on one metric of one arm, and the
   share whose Holm-adjusted p-value of that comparison is below alpha at the final look is compared
   with the claim. Also shown: the power of the same analysis at the size the fixed-horizon
   (spotify-confidence) formula gives, which is what the design page used to promise as 80%.

Run:  .venv/bin/python benchmarks/aa_calibration.py [--experiments 2000] [--power-experiments 4000]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
import numpy.typing as npt
from dataeng_agents.core.stats import (
    analysis_power,
    analyze,
    analyze_columns,
    plan_analysis,
    sample_size_per_variant,
)

FloatArray = npt.NDArray[np.float64]
ALPHA = 0.05
DAYS = 20
DEFAULTS: dict[str, Any] = {
    "method": "sequential",
    "difference": "relative",
    "alpha": ALPHA,
    "sequential_tuning": 5000,
    "min_conversions": 150,
}
OLD: dict[str, Any] = {**DEFAULTS, "relative_method": "delta", "min_conversions": 0}
BASE_RATES = (0.01, 0.02, 0.05, 0.15, 0.30, 0.50)
TRAFFIC = (100, 1_000, 10_000)


def _arms(rng: np.random.Generator, traffic: int, n_exp: int) -> FloatArray:
    """Cumulative units per (arm, day, experiment): a random 50/50 split of 2 x traffic a day."""
    treated = rng.binomial(2 * traffic, 0.5, size=(DAYS, n_exp)).astype(float)
    daily = np.stack([2.0 * traffic - treated, treated])
    return np.cumsum(daily, axis=1)


def _p_columns(stats: dict[str, FloatArray], kind: str, settings: dict[str, Any]) -> FloatArray:
    n_exp = stats["n"].shape[0]
    res = analyze_columns(
        stats,
        metrics=[f"e{i}" for i in range(n_exp)],
        variants=["control", "treatment"],
        kind=kind,
        settings=settings,
    )
    p: FloatArray = res.p_value.filled(np.nan)[:, 0]
    return p


def _p_dict(stats: dict[str, FloatArray], kind: str, settings: dict[str, Any]) -> FloatArray:
    n_exp = stats["n"].shape[0]
    metrics = [
        {
            "name": f"e{i}",
            "kind": kind,
            "stats": {
                arm: {k: float(v[i, j]) for k, v in stats.items()}
                for j, arm in enumerate(("control", "treatment"))
            },
        }
        for i in range(n_exp)
    ]
    out = analyze(
        {
            "control": "control",
            "variants": [{"name": "control"}, {"name": "treatment"}],
            "settings": settings,
            "metrics": metrics,
        }
    )
    return np.array([np.nan if r.p_value is None else r.p_value for r in out.results])


def aa_proportion(rate: float, traffic: int, n_exp: int, seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    units = _arms(rng, traffic, n_exp)
    daily_units = np.diff(units, axis=1, prepend=0.0)
    conversions = np.cumsum(rng.binomial(daily_units.astype(np.int64), rate), axis=1).astype(float)
    hit = {"columns": np.zeros(n_exp, bool), "dict": np.zeros(n_exp, bool), "old": np.zeros(n_exp, bool)}
    shown = np.zeros(n_exp, bool)
    for day in range(DAYS):
        stats = {"n": units[:, day].T.copy(), "sum": conversions[:, day].T.copy()}
        p_col = _p_columns(stats, "proportion", DEFAULTS)
        p_dict = _p_dict(stats, "proportion", DEFAULTS)
        same = np.isnan(p_col) == np.isnan(p_dict)
        assert same.all() and np.allclose(
            p_col[~np.isnan(p_col)], p_dict[~np.isnan(p_dict)], rtol=1e-12, atol=0
        )
        hit["columns"] |= p_col < ALPHA
        hit["dict"] |= p_dict < ALPHA
        hit["old"] |= _p_columns(stats, "proportion", OLD) < ALPHA
        shown |= ~np.isnan(p_col)
    return {
        **{k: float(v.mean()) for k, v in hit.items()},
        "with_verdict": float(shown.mean()),
        "final_conversions": float(conversions[0, -1].mean()),
    }


def aa_revenue(traffic: int, n_exp: int, seed: int) -> dict[str, float]:
    """Zero-inflated lognormal spend (5% buyers): sums and sums of squares of simulated units."""
    rng = np.random.default_rng(seed)
    units = _arms(rng, traffic, n_exp)
    daily_units = np.diff(units, axis=1, prepend=0.0).astype(np.int64)
    s = np.zeros((2, DAYS, n_exp))
    ss = np.zeros((2, DAYS, n_exp))
    buyers = rng.binomial(daily_units, 0.05)
    for arm in range(2):
        for day in range(DAYS):
            k = buyers[arm, day]
            spend = rng.lognormal(3.0, 1.0, size=int(k.sum()))
            owner = np.repeat(np.arange(n_exp), k)
            s[arm, day] = np.bincount(owner, spend, minlength=n_exp)
            ss[arm, day] = np.bincount(owner, spend * spend, minlength=n_exp)
    cs, css = np.cumsum(s, axis=1), np.cumsum(ss, axis=1)
    hit = {"columns": np.zeros(n_exp, bool), "dict": np.zeros(n_exp, bool), "old": np.zeros(n_exp, bool)}
    for day in range(DAYS):
        stats = {"n": units[:, day].T.copy(), "sum": cs[:, day].T.copy(), "sum_squares": css[:, day].T.copy()}
        hit["columns"] |= _p_columns(stats, "mean", DEFAULTS) < ALPHA
        hit["dict"] |= _p_dict(stats, "mean", DEFAULTS) < ALPHA
        hit["old"] |= _p_columns(stats, "mean", OLD) < ALPHA
    return {k: float(v.mean()) for k, v in hit.items()}


def holm_first(p: FloatArray) -> FloatArray:
    """Holm-adjusted p-value of column 0 of each row (the family is the row; NaN = not tested)."""
    tested = ~np.isnan(p)
    m = tested.sum(axis=1, keepdims=True)
    filled = np.where(tested, p, np.inf)
    order = np.argsort(filled, axis=1, kind="stable")
    ranked = np.take_along_axis(filled, order, axis=1)
    steps = (m - np.arange(p.shape[1])[None, :]) * ranked
    adjusted_sorted = np.minimum(
        np.maximum.accumulate(np.where(np.isfinite(steps), steps, -np.inf), axis=1), 1.0
    )
    adjusted = np.empty_like(adjusted_sorted)
    np.put_along_axis(adjusted, order, adjusted_sorted, axis=1)
    out: FloatArray = np.where(tested[:, 0], adjusted[:, 0], np.nan)
    return out


def power_case(
    base: float, mde: float, settings: dict[str, Any], n_exp: int, seed: int, n_per_variant: int
) -> float:
    """Share of experiments declaring the effect (Holm over 3 metrics x 2 arms) at the final look.

    Variants control, t1, t2; metrics goal (t1 converts at base x (1 + mde)), two null metrics.
    """
    rng = np.random.default_rng(seed)
    n_var = 3
    rates = np.full((3, n_var), base)
    rates[0, 1] = base * (1.0 + mde)
    n = np.full((n_exp * 3, n_var), float(n_per_variant))
    conv = rng.binomial(n_per_variant, np.tile(rates, (n_exp, 1))).astype(float)
    res = analyze_columns(
        {"n": n, "sum": conv},
        metrics=[f"e{i}" for i in range(n_exp * 3)],
        variants=["control", "t1", "t2"],
        kind="proportion",
        settings=settings,
    )
    p = res.p_value.filled(np.nan).reshape(n_exp, 6)  # per experiment: goal/t1, goal/t2, m2/t1, ...
    adjusted = holm_first(p)
    est = res.estimate.filled(np.nan).reshape(n_exp, 6)[:, 0]
    return float(np.mean((adjusted < ALPHA) & (est > 0)))


def check_dict_holm(base: float, mde: float, settings: dict[str, Any], n_per_variant: int, seed: int) -> None:
    """The vectorised Holm above equals ``analyze(..., correction='holm')`` per experiment."""
    rng = np.random.default_rng(seed)
    for _ in range(50):
        rates = np.full((3, 3), base)
        rates[0, 1] = base * (1.0 + mde)
        conv = rng.binomial(n_per_variant, rates)
        inp = {
            "control": "control",
            "variants": [{"name": v} for v in ("control", "t1", "t2")],
            "settings": {**settings, "correction": "holm"},
            "metrics": [
                {
                    "name": f"m{k}",
                    "kind": "proportion",
                    "stats": {
                        v: {"n": n_per_variant, "sum": int(conv[k, j])}
                        for j, v in enumerate(("control", "t1", "t2"))
                    },
                }
                for k in range(3)
            ],
        }
        out = analyze(inp)
        p = np.array([[np.nan if r.p_value is None else r.p_value for r in out.results]])
        got = out.results[0].adjusted_p_value
        mine = holm_first(p)[0]
        assert (got is None and np.isnan(mine)) or (got is not None and abs(got - mine) < 1e-12), (got, mine)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--experiments", type=int, default=2000)
    ap.add_argument("--power-experiments", type=int, default=4000)
    args = ap.parse_args()
    t0 = time.perf_counter()
    print(
        f"A/A, {args.experiments} experiments x {DAYS} daily cumulative looks, alpha={ALPHA}; "
        f"false positive = significant at any look"
    )
    print(f"defaults: {DEFAULTS}")
    print(
        "| base rate | units/arm/day | conversions/arm at day 20 | FPR analyze_columns | FPR analyze(dict) "
        "| experiments with a verdict on some day | FPR old (linear delta, no minimum) |"
    )
    print("|---|---|---|---|---|---|---|")
    worst = 0.0
    seed = 1000
    for rate in BASE_RATES:
        for traffic in TRAFFIC:
            seed += 1
            r = aa_proportion(rate, traffic, args.experiments, seed)
            worst = max(worst, r["columns"], r["dict"])
            print(
                f"| {rate:.0%} | {traffic:,} | {r['final_conversions']:,.0f} | {r['columns']:.2%} | {r['dict']:.2%} "
                f"| {r['with_verdict']:.0%} | {r['old']:.2%} |"
            )
    print("\nrevenue per unit (5% buyers, lognormal(3, 1) spend), mean metric, relative lift")
    print("| units/arm/day | FPR analyze_columns | FPR analyze(dict) | FPR old (linear delta) |")
    print("|---|---|---|---|")
    for traffic in (50, 200, 1_000):
        seed += 1
        r = aa_revenue(traffic, args.experiments, seed)
        worst = max(worst, r["columns"], r["dict"])
        print(f"| {traffic:,} | {r['columns']:.2%} | {r['dict']:.2%} | {r['old']:.2%} |")
    print(
        f"\nworst A/A false-positive rate of the defaults over 20 looks: {worst:.2%} (alpha {ALPHA:.0%}): "
        f"{'OK' if worst <= ALPHA else 'ABOVE ALPHA'}"
    )

    print(
        f"\npower, {args.power_experiments} experiments per design; 3 variants x 3 metrics, Holm over 6 tests; "
        f"effect on one metric of one arm; claimed = plan_analysis(..., power=0.8)"
    )
    print(
        "| design | method | planned units/arm | claimed power | simulated power | difference "
        "| simulated, old convention (linear delta, no minimum) | fixed-horizon formula's units/arm "
        "| power of this analysis there |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    worst_gap = 0.0
    for base, mde in ((0.05, 0.10), (0.15, 0.05), (0.01, 0.20), (0.40, 0.03)):
        for method in ("sequential", "frequentist"):
            settings = {**DEFAULTS, "method": method}
            plan = plan_analysis(
                kind="proportion",
                baseline_mean=base,
                mde=mde,
                method=method,
                tests=6,
                variants=3,
                min_conversions=150,
                sequential_tuning=5000,
            )
            seed += 1
            simulated = power_case(base, mde, settings, args.power_experiments, seed, plan.per_variant)
            old = power_case(
                base, mde, {**OLD, "method": method}, args.power_experiments, seed, plan.per_variant
            )
            check_dict_holm(base, mde, settings, plan.per_variant, seed)
            fixed_n = sample_size_per_variant(
                kind="proportion", baseline_mean=base, mde=mde, mde_type="relative", variants=3
            )
            at_fixed = analysis_power(
                kind="proportion",
                baseline_mean=base,
                mde=mde,
                n_per_variant=fixed_n,
                method=method,
                tests=6,
                min_conversions=150,
            )
            gap = simulated - plan.power
            worst_gap = max(worst_gap, abs(gap))
            print(
                f"| {base:.0%} base, +{mde:.0%} | {method} | {plan.per_variant:,} | {plan.power:.1%} "
                f"| {simulated:.1%} | {gap * 100:+.1f} pts | {old:.1%} | {fixed_n:,} | {at_fixed:.1%} |"
            )
    print(
        f"\nlargest |simulated - claimed| power: {worst_gap * 100:.1f} points "
        f"({'within' if worst_gap <= 0.03 else 'OUTSIDE'} 3 points)"
    )
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
