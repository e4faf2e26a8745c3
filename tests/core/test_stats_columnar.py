"""The columnar API (``analyze_columns``): equal to the JSON path, the same typed errors, never NaN."""

from __future__ import annotations

import math
from typing import Any

import duckdb
import numpy as np
import pytest
from dataeng_agents.core.stats import (
    AnalysisInput,
    ColumnarResults,
    StatsInputError,
    analyze,
    analyze_columns,
)
from dataeng_agents.core.stats.engine import FIELDS, t_quantile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import special

KINDS = ("proportion", "mean", "ratio", "quantile")


@st.composite
def arm_stats(draw: st.DrawFn, kind: str, cuped: bool) -> dict[str, float]:
    n = draw(st.integers(2, 10**6))
    if kind == "proportion":
        out: dict[str, float] = {"n": n, "sum": draw(st.integers(0, n))}
        mu, sd = out["sum"] / n, 0.5
    elif kind == "quantile":
        q = draw(st.floats(-100, 100))
        lo, hi = draw(st.floats(0, 10)), draw(st.floats(0, 10))
        return {
            "n": n,
            "n_star": n * draw(st.floats(0.5, 1.0)),
            "quantile": q,
            "quantile_lower": q - lo,
            "quantile_upper": q + hi,
        }
    else:
        mu = draw(st.floats(-1e3, 1e3))
        sd = draw(st.just(0.0) | st.floats(1e-3, 1e3).map(lambda x: max(x, 1e-3 * abs(mu))))
        out = {"n": n, "sum": mu * n, "sum_squares": (sd * sd + mu * mu) * n}
        if kind == "ratio":
            md = draw(st.floats(0.5, 50))
            sdd, rho = md * draw(st.floats(0.01, 2)), draw(st.floats(-0.95, 0.95))
            out |= {
                "denominator_sum": md * n,
                "denominator_sum_squares": (sdd * sdd + md * md) * n,
                "sum_product_denominator": (rho * sd * sdd + mu * md) * n,
            }
    if cuped:
        rho = draw(st.floats(-0.95, 0.95))
        mx, sx = draw(st.floats(-100, 100)), draw(st.floats(0.01, 100))
        out |= {
            "covariate_sum": mx * n,
            "covariate_sum_squares": (sx * sx + mx * mx) * n,
            "sum_product_covariate": (rho * sd * sx + mu * mx) * n,
        }
    return out


@st.composite
def analyses(draw: st.DrawFn) -> dict[str, Any]:
    """A JSON-contract analysis input without strata (what the columnar API covers)."""
    n_var = draw(st.integers(2, 4))
    names = ["control", *(f"t{j}" for j in range(1, n_var))]
    control = draw(st.sampled_from(names))
    metrics = []
    for i in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(KINDS))
        cuped = kind in ("proportion", "mean") and draw(st.booleans())
        m: dict[str, Any] = {
            "name": f"metric_{i}",
            "kind": kind,
            "inverse": draw(st.booleans()),
            "stats": {v: draw(arm_stats(kind, cuped)) for v in names},
        }
        if kind == "quantile":
            m["quantile"] = draw(st.sampled_from([0.5, 0.9, 0.99]))
        metrics.append(m)
    method = draw(st.sampled_from(["frequentist", "sequential", "bayesian"]))
    prior = draw(
        st.none() | st.builds(lambda m, s: {"mean": m, "stddev": s}, st.floats(-1, 1), st.floats(0.01, 2))
    )
    variants: list[dict[str, Any]] = [{"name": v} for v in names]
    if draw(st.booleans()):
        for v in variants:
            v["units"] = draw(st.integers(0, 10**6))
    return {
        "control": control,
        "variants": variants,
        "settings": {
            "method": method,
            "alternative": draw(st.sampled_from(["two-sided", "greater", "less"])),
            "difference": draw(st.sampled_from(["relative", "absolute"])),
            "alpha": draw(st.sampled_from([0.01, 0.05, 0.1, 0.2])),
            "correction": draw(st.sampled_from(["none", "holm", "bh"])),
            "prior": prior if method == "bayesian" else None,
        },
        "metrics": metrics,
    }


def to_columns(inp: dict[str, Any], form: str) -> dict[str, Any]:
    """The same analysis as keyword arguments of analyze_columns; absent fields masked / None."""
    names = [v["name"] for v in inp["variants"]]
    metrics = inp["metrics"]
    present = sorted({f for m in metrics for v in names for f in m["stats"][v]}, key=FIELDS.index)
    stats: dict[str, Any] = {}
    for f in present:
        rows = [[m["stats"][v].get(f) for v in names] for m in metrics]
        if form == "lists":
            stats[f] = rows
        else:
            mask = np.array([[x is None for x in r] for r in rows])
            data = np.array([[0.0 if x is None else x for x in r] for r in rows], dtype=np.float64)
            grid = np.ma.MaskedArray(data, mask=mask) if mask.any() else data
            stats[f] = grid.ravel() if form == "flat" else grid
    kwargs: dict[str, Any] = {
        "metrics": [m["name"] for m in metrics],
        "variants": names,
        "kind": [m["kind"] for m in metrics],
        "control": inp["control"],
        "settings": inp.get("settings"),
        "inverse": [m.get("inverse", False) for m in metrics],
        "quantile": [m.get("quantile") for m in metrics],
    }
    if "units" in inp["variants"][0]:
        kwargs["units"] = [v["units"] for v in inp["variants"]]
    return {"stats": stats, **kwargs}


def assert_no_nan(res: ColumnarResults) -> None:
    for name in (
        "estimate",
        "std_error",
        "ci_lower",
        "ci_upper",
        "p_value",
        "adjusted_p_value",
        "chance_to_win",
        "risk_control",
        "risk_variant",
    ):
        grid = getattr(res, name)
        assert isinstance(grid, np.ma.MaskedArray) and grid.dtype == np.float64
        assert np.isfinite(grid.data).all(), name
        assert (grid.data[np.ma.getmaskarray(grid)] == 0.0).all(), name


def outcome(fn: Any) -> Any:
    try:
        return fn()
    except StatsInputError as exc:
        return ("error", str(exc), exc.metric, exc.variant, exc.stat_field)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inp=analyses(), form=st.sampled_from(["grid", "flat", "lists"]))
def test_columnar_equals_the_json_path(inp: dict[str, Any], form: str) -> None:
    row = outcome(lambda: analyze(inp))
    col = outcome(lambda: analyze_columns(**to_columns(inp, form)))
    if isinstance(row, tuple):
        assert col == row
        return
    assert isinstance(col, ColumnarResults)
    assert col.to_output() == row
    assert col.to_output().model_dump_json() == row.model_dump_json()
    assert_no_nan(col)
    # The grids themselves hold what the rows hold: masked exactly where a row has null.
    treatments = col.variant_names
    for r in row.results:
        at = (col.metric_names.index(r.metric), treatments.index(r.variant))
        pairs = [
            (col.estimate, r.estimate),
            (col.std_error, r.std_error),
            (col.p_value, r.p_value),
            (col.adjusted_p_value, r.adjusted_p_value),
            (col.chance_to_win, r.chance_to_win),
            (col.ci_lower, r.ci[0] if r.ci else None),
            (col.ci_upper, r.ci[1] if r.ci else None),
            (col.risk_control, r.risk.control if r.risk else None),
            (col.risk_variant, r.risk.variant if r.risk else None),
        ]
        for grid, value in pairs:
            if value is None:
                assert np.ma.getmaskarray(grid)[at]
            else:
                assert not np.ma.getmaskarray(grid)[at] and grid.data[at] == value
        assert col.error[at] == r.error
        assert (col.error_code[at] != 0) == (r.error is not None)


BAD_CELLS = [
    ("n", -5.0, "must not be negative"),
    ("n", 2.5, "must be a whole number of units"),
    ("n", 1.0, "must be at least 2 to estimate a variance"),
    ("n", math.nan, "Input should be a finite number"),
    ("sum", math.inf, "Input should be a finite number"),
    ("sum_squares", -1.0, "is impossible for this sum and n (it implies a negative variance)"),
]


@pytest.mark.parametrize(("field", "value", "message"), BAD_CELLS)
def test_a_bad_cell_is_named_by_metric_variant_and_field_as_in_the_json_path(
    field: str, value: float, message: str
) -> None:
    names = ["control", "a", "b"]
    metrics: list[dict[str, Any]] = [
        {
            "name": f"m{i}",
            "kind": "mean",
            "stats": {v: {"n": 100.0, "sum": 50.0, "sum_squares": 400.0} for v in names},
        }
        for i in range(4)
    ]
    metrics[2]["stats"]["b"][field] = value
    inp = {"control": "control", "variants": [{"name": v} for v in names], "metrics": metrics}
    with pytest.raises(StatsInputError) as col:
        analyze_columns(**to_columns(inp, "grid"))
    assert (col.value.metric, col.value.variant, col.value.stat_field) == ("m2", "b", field)
    assert message in str(col.value) and str(col.value).startswith("metrics[m2].stats.b." + field)
    with pytest.raises(StatsInputError) as row:
        analyze(inp)
    assert str(row.value) == str(col.value)


def test_proportion_sum_above_n_and_a_masked_required_field_are_named() -> None:
    n = np.array([[100.0, 100.0], [100.0, 100.0]])
    with pytest.raises(
        StatsInputError, match=r"metrics\[y\]\.stats\.t\.sum: a proportion's sum must not exceed n"
    ):
        analyze_columns(
            {"n": n, "sum": np.array([[10.0, 12.0], [10.0, 120.0]])},
            metrics=["x", "y"],
            variants=["control", "t"],
            kind="proportion",
        )
    ss = np.ma.MaskedArray(np.full((2, 2), 400.0), mask=[[False, False], [True, False]])
    with pytest.raises(StatsInputError, match=r"metrics\[y\]\.stats\.control\.sum_squares: is required"):
        analyze_columns(
            {"n": n, "sum": np.full((2, 2), 50.0), "sum_squares": ss},
            metrics=["x", "y"],
            variants=["control", "t"],
        )


@pytest.mark.parametrize(
    ("kwargs", "field", "fragment"),
    [
        ({"stats": {"n": np.full((2, 2), 10.0), "sum": np.ones((2, 3))}}, "sum", "must have shape"),
        (
            {"stats": {"n": np.full((2, 2), 10.0), "sum": np.ones((2, 2)), "summ": np.ones((2, 2))}},
            "summ",
            "is not a statistic",
        ),
        ({"stats": {"sum": np.ones((2, 2))}}, "n", "Field required"),
        ({"stats": {"n": [["a", 1], [2, 3]], "sum": np.ones((2, 2))}}, "n", "Input should be a valid number"),
        ({"metrics": ["x", "x"]}, "name", "metric name is used twice"),
        ({"control": "nope"}, "control", "is not one of the variants"),
        ({"kind": ["mean", "median"]}, "kind", "Input should be 'proportion'"),
        ({"settings": {"alpha": 2}}, "settings.alpha", "less than 1"),
        ({"units": [10, 20, 30]}, "units", "one value per variant"),
        ({"stats": [[1.0, 2.0]]}, "stats", "mapping of field name to grid"),
        ({"settings": "sequential"}, "settings", "valid dictionary"),
    ],
)
def test_bad_arguments_give_a_typed_error_naming_the_field(
    kwargs: dict[str, Any], field: str, fragment: str
) -> None:
    args: dict[str, Any] = {
        "stats": {"n": np.full((2, 2), 10.0), "sum": np.ones((2, 2)), "sum_squares": np.full((2, 2), 3.0)},
        "metrics": ["x", "y"],
        "variants": ["control", "t"],
    } | kwargs
    with pytest.raises(StatsInputError) as exc:
        analyze_columns(**args)
    assert exc.value.stat_field == field
    assert fragment in str(exc.value)


def test_undefined_statistic_is_an_error_string_and_masked_numbers() -> None:
    n = np.full((2, 2), 10.0)
    res = analyze_columns(
        {
            "n": n,
            "sum": np.array([[10.0, 10.0], [5.0, 6.0]]),
            "sum_squares": np.array([[10.0, 10.0], [40.0, 50.0]]),
        },
        metrics=["flat", "fine"],
        variants=["control", "t"],
    )
    assert res.error[0, 0] is not None and "zero variance" in res.error[0, 0]
    masked = {name: np.ma.getmaskarray(getattr(res, name)) for name in ("estimate", "p_value", "ci_lower")}
    assert masked["estimate"][0, 0] and masked["p_value"][0, 0] and masked["ci_lower"][0, 0]
    assert res.error[1, 0] is None and not masked["estimate"][1, 0]
    assert_no_nan(res)
    assert res.to_results()[0].error == res.error[0, 0] and res.to_results()[0].estimate is None


def test_duckdb_fetchnumpy_columns_analyse_like_the_json_path() -> None:
    rng = np.random.default_rng(3)
    y = rng.normal(10, 3, size=1200)
    x = y + rng.normal(0, 1, size=1200)  # a pre-period covariate correlated with the metric
    rows = [
        (
            f"m{k // 400}",
            ("control", "treatment")[(k // 200) % 2],
            float(y[k]),
            float(x[k]) if k // 400 != 1 else None,
        )
        for k in range(1200)
    ]
    con = duckdb.connect()
    con.execute("create table events(metric varchar, variant varchar, y double, x double)")
    con.executemany("insert into events values (?, ?, ?, ?)", rows)
    cols = con.execute("""
        select metric, variant, count(*)::double as n, sum(y) as sum, sum(y * y) as sum_squares,
               sum(x) as covariate_sum, sum(x * x) as covariate_sum_squares, sum(x * y) as sum_product_covariate
        from events group by metric, variant order by metric, variant = 'treatment'""").fetchnumpy()
    assert isinstance(cols["covariate_sum"], np.ma.MaskedArray)  # m1 has no covariate: NULL sums
    stats = {k: v for k, v in cols.items() if k not in ("metric", "variant")}
    res = analyze_columns(stats, metrics=["m0", "m1", "m2"], variants=["control", "treatment"])
    metrics = []
    for i, m in enumerate(["m0", "m1", "m2"]):
        per_variant = {}
        for j, v in enumerate(["control", "treatment"]):
            k = 2 * i + j
            per_variant[v] = {f: float(stats[f][k]) for f in stats if not np.ma.is_masked(stats[f][k])}
        metrics.append({"name": m, "kind": "mean", "stats": per_variant})
    row = analyze(
        {"control": "control", "variants": [{"name": "control"}, {"name": "treatment"}], "metrics": metrics}
    )
    assert res.to_output() == row
    unadjusted = analyze_columns(
        {f: stats[f] for f in ("n", "sum", "sum_squares")},
        metrics=["m0", "m1", "m2"],
        variants=["control", "treatment"],
    )
    assert res.std_error[0, 0] < 0.5 * unadjusted.std_error[0, 0]  # CUPED where the covariate is given
    assert res.std_error[1, 0] == unadjusted.std_error[1, 0]  # NULL covariate sums: no adjustment


@pytest.mark.parametrize("p", [0.6, 0.9, 0.95, 0.975, 0.995, 0.9995, 1 - 2.5e-4, 0.05, 0.025])
def test_t_quantile_equals_stdtrit(p: float) -> None:
    dof = np.concatenate([np.geomspace(1.0, 1e9, 20_000), [999.999, 1000.0, np.inf, np.nan]])
    ours, ref = t_quantile(dof, p), special.stdtrit(dof, p)
    finite = np.isfinite(ref)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
    np.testing.assert_allclose(ours[finite], ref[finite], rtol=1e-13, atol=0)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inp=analyses(), shuffle=st.randoms(use_true_random=False))
def test_json_readers_equal_the_model_path(inp: dict[str, Any], shuffle: Any) -> None:
    # The column-wise reader of uniform JSON, the general loop and pydantic models give one answer,
    # whatever order each metric's statistics are written in.
    for m in inp["metrics"]:
        for v, stats in m["stats"].items():
            keys = list(stats)
            shuffle.shuffle(keys)
            m["stats"][v] = {k: stats[k] for k in keys}
    assert outcome(lambda: analyze(inp)) == outcome(lambda: analyze(AnalysisInput.model_validate(inp)))
    uniform = {**inp, "metrics": [m for m in inp["metrics"] if m["kind"] != "quantile"]}
    assert outcome(lambda: analyze(uniform)) == outcome(
        lambda: analyze(AnalysisInput.model_validate(uniform))
    )
