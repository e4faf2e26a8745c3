"""The public API surface: models, array results, and the CLI under random garbage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from dataeng_agents.core.stats import (
    AnalysisInput,
    MetricInput,
    StatsInputError,
    VariantInput,
    VariantStats,
    analyze,
    analyze_arrays,
    analyze_columns,
)
from dataeng_agents.core.stats.engine import FIELDS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stats_helpers import run_cli, two_arm


def test_variant_stats_field_order_is_the_engine_layout() -> None:
    # The model path reads VariantStats.__dict__ positionally into the engine's field axis.
    assert tuple(VariantStats.model_fields) == FIELDS


def test_models_and_dicts_give_the_same_result() -> None:
    inp = AnalysisInput(
        control="a",
        variants=[VariantInput(name="a", units=500), VariantInput(name="b", units=520)],
        metrics=[
            MetricInput(
                name="m",
                kind="mean",
                stats={
                    "a": VariantStats(n=500, sum=1000.0, sum_squares=9000.0),
                    "b": VariantStats(n=520, sum=1100.0, sum_squares=9900.0),
                },
            )
        ],
    )
    assert analyze(inp) == analyze(inp.model_dump())
    arr = analyze_arrays(inp)
    r = analyze(inp).results[0]
    assert arr.estimate.shape == (1, 1) and arr.variant_names == ["b"]
    assert arr.estimate[0, 0] == r.estimate and arr.p_value[0, 0] == r.p_value
    assert r.id == "m/b"


def test_multi_arm_many_metrics_in_one_call() -> None:
    rng = np.random.default_rng(0)
    names = ["c", "t1", "t2", "t3"]
    metrics = [
        {
            "name": f"m{i}",
            "kind": "proportion",
            "stats": {v: {"n": 1000, "sum": int(rng.integers(50, 150))} for v in names},
        }
        for i in range(50)
    ]
    out = analyze({"control": "c", "variants": [{"name": v} for v in names], "metrics": metrics})
    assert [(r.metric, r.variant) for r in out.results][:4] == [
        ("m0", "t1"),
        ("m0", "t2"),
        ("m0", "t3"),
        ("m1", "t1"),
    ]
    assert len(out.results) == 150


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=12,
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    field=st.sampled_from(["n", "sum", "kind", "name", "stats", "settings", "variants", "control"]),
    value=JSON,
)
def test_cli_never_tracebacks_on_garbage(field: str, value: Any, tmp_path: Path) -> None:
    inp = two_arm("proportion", {"n": 100, "sum": 10}, {"n": 100, "sum": 12})
    if field in ("n", "sum"):
        inp["metrics"][0]["stats"]["treatment"][field] = value
    elif field in ("kind", "name", "stats"):
        inp["metrics"][0][field] = value
    else:
        inp[field] = value
    code, out, err = run_cli(tmp_path, "analyze", inp)
    assert code in (0, 2), err
    if code == 2:
        assert err.startswith("error: ") and err.count("\n") == 1
    else:
        assert "NaN" not in out and "Infinity" not in out
        json.loads(out)


def _two_proportions(c: tuple[int, int], t: tuple[int, int], **settings: Any) -> dict[str, Any]:
    return {
        "control": "control",
        "variants": [{"name": "control"}, {"name": "treatment"}],
        "settings": settings,
        "metrics": [
            {
                "name": "conv",
                "kind": "proportion",
                "stats": {"control": {"n": c[0], "sum": c[1]}, "treatment": {"n": t[0], "sum": t[1]}},
            }
        ],
    }


def test_results_are_ordinary_mutable_models() -> None:
    # Issue 12: results built without validation shared a frozenset as their fields-set, so an
    # assignment or model_copy(update=...) raised AttributeError: 'frozenset' object has no attribute 'add'.
    for method in ("frequentist", "bayesian"):
        out = analyze(_two_proportions((1000, 100), (1000, 130), method=method))
        first = out.results[0]
        first.error = "x"
        assert first.error == "x" and "error" in first.model_fields_set
        copy = out.results[0].model_copy(update={"p_value": 0.5, "metric": "other"})
        assert copy.p_value == 0.5 and copy.metric == "other" and first.metric == "conv"
        assert "metric" in copy.model_fields_set
        # Each result has its own fields-set (pydantic mutates it in place).
        two = analyze(
            {
                **_two_proportions((1000, 100), (1000, 130), method=method),
                "variants": [{"name": "control"}, {"name": "treatment"}, {"name": "t2"}],
                "metrics": [
                    {
                        "name": "conv",
                        "kind": "proportion",
                        "stats": {
                            v: {"n": 1000, "sum": 100 + i}
                            for i, v in enumerate(("control", "treatment", "t2"))
                        },
                    }
                ],
            }
        )
        assert two.results[0].model_fields_set is not two.results[1].model_fields_set
        if first.risk is not None:
            first.risk.control = 1.0
            assert first.risk.model_copy(update={"variant": 2.0}).variant == 2.0
        assert out.model_copy(update={"srm": None}).results[0] is first


def test_relative_interval_cannot_cross_minus_100_percent() -> None:
    # Issue 13: 11 vs 3 conversions gave [-136%, -11.4%] with the linear delta method.
    for method in ("frequentist", "sequential"):
        r = analyze(_two_proportions((1000, 11), (1000, 3), method=method, min_conversions=0)).results[0]
        assert r.ci is not None and r.ci[0] is not None and r.ci[1] is not None and r.estimate is not None
        assert -1.0 < r.ci[0] < r.estimate < r.ci[1]
        assert abs(r.estimate - (3 / 11 - 1)) < 1e-12
        gb = analyze(
            _two_proportions((1000, 11), (1000, 3), method=method, relative_method="delta", min_conversions=0)
        ).results[0]
        assert gb.ci is not None and gb.ci[0] is not None and gb.ci[0] < -1.0  # the convention it replaces


def test_relative_log_test_is_antisymmetric_in_the_arms() -> None:
    # Swapping the arms maps the lift L to 1/(1+L) - 1 and leaves the p-value unchanged (on the log
    # scale the statistic only changes sign); the linear delta method does not have this property.
    a = analyze(_two_proportions((5000, 160), (5000, 185), method="sequential")).results[0]
    b = analyze(_two_proportions((5000, 185), (5000, 160), method="sequential")).results[0]
    assert (
        a.p_value is not None and b.p_value is not None and a.estimate is not None and b.estimate is not None
    )
    assert abs(a.p_value - b.p_value) < 1e-12
    assert abs((1 + a.estimate) * (1 + b.estimate) - 1) < 1e-12
    assert a.ci is not None and b.ci is not None and a.ci[0] is not None and b.ci[1] is not None
    assert abs((1 + a.ci[0]) * (1 + b.ci[1]) - 1) < 1e-12


def test_below_the_minimum_counts_the_result_is_not_enough_data() -> None:
    few = analyze(_two_proportions((1000, 11), (1000, 3), method="sequential", min_conversions=150)).results[
        0
    ]
    assert few.error is not None and few.error.startswith("not enough data")
    assert few.estimate is None and few.p_value is None and few.ci is None
    # non-conversions count too (a 99.7% rate has 3 "failures")
    high = analyze(_two_proportions((1000, 997), (1000, 990), min_conversions=5)).results[0]
    assert high.error is not None and high.error.startswith("not enough data")
    enough = analyze(_two_proportions((10000, 1000), (10000, 1100), min_conversions=150)).results[0]
    assert enough.error is None and enough.p_value is not None
    units = analyze(
        two_arm(
            "mean",
            {"n": 50, "sum": 100.0, "sum_squares": 400.0},
            {"n": 500, "sum": 1100.0, "sum_squares": 4000.0},
            min_units=100,
        )
    ).results[0]
    assert units.error is not None and units.error.startswith("not enough data")


def test_analysis_plan_reduces_to_the_fixed_horizon_formula_and_runs_from_the_cli(tmp_path: Path) -> None:
    from dataeng_agents.core.stats import (
        analysis_mde,
        analysis_power,
        analysis_sample_size,
        sample_size_per_variant,
    )

    # A mean metric, absolute difference, fixed horizon, one test: the spotify-confidence formula
    # (which ignores the far rejection tail, so it may be one unit apart).
    kw: dict[str, Any] = {
        "kind": "mean",
        "baseline_mean": 10.0,
        "baseline_variance": 25.0,
        "mde": 0.5,
        "mde_type": "absolute",
    }
    ours = analysis_sample_size(method="frequentist", difference="absolute", tests=1, **kw)
    assert abs(ours - sample_size_per_variant(**kw)) <= 1
    # The sequential test with Holm over 6 needs more units; power grows with n; the MDE inverts power.
    seq = analysis_sample_size(method="sequential", tests=6, **kw)
    assert seq > ours
    p_lo = analysis_power(n_per_variant=seq // 2, method="sequential", tests=6, **kw)
    p_at = analysis_power(n_per_variant=seq, method="sequential", tests=6, **kw)
    assert p_lo < 0.8 <= p_at < 0.81
    mde = analysis_mde(
        kind="mean",
        baseline_mean=10.0,
        baseline_variance=25.0,
        n_per_variant=seq,
        mde_type="absolute",
        method="sequential",
        tests=6,
    )
    assert mde is not None and abs(mde - 0.5) < 0.01
    # Below the minimum conversions nothing is detectable.
    assert (
        analysis_power(
            kind="proportion", baseline_mean=0.01, mde=0.5, n_per_variant=5000, min_conversions=150
        )
        == 0.0
    )
    code, out, err = run_cli(
        tmp_path,
        "power",
        {
            "kind": "proportion",
            "baseline_mean": 0.05,
            "mde": 0.1,
            "mde_type": "relative",
            "method": "sequential",
            "tests": 6,
        },
    )
    assert code == 0, err
    got = json.loads(out)
    assert got["method"] == "sequential" and got["tests"] == 6 and got["power"] >= 0.8
    assert got["per_variant"] == analysis_sample_size(
        kind="proportion", baseline_mean=0.05, mde=0.1, tests=6, min_conversions=150
    )


def test_adjusted_intervals_agree_with_adjusted_verdicts() -> None:
    # Issue 13: "[+2.2%, +28%] not significant" - the verdict used the Holm p, the interval was unadjusted.
    rng = np.random.default_rng(8)
    names = ["control", "t1", "t2"]
    checked = 0
    for method in ("frequentist", "sequential"):
        for alternative in ("two-sided", "greater", "less"):
            for correction in ("holm", "bh"):
                for difference in ("relative", "absolute"):
                    metrics: list[dict[str, Any]] = [
                        {
                            "name": f"m{k}",
                            "kind": "proportion",
                            "stats": {
                                v: {
                                    "n": 20000,
                                    "sum": int(rng.binomial(20000, 0.05 * (1 + 0.06 * rng.normal()))),
                                }
                                for v in names
                            },
                        }
                        for k in range(6)
                    ]
                    inp: dict[str, Any] = {
                        "control": "control",
                        "variants": [{"name": v} for v in names],
                        "metrics": metrics,
                        "settings": {
                            "method": method,
                            "alternative": alternative,
                            "correction": correction,
                            "difference": difference,
                        },
                    }
                    out = analyze(inp)
                    for r in out.results:
                        assert (
                            r.adjusted_ci is not None and r.adjusted_p_value is not None and r.ci is not None
                        )
                        lo, hi = r.adjusted_ci
                        excludes = (lo is not None and lo > 0) or (hi is not None and hi < 0)
                        assert excludes == (r.adjusted_p_value < 0.05), (method, alternative, r)
                        # never narrower than the unadjusted interval
                        assert lo is None or r.ci[0] is None or lo <= r.ci[0] + 1e-12
                        assert hi is None or r.ci[1] is None or hi >= r.ci[1] - 1e-12
                        checked += 1
                    cols = analyze_columns(
                        {
                            "n": [[20000] * 3] * 6,
                            "sum": [[m["stats"][v]["sum"] for v in names] for m in metrics],
                        },
                        metrics=[m["name"] for m in metrics],
                        variants=names,
                        kind="proportion",
                        settings=inp["settings"],
                    )
                    assert cols.to_output() == out
    assert checked == 2 * 3 * 2 * 2 * 12
    plain = analyze(_two_proportions((1000, 200), (1000, 230))).results[0]
    assert plain.adjusted_ci is None and plain.control_mean == 0.2 and plain.variant_mean == 0.23


def test_non_inferiority_margin_tests_one_sided_against_the_margin() -> None:
    from scipy import stats as sps

    # 2% relative margin on a guardrail: a -0.5% lift with a tight interval is "not worse than -2%".
    c, t = {"n": 200000, "sum": 40000}, {"n": 200000, "sum": 39800}
    base = _two_proportions((c["n"], c["sum"]), (t["n"], t["sum"]), method="frequentist")
    base["metrics"].append(
        {
            "name": "latency",
            "kind": "proportion",
            "inverse": True,
            "margin": 0.02,
            "stats": {"control": c, "treatment": t},
        }
    )
    base["metrics"][0]["margin"] = 0.02
    conv, latency = analyze(base).results
    assert conv.ci is not None and conv.ci[1] is None and conv.ci[0] is not None and conv.ci[0] > -0.02
    assert conv.p_value is not None and conv.p_value < 0.05
    # by hand on the log scale: z = (log(pt/pc) - log(0.98)) / se
    pc, pt = 0.2, 0.199
    se = np.sqrt((1 - pc) / (pc * 200000) + (1 - pt) / (pt * 200000))
    assert conv.p_value == pytest.approx(sps.norm.sf((np.log(pt / pc) - np.log(0.98)) / se), rel=1e-4)
    # lower is better: H0 lift >= +2%; a -0.5% change is far from that
    assert latency.ci is not None and latency.ci[0] is None and latency.p_value is not None
    assert latency.p_value == pytest.approx(
        sps.norm.cdf((np.log(pt / pc) - np.log(1.02)) / se), rel=1e-3
    )  # t, dof 4e5
    # the same through the columnar API, and with a sequential test and Holm (adjusted interval vs margin)
    for chosen in ({"method": "frequentist"}, {"method": "sequential", "correction": "holm"}):
        inp = {**base, "settings": chosen}
        cols = analyze_columns(
            {"n": [[c["n"], t["n"]]] * 2, "sum": [[c["sum"], t["sum"]]] * 2},
            metrics=["conv", "latency"],
            variants=["control", "treatment"],
            kind="proportion",
            inverse=[False, True],
            margin=[0.02, 0.02],
            settings=chosen,
        )
        out = analyze(inp)
        assert cols.to_output() == out
        for r in out.results:
            if r.adjusted_ci is not None:
                lo, hi = r.adjusted_ci
                assert r.adjusted_p_value is not None
                assert ((lo is not None and lo > -0.02) or (hi is not None and hi < 0.02)) == (
                    r.adjusted_p_value < 0.05
                )
    bayes = {**base, "settings": {"method": "bayesian"}}
    with pytest.raises(StatsInputError, match="margin"):
        analyze(bayes)
