"""Hypothesis property tests of the statistics engine."""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import numpy as np
from dataeng_agents.core.stats import StatsInputError, analyze
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stats_helpers import two_arm

METHODS = st.sampled_from(["frequentist", "sequential", "bayesian"])
ALTERNATIVES = st.sampled_from(["two-sided", "greater", "less"])
DIFFS = st.sampled_from(["relative", "absolute"])


@st.composite
def proportion_arm(draw: st.DrawFn) -> dict[str, float]:
    n = draw(st.integers(2, 10**7))
    return {"n": n, "sum": draw(st.integers(0, n))}


@st.composite
def mean_arm(draw: st.DrawFn, cuped: bool = False) -> dict[str, float]:
    n = draw(st.integers(2, 10**6))
    mu = draw(st.floats(-1e3, 1e3))
    # Sums lose a variance far below the mean's square to cancellation; keep CV >= 1e-3 (or exactly 0).
    sd = draw(st.just(0.0) | st.floats(1e-3, 1e3).map(lambda x: max(x, 1e-3 * abs(mu))))
    out = {"n": n, "sum": mu * n, "sum_squares": (sd * sd + mu * mu) * n}
    if cuped:
        rho = draw(st.floats(-0.99, 0.99))
        mx, sx = draw(st.floats(-100, 100)), draw(st.floats(0.01, 100))
        out |= {
            "covariate_sum": mx * n,
            "covariate_sum_squares": (sx * sx + mx * mx) * n,
            "sum_product_covariate": (rho * sd * sx + mu * mx) * n,
        }
    return out


def _numbers(r: Any) -> list[float]:
    vals = [r.estimate, r.std_error, r.p_value, r.adjusted_p_value, r.chance_to_win]
    if r.ci is not None:
        vals += list(r.ci)
    if r.risk is not None:
        vals += [r.risk.control, r.risk.variant]
    return [v for v in vals if v is not None]


@settings(max_examples=300, deadline=None)
@given(c=proportion_arm(), t=proportion_arm(), method=METHODS, alt=ALTERNATIVES, diff=DIFFS)
def test_proportion_p_in_unit_interval_and_estimate_in_ci(
    c: Any, t: Any, method: str, alt: str, diff: str
) -> None:
    out = analyze(
        two_arm("proportion", c, t, method=method, alternative=alt, difference=diff, correction="holm")
    )
    r = out.results[0]
    assert all(math.isfinite(v) for v in _numbers(r))
    if r.error is not None:
        assert r.estimate is None and r.p_value is None
        return
    assert r.std_error is not None and r.std_error > 0 and r.ci is not None and r.estimate is not None
    lo, hi = r.ci
    assert (lo is None or lo <= r.estimate) and (hi is None or r.estimate <= hi)
    if method == "bayesian":
        assert r.p_value is None and r.chance_to_win is not None and 0 <= r.chance_to_win <= 1
        assert r.risk is not None and r.risk.control >= 0 and r.risk.variant >= 0
    else:
        assert r.p_value is not None and 0 <= r.p_value <= 1
        assert r.adjusted_p_value is not None and r.p_value <= r.adjusted_p_value <= 1


@settings(max_examples=200, deadline=None)
@given(c=mean_arm(cuped=True), t=mean_arm(cuped=True), method=METHODS)
def test_swapping_arms_negates_the_absolute_effect(c: Any, t: Any, method: str) -> None:
    ab = analyze(two_arm("mean", c, t, method=method, difference="absolute")).results[0]
    ba = analyze(two_arm("mean", t, c, method=method, difference="absolute")).results[0]
    assert (ab.error is None) == (ba.error is None)
    if ab.error is not None:
        return
    assert ab.estimate is not None and ba.estimate is not None
    assert math.isclose(
        ab.estimate, -ba.estimate, rel_tol=1e-9, abs_tol=1e-9 * (abs(ab.std_error or 0) + 1e-300)
    )
    assert math.isclose(ab.std_error or 0, ba.std_error or 0, rel_tol=1e-9)
    if method != "bayesian":
        assert math.isclose(ab.p_value or 0, ba.p_value or 0, rel_tol=1e-7, abs_tol=1e-12)


@settings(max_examples=200, deadline=None)
@given(c=mean_arm(), t=mean_arm(), k=st.floats(1e-3, 1e4), method=METHODS, alt=ALTERNATIVES)
def test_scaling_a_metric_leaves_relative_results_unchanged(
    c: Any, t: Any, k: float, method: str, alt: str
) -> None:
    def scale(a: dict[str, float]) -> dict[str, float]:
        return {"n": a["n"], "sum": a["sum"] * k, "sum_squares": a["sum_squares"] * k * k}

    base = analyze(two_arm("mean", c, t, method=method, alternative=alt)).results[0]
    scaled = analyze(two_arm("mean", scale(c), scale(t), method=method, alternative=alt)).results[0]
    if base.error is not None or scaled.error is not None:
        return
    a, b = _numbers(base), _numbers(scaled)
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-9), (x, y)


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**9), 10**9)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=25,
)

VALID = {
    "control": "control",
    "variants": [
        {"name": "control", "units": 100, "weight": 0.5},
        {"name": "treatment", "units": 110, "weight": 0.5},
    ],
    "settings": {"method": "frequentist"},
    "metrics": [
        {
            "name": "p",
            "kind": "proportion",
            "stats": {"control": {"n": 100, "sum": 10}, "treatment": {"n": 110, "sum": 14}},
        },
        {
            "name": "m",
            "kind": "mean",
            "stats": {
                "control": {"n": 100, "sum": 50.0, "sum_squares": 60.0},
                "treatment": {"n": 110, "sum": 58.0, "sum_squares": 70.0},
            },
        },
    ],
}


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


PATHS = _paths(VALID)[1:]


def _check_no_traceback(inp: Any) -> None:
    try:
        out = analyze(inp)
    except StatsInputError as exc:
        assert str(exc)
        return
    text = out.model_dump_json()
    assert "NaN" not in text and "Infinity" not in text
    json.loads(text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(garbage=JSON)
def test_random_garbage_gives_a_typed_error(garbage: Any) -> None:
    _check_no_traceback(garbage)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(PATHS), value=JSON)
def test_a_garbage_value_anywhere_in_valid_input_gives_a_typed_error(
    path: tuple[Any, ...], value: Any
) -> None:
    inp = copy.deepcopy(VALID)
    node: Any = inp
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    _check_no_traceback(inp)


@settings(max_examples=200, deadline=None)
@given(c=mean_arm(), t=mean_arm(), n_bad=st.sampled_from([0, 1, -3, 2.5, 1e300]))
def test_extreme_numbers_never_leak_nan(c: Any, t: Any, n_bad: float) -> None:
    inp = two_arm("mean", c, t)
    inp["metrics"][0]["stats"]["treatment"]["n"] = n_bad
    _check_no_traceback(inp)
    _check_no_traceback(two_arm("mean", c, t))
    arr = np.array([c["sum_squares"], t["sum_squares"]])
    assert np.all(np.isfinite(arr))


@settings(max_examples=150, deadline=None)
@given(
    c=mean_arm(cuped=True),
    t=mean_arm(cuped=True),
    u=mean_arm(cuped=True),
    method=METHODS,
    diff=DIFFS,
    strata=st.booleans(),
)
def test_json_fast_path_equals_the_pydantic_model_path(
    c: Any, t: Any, u: Any, method: str, diff: str, strata: bool
) -> None:
    from dataeng_agents.core.stats import AnalysisInput

    stats = {"control": c, "treatment": t, "other": u}
    metric: dict[str, Any] = {"name": "m", "kind": "mean"}
    if strata:
        metric["strata"] = [
            {"name": "a", "stats": stats},
            {"name": "b", "stats": {"control": t, "treatment": u, "other": c}},
        ]
    else:
        metric["stats"] = stats
    raw = {
        "control": "control",
        "variants": [{"name": "control"}, {"name": "treatment"}, {"name": "other"}],
        "settings": {"method": method, "difference": diff},
        "metrics": [metric, {**metric, "name": "m2"}],
    }
    try:
        fast = analyze(raw).model_dump()
    except StatsInputError as exc:
        fast_err = str(exc)
        try:
            analyze(AnalysisInput.model_validate(raw))
        except StatsInputError as exc2:
            assert str(exc2) == fast_err
            return
        raise AssertionError("the model path accepted what the fast path rejected") from None
    assert analyze(AnalysisInput.model_validate(raw)).model_dump() == fast
