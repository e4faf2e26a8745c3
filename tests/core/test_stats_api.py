"""The public API surface: models, array results, and the CLI under random garbage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from dataeng_agents.core.stats import (
    AnalysisInput,
    MetricInput,
    VariantInput,
    VariantStats,
    analyze,
    analyze_arrays,
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
        metrics=[MetricInput(name="m", kind="mean", stats={
            "a": VariantStats(n=500, sum=1000.0, sum_squares=9000.0),
            "b": VariantStats(n=520, sum=1100.0, sum_squares=9900.0)})],
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
    metrics = [{"name": f"m{i}", "kind": "proportion",
                "stats": {v: {"n": 1000, "sum": int(rng.integers(50, 150))} for v in names}} for i in range(50)]
    out = analyze({"control": "c", "variants": [{"name": v} for v in names], "metrics": metrics})
    assert [(r.metric, r.variant) for r in out.results][:4] == [("m0", "t1"), ("m0", "t2"), ("m0", "t3"), ("m1", "t1")]
    assert len(out.results) == 150


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(field=st.sampled_from(["n", "sum", "kind", "name", "stats", "settings", "variants", "control"]), value=JSON)
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
