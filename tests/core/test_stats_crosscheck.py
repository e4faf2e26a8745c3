"""Cross-checks of the engine against scipy, statsmodels and computations on raw rows."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pytest
from dataeng_agents.core.stats import (
    adjust_pvalues,
    analyze,
    mde_at_n,
    power,
    power_at_n,
    sample_size_per_variant,
    srm_test,
)
from scipy import stats as sps
from stats_helpers import mean_stats, ratio_stats, two_arm
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower, zt_ind_solve_power
from statsmodels.stats.proportion import proportions_ztest
from statsmodels.stats.proportion import test_proportions_2indep as proportions_2indep


def _one(inp: dict[str, Any]) -> Any:
    out = analyze(inp)
    assert len(out.results) == 1
    r = out.results[0]
    assert r.error is None, r.error
    return r


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_mean_matches_scipy_welch_from_stats(alternative: str) -> None:
    rng = np.random.default_rng(1)
    a, b = rng.gamma(2.0, 3.0, 800), rng.gamma(2.1, 3.0, 650)
    r = _one(two_arm("mean", mean_stats(a), mean_stats(b), difference="absolute", alternative=alternative))
    ref = sps.ttest_ind_from_stats(
        b.mean(),
        b.std(ddof=1),
        b.size,
        a.mean(),
        a.std(ddof=1),
        a.size,
        equal_var=False,
        alternative=alternative,
    )
    assert r.estimate == pytest.approx(b.mean() - a.mean(), rel=1e-12)
    assert r.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert r.estimate / r.std_error == pytest.approx(ref.statistic, rel=1e-9)
    raw = sps.ttest_ind(b, a, equal_var=False, alternative=alternative)
    ci = raw.confidence_interval(0.95)
    lo, hi = r.ci
    assert (lo is None) == np.isinf(ci.low) and (hi is None) == np.isinf(ci.high)
    if lo is not None:
        assert lo == pytest.approx(ci.low, rel=1e-9)
    if hi is not None:
        assert hi == pytest.approx(ci.high, rel=1e-9)


def test_proportion_matches_statsmodels_wald_and_ztest() -> None:
    count, nobs = np.array([1180, 1100]), np.array([10100, 10000])
    r = _one(
        two_arm("proportion", {"n": 10000, "sum": 1100}, {"n": 10100, "sum": 1180}, difference="absolute")
    )
    wald = proportions_2indep(count[0], nobs[0], count[1], nobs[1], method="wald", compare="diff")
    # The engine's t statistic is the unpooled Wald z; the p-value uses Welch's t (dof ~ 20000).
    assert r.estimate / r.std_error == pytest.approx(wald.statistic, rel=1e-9)
    assert r.p_value == pytest.approx(wald.pvalue, rel=1e-3)
    z, p = proportions_ztest(count, nobs)  # pooled variance: close, not identical, at this size
    assert r.estimate / r.std_error == pytest.approx(z, rel=1e-3)
    assert r.p_value == pytest.approx(p, rel=1e-2)


@pytest.mark.parametrize("method,sm_method", [("holm", "holm"), ("bh", "fdr_bh")])
def test_adjust_pvalues_matches_multipletests(method: str, sm_method: str) -> None:
    rng = np.random.default_rng(7)
    p = np.concatenate([rng.uniform(0, 1, 40), rng.uniform(0, 0.01, 10), [0.5, 0.5, 1.0, 0.0]])
    ours = adjust_pvalues(p, method)  # type: ignore[arg-type]
    ref = multipletests(p, method=sm_method)[1]
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-15)


def test_adjusted_pvalues_across_metrics_and_variants_in_analyze() -> None:
    rng = np.random.default_rng(3)
    metrics = []
    for i in range(6):
        st = {
            v: {"n": 5000, "sum": int(rng.binomial(5000, 0.1 + 0.004 * j))}
            for j, v in enumerate(["c", "t1", "t2"])
        }
        metrics.append({"name": f"m{i}", "kind": "proportion", "stats": st})
    inp = {
        "control": "c",
        "variants": [{"name": "c"}, {"name": "t1"}, {"name": "t2"}],
        "metrics": metrics,
        "settings": {"correction": "bh"},
    }
    out = analyze(inp)
    raw = np.array([r.p_value for r in out.results])
    adjusted = np.array([r.adjusted_p_value for r in out.results], dtype=float)
    np.testing.assert_allclose(adjusted, multipletests(raw, method="fdr_bh")[1])


def test_srm_matches_scipy_chisquare() -> None:
    units, weights = [10120, 9950, 20300], [0.25, 0.25, 0.5]
    ref = sps.chisquare(units, np.array(weights) * sum(units))
    got = srm_test(units, weights)
    assert got.p_value == pytest.approx(ref.pvalue, rel=1e-10)
    assert srm_test([1000, 1200]).mismatch is True


@pytest.mark.parametrize(
    "kind,baseline,variance,mde,mde_type",
    [
        ("proportion", 0.1, None, 0.005, "absolute"),
        ("proportion", 0.03, None, 0.05, "relative"),
        ("mean", 25.0, 400.0, 0.5, "absolute"),
    ],
)
def test_power_matches_statsmodels(
    kind: Literal["proportion", "mean"],
    baseline: float,
    variance: float | None,
    mde: float,
    mde_type: Literal["absolute", "relative"],
) -> None:
    var = baseline * (1 - baseline) if variance is None else variance
    delta = mde * baseline if mde_type == "relative" else mde
    es = delta / np.sqrt(var)
    n = sample_size_per_variant(
        kind=kind,
        baseline_mean=baseline,
        baseline_variance=variance,
        mde=mde,
        mde_type=mde_type,
    )
    sm_n = NormalIndPower().solve_power(
        effect_size=es, alpha=0.05, power=0.8, ratio=1.0, alternative="two-sided"
    )
    # statsmodels also counts the far tail, which changes n by well under one unit.
    assert n == int(np.ceil(sm_n)) or n == int(np.ceil(sm_n)) + 1
    assert zt_ind_solve_power(effect_size=es, alpha=0.05, power=0.8) == pytest.approx(sm_n)
    achieved = power_at_n(
        kind=kind,
        baseline_mean=baseline,
        baseline_variance=variance,
        mde=mde,
        mde_type=mde_type,
        n_per_variant=n,
    )
    assert achieved == pytest.approx(NormalIndPower().power(es, n, 0.05, ratio=1.0), rel=1e-10)
    assert achieved >= 0.8
    reach = mde_at_n(
        kind=kind,
        baseline_mean=baseline,
        baseline_variance=variance,
        n_per_variant=n,
        mde_type=mde_type,
    )
    sm_es = NormalIndPower().solve_power(nobs1=n, alpha=0.05, power=0.8, ratio=1.0)
    sm_delta = sm_es * np.sqrt(var) / (baseline if mde_type == "relative" else 1.0)
    assert reach == pytest.approx(sm_delta, rel=1e-4)  # statsmodels solves numerically
    reach_es = reach * (baseline if mde_type == "relative" else 1.0) / np.sqrt(var)
    # The MDE formula (like spotify-confidence) ignores the far rejection tail: add it back.
    far_tail = sps.norm.cdf(-reach_es * np.sqrt(n / 2) - sps.norm.ppf(0.975))
    assert NormalIndPower().power(reach_es, n, 0.05, ratio=1.0) - far_tail == pytest.approx(0.8, rel=1e-9)
    out = power(
        {
            "kind": kind,
            "baseline_mean": baseline,
            "baseline_variance": variance,
            "n_per_variant": n,
            "mde": mde,
            "mde_type": mde_type,
        }
    )
    assert out.mde == pytest.approx(reach) and out.power == pytest.approx(achieved)


def test_power_multi_arm_splits_alpha() -> None:
    two = sample_size_per_variant(kind="proportion", baseline_mean=0.1, mde=0.005)
    three = power({"kind": "proportion", "baseline_mean": 0.1, "mde": 0.005, "variants": 3})
    assert three.per_variant > two and three.total == 3 * three.per_variant
    es = 0.005 / np.sqrt(0.09)
    sm = NormalIndPower().solve_power(effect_size=es, alpha=0.025, power=0.8)
    assert abs(three.per_variant - sm) < 1.5


def test_ratio_delta_method_matches_raw_row_linearisation() -> None:
    rng = np.random.default_rng(11)
    out = {}
    for arm, lift in (("control", 1.0), ("treatment", 1.05)):
        d = rng.poisson(3.0, 4000).astype(float) + 1
        y = d * rng.gamma(2.0, 5.0 * lift, d.size)
        out[arm] = (y, d)
    for difference in ("absolute", "relative"):
        r = _one(
            two_arm(
                "ratio", ratio_stats(*out["control"]), ratio_stats(*out["treatment"]), difference=difference
            )
        )
        rat = {k: y.sum() / d.sum() for k, (y, d) in out.items()}
        # Influence function of a ratio of means: (y - R d) / mean(d); its variance / n is var(R).
        var = {k: np.var((y - rat[k] * d) / d.mean(), ddof=1) / y.size for k, (y, d) in out.items()}
        if difference == "absolute":
            est, se = rat["treatment"] - rat["control"], np.sqrt(var["treatment"] + var["control"])
        else:
            rc, rt = rat["control"], rat["treatment"]
            est = (rt - rc) / rc
            se = np.sqrt(var["treatment"] / rc**2 + var["control"] * rt**2 / rc**4)
        assert r.estimate == pytest.approx(est, rel=1e-10)
        assert r.std_error == pytest.approx(se, rel=1e-8)


def test_cuped_matches_raw_row_regression_adjustment() -> None:
    rng = np.random.default_rng(5)
    x = {k: rng.normal(10, 3, 3000) for k in ("control", "treatment")}
    y = {k: 2 + 0.8 * x[k] + rng.normal(0, 1.5, 3000) + (0.3 if k == "treatment" else 0) for k in x}
    r = _one(
        two_arm(
            "mean",
            mean_stats(y["control"], x["control"]),
            mean_stats(y["treatment"], x["treatment"]),
            difference="absolute",
        )
    )
    xa, ya = np.concatenate(list(x.values())), np.concatenate(list(y.values()))
    theta = np.cov(ya, xa, ddof=1)[0, 1] / np.var(xa, ddof=1)
    adj = {k: y[k] - theta * x[k] for k in x}
    ref = sps.ttest_ind(adj["treatment"], adj["control"], equal_var=False)
    assert r.estimate == pytest.approx(adj["treatment"].mean() - adj["control"].mean(), rel=1e-10)
    assert r.p_value == pytest.approx(ref.pvalue, rel=1e-6)
    plain = _one(two_arm("mean", mean_stats(y["control"]), mean_stats(y["treatment"]), difference="absolute"))
    assert r.std_error < 0.6 * plain.std_error  # the covariate explains most of the variance


def test_post_stratification_matches_raw_rows() -> None:
    rng = np.random.default_rng(9)
    strata, rows = [], {}
    for k, (base, n) in enumerate([(5.0, 3000), (20.0, 1000), (50.0, 200)]):
        st = {}
        for arm, lift in (("control", 0.0), ("treatment", 1.0)):
            v = rng.normal(base + lift, 4.0, n + (37 if arm == "treatment" else 0))
            rows[(k, arm)] = v
            st[arm] = mean_stats(v)
        strata.append({"name": f"s{k}", "stats": st})
    inp = {
        "control": "control",
        "variants": [{"name": "control"}, {"name": "treatment"}],
        "settings": {"difference": "absolute"},
        "metrics": [{"name": "m", "kind": "mean", "strata": strata}],
    }
    r = _one(inp)
    sizes = np.array([rows[(k, "control")].size + rows[(k, "treatment")].size for k in range(3)], float)
    w = sizes / sizes.sum()
    diff = sum(w[k] * (rows[(k, "treatment")].mean() - rows[(k, "control")].mean()) for k in range(3))
    var = sum(
        w[k] ** 2 * (rows[(k, a)].var(ddof=1) / rows[(k, a)].size)
        for k in range(3)
        for a in ("control", "treatment")
    )
    assert r.estimate == pytest.approx(diff, rel=1e-10)
    assert r.std_error == pytest.approx(np.sqrt(var), rel=1e-10)
    one = {**inp, "metrics": [{"name": "m", "kind": "mean", "strata": [strata[0]]}]}
    plain = {**inp, "metrics": [{"name": "m", "kind": "mean", "stats": strata[0]["stats"]}]}
    assert _one(one).model_dump() == _one(plain).model_dump()


def test_quantile_variance_matches_bootstrap() -> None:
    rng = np.random.default_rng(21)
    nu, z = 0.9, sps.norm.ppf(0.975)
    stats = {}
    boot_var = {}
    for arm, scale in (("control", 1.0), ("treatment", 1.03)):
        v = rng.lognormal(3.0, 0.6, 20000) * scale
        s = np.sort(v)
        n = v.size
        half = z * np.sqrt(n * nu * (1 - nu))
        lo_i, hi_i = int(np.floor(n * nu - half)), int(np.ceil(n * nu + half))
        stats[arm] = {
            "n": n,
            "n_star": n,
            "quantile": float(np.quantile(v, nu)),
            "quantile_lower": float(s[lo_i]),
            "quantile_upper": float(s[hi_i]),
        }
        boots = np.quantile(rng.choice(v, size=(300, n)), nu, axis=1)
        boot_var[arm] = boots.var(ddof=1)
    inp = two_arm("quantile", stats["control"], stats["treatment"], difference="absolute")
    inp["metrics"][0]["quantile"] = nu
    r = _one(inp)
    assert r.estimate == pytest.approx(stats["treatment"]["quantile"] - stats["control"]["quantile"])
    assert r.std_error == pytest.approx(np.sqrt(sum(boot_var.values())), rel=0.15)


def test_multi_arm_equals_pairwise_two_arm_analyses() -> None:
    st = {"c": {"n": 5000, "sum": 500}, "t1": {"n": 5100, "sum": 560}, "t2": {"n": 4900, "sum": 470}}
    multi = analyze(
        {
            "control": "c",
            "variants": [{"name": k} for k in st],
            "metrics": [{"name": "m", "kind": "proportion", "stats": st}],
        }
    )
    assert [r.variant for r in multi.results] == ["t1", "t2"]
    for r in multi.results:
        pair = analyze(
            {
                "control": "c",
                "variants": [{"name": "c"}, {"name": r.variant}],
                "metrics": [
                    {"name": "m", "kind": "proportion", "stats": {"c": st["c"], r.variant: st[r.variant]}}
                ],
            }
        )
        assert r.model_dump() == pair.results[0].model_dump()


def test_bayesian_prior_is_the_conjugate_normal_update() -> None:
    c, t = {"n": 10000, "sum": 1000}, {"n": 10000, "sum": 1100}
    flat = _one(two_arm("proportion", c, t, method="bayesian"))
    r = _one(two_arm("proportion", c, t, method="bayesian", prior={"mean": 0.0, "stddev": 0.05}))
    prec = 1 / flat.std_error**2 + 1 / 0.05**2
    assert r.std_error == pytest.approx(np.sqrt(1 / prec))
    assert r.estimate == pytest.approx(flat.estimate / flat.std_error**2 / prec)
    assert r.estimate < flat.estimate  # shrunk towards the prior mean 0
    assert r.chance_to_win == pytest.approx(sps.norm.cdf(r.estimate / r.std_error))
    inp = two_arm("proportion", c, t, method="bayesian")
    inp["metrics"][0]["inverse"] = True
    inv = analyze(inp).results[0]
    assert inv.chance_to_win == pytest.approx(1 - flat.chance_to_win)
    assert inv.risk is not None and flat.risk is not None
    assert inv.risk.control == pytest.approx(flat.risk.variant) and inv.risk.variant == pytest.approx(
        flat.risk.control
    )
    # Risk is an expected loss: check E[max(X, 0)] by quadrature.
    xs = np.linspace(flat.estimate - 10 * flat.std_error, flat.estimate + 10 * flat.std_error, 200001)
    dens = sps.norm.pdf(xs, flat.estimate, flat.std_error)
    assert flat.risk.control == pytest.approx(np.trapezoid(np.maximum(xs, 0) * dens, xs), rel=1e-6)
    assert flat.risk.variant == pytest.approx(np.trapezoid(np.maximum(-xs, 0) * dens, xs), rel=1e-5)


def test_sequential_interval_contains_fixed_horizon_interval() -> None:
    c, t = {"n": 3000, "sum": 300}, {"n": 3000, "sum": 345}
    fixed = _one(two_arm("proportion", c, t))
    seq = _one(two_arm("proportion", c, t, method="sequential"))
    assert seq.ci[0] < fixed.ci[0] and seq.ci[1] > fixed.ci[1]
    assert seq.p_value > fixed.p_value
    greater = _one(two_arm("proportion", c, t, method="sequential", alternative="greater"))
    assert greater.ci[1] is None and 1e-5 <= greater.p_value <= 0.4999


def test_cuped_proportion_follows_gbstats_proportion_covariate() -> None:
    # gbstats reads a proportion metric's covariate (pre-period conversion) as a ProportionStatistic:
    # theta = joint covariance (n-1) / joint px(1-px); arm variance p(1-p) + theta^2 px(1-px) - 2 theta cov.
    # Re-derived from raw 0/1 rows here; the engine used the n-1 covariate variance before (~1/n apart).
    rng = np.random.default_rng(12)
    arms = []
    for n, lift in ((700, 1.0), (650, 1.15)):
        x = (rng.random(n) < 0.3).astype(float)
        y = ((rng.random(n) < 0.12 * lift) | ((x == 1) & (rng.random(n) < 0.5))).astype(float)
        arms.append((x, y))
    (xa, ya), (xb, yb) = arms
    xj, yj = np.concatenate([xa, xb]), np.concatenate([ya, yb])
    nj = xj.size
    cov_j = (np.sum(xj * yj) - xj.sum() * yj.sum() / nj) / (nj - 1)
    theta = cov_j / (xj.mean() * (1 - xj.mean()))

    def arm(x: Any, y: Any) -> tuple[float, float, float]:
        n = x.size
        cov = (np.sum(x * y) - x.sum() * y.sum() / n) / (n - 1)
        var = y.mean() * (1 - y.mean()) + theta**2 * x.mean() * (1 - x.mean()) - 2 * theta * cov
        return y.mean() - theta * x.mean(), var, y.mean()

    (ma, va, pa), (mb, vb, pb) = arm(xa, ya), arm(xb, yb)
    est = (mb - ma) / pa
    se = np.sqrt(vb / (pa**2 * yb.size) + va * pb**2 / (pa**4 * ya.size))

    def cuped_stats(x: Any, y: Any) -> dict[str, float]:
        return {
            "n": float(y.size),
            "sum": float(y.sum()),
            "covariate_sum": float(x.sum()),
            "covariate_sum_squares": float((x * x).sum()),
            "sum_product_covariate": float((x * y).sum()),
        }

    r = analyze(
        two_arm(
            "proportion", cuped_stats(xa, ya), cuped_stats(xb, yb), relative_method="delta", min_conversions=0
        )
    ).results[0]
    assert r.estimate == pytest.approx(est, rel=1e-12) and r.std_error == pytest.approx(se, rel=1e-12)


def test_cuped_with_several_covariates_is_the_pooled_regression_adjustment() -> None:
    from dataeng_agents.core.stats import combine_covariates

    rng = np.random.default_rng(21)
    arms = []
    for n, effect in ((3000, 0.0), (3100, 0.4)):
        pre = rng.normal(10, 3, n)
        mobile = (rng.random(n) < 0.4).astype(float)  # an assignment property as a 0/1 covariate
        visits = rng.poisson(3, n).astype(float)
        y = 1.0 + 0.6 * pre + 2.0 * mobile + 0.5 * visits + rng.normal(0, 2, n) + effect
        arms.append((np.column_stack([pre, mobile, visits]), y))
    x_all = np.vstack([a[0] for a in arms])
    y_all = np.concatenate([a[1] for a in arms])
    xc = x_all - x_all.mean(axis=0)
    beta = np.linalg.lstsq(xc, y_all - y_all.mean(), rcond=None)[0]
    (xa, ya), (xb, yb) = arms
    expected = (yb.mean() - ya.mean()) - beta @ (xb.mean(axis=0) - xa.mean(axis=0))
    resid_var = [np.var(y - x @ beta, ddof=1) for x, y in arms]
    expected_se = np.sqrt(resid_var[0] / ya.size + resid_var[1] / yb.size)

    fields = combine_covariates(
        n=[[ya.size, yb.size]],
        metric_sum=[[ya.sum(), yb.sum()]],
        covariate_sums=[[xa.sum(axis=0), xb.sum(axis=0)]],
        covariate_cross=[[xa.T @ xa, xb.T @ xb]],
        covariate_metric=[[xa.T @ ya, xb.T @ yb]],
    )
    np.testing.assert_allclose(fields["beta"][0], beta, rtol=1e-9)
    stats = {
        arm: {
            **mean_stats(y),
            **{
                k: float(fields[k][0, j])
                for k in ("covariate_sum", "covariate_sum_squares", "sum_product_covariate")
            },
        }
        for j, (arm, (_, y)) in enumerate(zip(("control", "treatment"), arms, strict=True))
    }
    r = analyze(two_arm("mean", stats["control"], stats["treatment"], difference="absolute")).results[0]
    assert r.estimate == pytest.approx(expected, rel=1e-9)
    assert r.std_error == pytest.approx(expected_se, rel=1e-3)  # theta re-estimated per pair (=1 to 1e-12)
    one = analyze(two_arm("mean", mean_stats(ya, xa[:, 0]), mean_stats(yb, xb[:, 0]), difference="absolute"))
    assert r.std_error is not None and one.results[0].std_error is not None
    # residual variance 4 with all covariates vs 4 + 0.96 + 0.75 with the first only: sqrt ratio 0.84
    assert r.std_error < 0.87 * one.results[0].std_error
