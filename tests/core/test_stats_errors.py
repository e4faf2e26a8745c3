"""Bad input gives a typed error naming metric, variant and field; undefined statistics give `error`."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from dataeng_agents.core.errors import InputError
from dataeng_agents.core.stats import StatsInputError, analyze, power
from stats_helpers import run_cli, two_arm


def _prop(c: dict[str, Any], t: dict[str, Any], **settings: Any) -> dict[str, Any]:
    return two_arm("proportion", c, t, **settings)


OK = {"n": 2000, "sum": 200}  # above the default min_conversions (150)


@pytest.mark.parametrize(
    "inp,variant,field,words",
    [
        (_prop({"n": -5, "sum": 1}, OK), "control", "n", "negative"),
        (_prop(OK, {"n": 1000, "sum": 1001}), "treatment", "sum", "exceed n"),
        (_prop(OK, {"n": 1000, "sum": -1}), "treatment", "sum", "negative"),
        (_prop({"n": 1, "sum": 1}, OK), "control", "n", "at least 2"),
        (_prop({"n": 10.5, "sum": 1}, OK), "control", "n", "whole"),
        (_prop(OK, {"n": 1000}), "treatment", "sum", "required"),
        (
            two_arm(
                "mean",
                {"n": 100, "sum": 1000.0, "sum_squares": 5000.0},
                {"n": 100, "sum": 10.0, "sum_squares": 50.0},
            ),
            "control",
            "sum_squares",
            "negative variance",
        ),
        (
            two_arm(
                "mean",
                {"n": 100, "sum": 10.0, "sum_squares": 50.0, "covariate_sum": 1.0},
                {"n": 100, "sum": 10.0, "sum_squares": 50.0},
            ),
            "treatment",
            "covariate_sum",
            "CUPED",
        ),
        (
            two_arm(
                "mean",
                {
                    "n": 100,
                    "sum": 10.0,
                    "sum_squares": 50.0,
                    "covariate_sum": 10.0,
                    "covariate_sum_squares": 50.0,
                    "sum_product_covariate": 500.0,
                },
                {
                    "n": 100,
                    "sum": 10.0,
                    "sum_squares": 50.0,
                    "covariate_sum": 10.0,
                    "covariate_sum_squares": 50.0,
                    "sum_product_covariate": 40.0,
                },
            ),
            "control",
            "sum_product_covariate",
            "correlation",
        ),
        (
            two_arm(
                "ratio",
                {
                    "n": 100,
                    "sum": 10.0,
                    "sum_squares": 50.0,
                    "denominator_sum": 100,
                    "denominator_sum_squares": 100,
                    "sum_product_denominator": 10.0,
                },
                {
                    "n": 100,
                    "sum": 10.0,
                    "sum_squares": 50.0,
                    "denominator_sum": 100,
                    "denominator_sum_squares": 50,
                    "sum_product_denominator": 10.0,
                },
            ),
            "treatment",
            "denominator_sum_squares",
            "negative variance",
        ),
    ],
)
def test_bad_numbers_name_metric_variant_field(
    inp: dict[str, Any], variant: str, field: str, words: str
) -> None:
    with pytest.raises(StatsInputError) as info:
        analyze(inp)
    err = info.value
    assert isinstance(err, InputError)
    assert (err.metric, err.variant, err.stat_field) == ("m", variant, field)
    assert words in err.message
    assert str(err).startswith(f"metrics[m].stats.{variant}.{field}")


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nan_and_inf_are_rejected_by_field(bad: float) -> None:
    with pytest.raises(StatsInputError) as info:
        analyze(_prop(OK, {"n": 1000, "sum": bad}))
    assert (info.value.metric, info.value.variant, info.value.stat_field) == ("m", "treatment", "sum")


def test_unknown_and_missing_variants() -> None:
    inp = _prop(OK, OK)
    inp["metrics"][0]["stats"]["ghost"] = OK
    with pytest.raises(StatsInputError) as info:
        analyze(inp)
    assert info.value.variant == "ghost" and "unknown variant" in info.value.message
    inp = _prop(OK, OK)
    del inp["metrics"][0]["stats"]["treatment"]
    with pytest.raises(StatsInputError) as info:
        analyze(inp)
    assert info.value.variant == "treatment"
    with pytest.raises(StatsInputError, match="control"):
        analyze({**_prop(OK, OK), "control": "nobody"})


def test_strata_errors_name_the_stratum() -> None:
    inp = {
        "control": "control",
        "variants": [{"name": "control"}, {"name": "treatment"}],
        "metrics": [
            {
                "name": "m",
                "kind": "proportion",
                "strata": [
                    {"name": "a", "stats": {"control": OK, "treatment": OK}},
                    {"name": "b", "stats": {"control": OK, "treatment": {"n": 10, "sum": 11}}},
                ],
            }
        ],
    }
    with pytest.raises(StatsInputError) as info:
        analyze(inp)
    assert info.value.stat_field == "strata[1].sum" and info.value.variant == "treatment"


def test_srm_units_must_be_all_or_none() -> None:
    inp = _prop(OK, OK)
    inp["variants"][0]["units"] = 100
    with pytest.raises(StatsInputError, match=r"variants\[1\]\.units"):
        analyze(inp)


@pytest.mark.parametrize(
    "c,t,settings,words",
    [
        ({"n": 1000, "sum": 0}, {"n": 1000, "sum": 0}, {"difference": "absolute"}, "zero variance"),
        ({"n": 1000, "sum": 0}, {"n": 1000, "sum": 5}, {"difference": "relative"}, "control mean is 0"),
        ({"n": 1000, "sum": 1000}, {"n": 1000, "sum": 1000}, {"method": "bayesian"}, "zero variance"),
        (
            {"n": 1000, "sum": 0},
            {"n": 1000, "sum": 0},
            {"method": "sequential", "alternative": "less"},
            "control mean",
        ),
    ],
)
def test_undefined_statistics_give_error_and_nulls(
    c: dict[str, Any], t: dict[str, Any], settings: dict[str, Any], words: str, tmp_path: Path
) -> None:
    inp = _prop(c, t, **settings)
    inp["metrics"].append({"name": "fine", "kind": "proportion", "stats": {"control": OK, "treatment": OK}})
    code, out, err = run_cli(tmp_path, "analyze", inp)
    assert code == 0, err
    assert "NaN" not in out and "Infinity" not in out
    bad, fine = json.loads(out)["results"]
    assert words in bad["error"]
    assert all(bad[k] is None for k in ("estimate", "std_error", "ci", "p_value", "chance_to_win", "risk"))
    assert fine["error"] is None and fine["estimate"] == 0.0


def test_zero_ratio_denominator_is_an_error_result() -> None:
    z = {
        "n": 100,
        "sum": 0.0,
        "sum_squares": 0.0,
        "denominator_sum": 0.0,
        "denominator_sum_squares": 0.0,
        "sum_product_denominator": 0.0,
    }
    ok = {
        "n": 100,
        "sum": 50.0,
        "sum_squares": 80.0,
        "denominator_sum": 100.0,
        "denominator_sum_squares": 120.0,
        "sum_product_denominator": 60.0,
    }
    r = analyze(two_arm("ratio", z, ok, difference="absolute")).results[0]
    assert r.error is not None and "denominator" in r.error and r.estimate is None


@pytest.mark.parametrize(
    "text,words",
    [
        ("{not json", "not valid JSON"),
        (
            '{"control": "control", "variants": [{"name": "control"}, {"name": "t"}], "metrics": [{"name": "m", '
            '"kind": "proportion", "stats": {"control": {"n": NaN, "sum": 1}, "t": {"n": 10, "sum": 1}}}]}',
            "NaN",
        ),
        ("[1, 2]", "JSON object"),
        (
            '{"variants": [{"name": "control"}, {"name": "t"}], "settings": {"method": "magic"}}',
            "settings.method",
        ),
        (
            '{"variants": [{"name": "control"}, {"name": "t"}], "metrics": [{"name": "m", "kind": "median", "stats": {}}]}',
            "metrics[m].kind",
        ),
        (
            '{"variants": [{"name": "control"}, {"name": "t"}], "metrics": [{"name": "m", "kind": "mean", '
            '"stats": {"control": {"n": "ten"}, "t": {"n": 3}}}]}',
            "metrics[m].stats.control.n",
        ),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(text: str, words: str, tmp_path: Path) -> None:
    code, out, err = run_cli(tmp_path, "analyze", None, raw_text=text)
    assert code == 2
    assert out == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert words in err


def test_cli_missing_file_and_bad_power(tmp_path: Path) -> None:
    from dataeng_agents.core.cli import app
    from typer.testing import CliRunner

    res = CliRunner().invoke(app, ["stats", "analyze", str(tmp_path / "absent.json")])
    assert res.exit_code == 2 and "cannot read" in res.stderr
    code, _, err = run_cli(tmp_path, "power", {"kind": "mean", "baseline_mean": 3.0, "mde": 0.1})
    assert code == 2 and "baseline_variance" in err
    code, _, err = run_cli(tmp_path, "power", {"kind": "proportion", "baseline_mean": 1.5, "mde": 0.1})
    assert code == 2 and "baseline_mean" in err
    with pytest.raises(StatsInputError):
        power({"kind": "proportion", "baseline_mean": 0.1})


def test_sums_that_overflow_the_variance_are_a_typed_error_not_zero_variance() -> None:
    # Issue 13: sums of 1e200 reported "zero variance" (s*s overflowed to inf, the variance clamped to 0).
    from dataeng_agents.core.stats import StatsInputError, analyze

    inp = two_arm(
        "mean",
        {"n": 1000, "sum": 1e200, "sum_squares": 1e300},
        {"n": 1000, "sum": 1.1e200, "sum_squares": 1e300},
    )
    with pytest.raises(StatsInputError, match="overflows") as info:
        analyze(inp)
    assert (
        info.value.metric == "m"
        and info.value.variant == "control"
        and info.value.stat_field == "sum_squares"
    )
