"""analyze_experiment end to end on generated data: planted effects, A/A, health checks, decisions."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest
from dataeng_agents.core.errors import InputError, WarehouseError
from dataeng_agents.core.experiment import (
    ExperimentConfig,
    analyze_experiment,
    build_experiment_query,
    experiment_narration_task,
)
from dataeng_agents.core.experiment.aggregates import parse_rows
from dataeng_agents.core.experiment.decision import decide
from dataeng_agents.core.narrative import ExperimentNarrative, NarrationTask, TemplateNarrator
from dataeng_agents.core.report.model import HealthCheck, ResultRow, VariantSummary
from dataeng_agents.core.warehouse import DuckDBWarehouse
from dataeng_agents.core.warehouse.sample_data import generate
from test_experiment_support import demo_config, planted_config, sample


@pytest.fixture(scope="module")
def module_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("experiments")


def test_planted_effects_fall_inside_their_intervals(module_tmp: Path) -> None:
    s = sample(module_tmp, users=120_000, seed=7)
    report = analyze_experiment(planted_config(), DuckDBWarehouse(s.path))
    checked = 0
    for metric, truth in [("conversion", "conversion"), ("revenue", "revenue"), ("page_latency", "latency")]:
        for variant, lift in s.planted[truth].items():
            r = report.result(metric, variant)
            assert r.ci_lower is not None and r.ci_upper is not None
            assert r.ci_lower <= lift <= r.ci_upper, (
                f"{metric}/{variant}: true {lift:+.3f} outside {r.ci_lower:+.3f}..{r.ci_upper:+.3f}"
            )
            checked += 1
    assert checked == 6
    assert report.policy_problems("srm") == []
    (guardrail_problem,) = report.policy_problems("guardrail")
    assert "page_latency/recommendations" in guardrail_problem
    # the planted effects are detected, the null ones are not
    assert report.result("conversion", "one_click").significant
    assert report.result("revenue", "one_click").estimate > 0.05  # type: ignore[operator]  # uncapped: wide CI
    assert report.result("page_latency", "recommendations").direction == "worse"
    for r in report.results:
        if (r.metric, r.variant) in {
            ("average_order_value", "one_click"),
            ("sessions_per_user", "recommendations"),
        }:
            assert not r.significant and r.ci_lower is not None and r.ci_lower <= 0 <= (r.ci_upper or 0)
    assert report.decision.verdict == "ship" and report.decision.variant == "one_click"
    assert report.decision.per_variant == {"one_click": "ship", "recommendations": "do not ship"}
    assert [r.rule for r in report.decision.reasons] == ["D3", "D1"]
    assert {h.id: h.status for h in report.health}["guardrails"] == "fail"
    # CUPED narrows the (capped) revenue and conversion intervals compared with no covariate
    with_cuped = analyze_experiment(demo_config(), DuckDBWarehouse(s.path))
    raw = demo_config()
    for m in raw["metrics"]:
        m.pop("cuped", None)
    without = analyze_experiment(raw, DuckDBWarehouse(s.path))
    for metric in ("revenue", "conversion"):
        a, b = with_cuped.result(metric, "one_click"), without.result(metric, "one_click")
        assert a.cuped and not b.cuped
        assert (a.ci_upper - a.ci_lower) < 0.97 * (b.ci_upper - b.ci_lower)  # type: ignore[operator]


@pytest.mark.parametrize("seed", [21, 22, 23])
def test_aa_dataset_has_no_significant_goal_metric(module_tmp: Path, seed: int) -> None:
    s = sample(module_tmp, users=60_000, seed=seed, aa=True)
    report = analyze_experiment(demo_config(), DuckDBWarehouse(s.path))
    goals = [r for r in report.results if r.role == "goal"]
    assert len(goals) == 4
    assert not any(r.significant for r in goals), [(r.id, r.p_value) for r in goals]
    assert report.decision.verdict in ("keep running", "do not ship")
    assert {h.id: h.status for h in report.health}["srm"] == "pass"


def test_sufficient_statistics_match_a_row_level_computation(module_tmp: Path) -> None:
    """Recompute the control arm's sums from raw rows in numpy: first exposure, multi-variant
    exclusion, 7-day window, p99 cap (linear interpolation), ratio and CUPED cross products."""
    s = sample(module_tmp, users=3000, seed=5)
    cfg = ExperimentConfig.load(demo_config())
    q = build_experiment_query(cfg, "duckdb")
    agg = parse_rows(q, DuckDBWarehouse(s.path).query(q.sql()))
    con = duckdb.connect(s.path, read_only=True)
    ex = con.execute("SELECT unit_id, variant, epoch_us(exposed_at) FROM exposures").fetchall()
    orders = con.execute("SELECT unit_id, epoch_us(ordered_at), revenue FROM orders").fetchall()
    con.close()
    first: dict[int, int] = {}
    arms: dict[int, set[str]] = {}
    lo, hi = int(datetime(2024, 3, 1).timestamp() * 1e6), int(datetime(2024, 3, 15).timestamp() * 1e6)
    for uid, variant, ts in ex:
        if lo <= ts < hi:
            first[uid] = min(first.get(uid, ts), ts)
            arms.setdefault(uid, set()).add(variant)
    excluded = sum(1 for a in arms.values() if len(a) > 1)
    assert agg.excluded_units == excluded > 0
    week, month = 7 * 86400 * 10**6, 28 * 86400 * 10**6
    post: dict[int, list[float]] = {}
    pre: dict[int, list[float]] = {}
    for uid, ts, rev in orders:
        f = first.get(uid)
        if f is None or len(arms[uid]) > 1:
            continue
        if f <= ts < f + week:
            post.setdefault(uid, []).append(rev)
        elif f - month <= ts < f:
            pre.setdefault(uid, []).append(rev)
    analysed = [u for u in first if len(arms[u]) == 1]
    revenue = np.array([sum(post.get(u, [])) for u in analysed])
    cap = float(np.quantile(revenue, 0.99))
    control = [i for i, u in enumerate(analysed) if next(iter(arms[u])) == "control"]
    y = np.minimum(revenue[control], cap)
    x = np.minimum(np.array([sum(pre.get(analysed[i], [])) for i in control]), cap)
    conv = np.array([1.0 if post.get(analysed[i]) else 0.0 for i in control])
    n_orders = np.array([float(len(post.get(analysed[i], []))) for i in control])
    raw_rev = revenue[control]
    got = agg.overall.stats["control"]
    assert agg.overall.units["control"] == len(control)
    assert got["conversion"]["sum"] == conv.sum()
    assert got["conversion"]["covariate_sum"] == sum(1.0 for i in control if pre.get(analysed[i]))
    assert got["revenue"]["sum"] == pytest.approx(y.sum(), rel=1e-9)
    assert got["revenue"]["sum_squares"] == pytest.approx((y * y).sum(), rel=1e-9)
    assert got["revenue"]["covariate_sum"] == pytest.approx(x.sum(), rel=1e-9)
    assert got["revenue"]["sum_product_covariate"] == pytest.approx((x * y).sum(), rel=1e-9)
    aov = got["average_order_value"]
    assert aov["sum"] == pytest.approx(raw_rev.sum(), rel=1e-9)  # ratio numerators are not capped here
    assert aov["denominator_sum"] == n_orders.sum()
    assert aov["sum_product_denominator"] == pytest.approx((raw_rev * n_orders).sum(), rel=1e-9)


def test_srm_and_multiple_exposure_lead_to_investigate(tmp_path: Path) -> None:
    s = generate(tmp_path / "contaminated.duckdb", users=20_000, seed=3, multiple_exposure_rate=0.05)
    report = analyze_experiment(demo_config(), DuckDBWarehouse(s.path))
    checks = {h.id: h for h in report.health}
    assert checks["multiple_exposure"].status == "fail"
    assert checks["multiple_exposure"].value == pytest.approx(report.excluded_units / report.total_units)
    assert report.decision.verdict == "investigate" and report.decision.reasons[0].rule == "H2"

    clean = sample(tmp_path, users=20_000, seed=4)
    raw = demo_config()
    raw["variants"][0]["weight"] = 2  # the data is split 1:1:1, the config says 2:1:1
    report = analyze_experiment(raw, DuckDBWarehouse(clean.path))
    assert {h.id: h.status for h in report.health}["srm"] == "fail"
    assert report.decision.verdict == "investigate" and report.decision.reasons[0].rule == "H1"
    assert "check:srm" in report.decision.reasons[0].refs
    # the stop policies of both orchestrators read these
    (srm_problem,) = report.policy_problems("srm")
    assert srm_problem.startswith("Sample ratio") and "expected" in srm_problem


def test_empty_experiment_missing_variant_and_missing_table(module_tmp: Path) -> None:
    s = sample(module_tmp, users=3000, seed=5)
    wh = DuckDBWarehouse(s.path)
    with pytest.raises(InputError) as info:
        analyze_experiment(demo_config(), wh, data_interval=(datetime(2023, 1, 1), datetime(2023, 2, 1)))
    assert info.value.field == "assignment" and "no exposures" in info.value.message
    raw = demo_config()
    raw["variants"].append({"name": "ghost"})
    with pytest.raises(InputError) as info:
        analyze_experiment(raw, wh)
    assert info.value.field == "variants[3]" and "'ghost' has no exposed units" in info.value.message
    raw = demo_config()
    raw["sources"]["sessions"]["table"] = "page_views"
    with pytest.raises(WarehouseError) as werr:
        analyze_experiment(raw, wh)
    assert "page_views does not exist" in str(werr.value)
    with pytest.raises(WarehouseError):
        DuckDBWarehouse(module_tmp / "absent.duckdb")


def test_data_interval_restricts_exposures_and_events(module_tmp: Path) -> None:
    s = sample(module_tmp, users=20_000, seed=6)
    wh = DuckDBWarehouse(s.path)
    full = analyze_experiment(demo_config(), wh)
    start, end = datetime(2024, 3, 1), datetime(2024, 3, 8)
    part = analyze_experiment(demo_config(), wh, data_interval=(start, end))
    assert part.data_interval == (start.isoformat(), end.isoformat())
    assert 0.3 * full.total_units < part.total_units < 0.7 * full.total_units
    days = {p.day for ts in part.timeseries for p in ts.points}
    assert max(days) <= "2024-03-07" and min(days) >= "2024-03-01"
    # events after the interval's end are not read: late units have shorter windows, fewer orders
    assert part.result("revenue", "one_click").control_mean < full.result("revenue", "one_click").control_mean  # type: ignore[operator]
    # exposure day series is cumulative
    units = [p.units for p in full.timeseries[0].points]
    assert units == sorted(units) and units[-1] == full.total_units - full.excluded_units


def test_custom_narrator_is_used_and_template_is_deterministic(module_tmp: Path) -> None:
    s = sample(module_tmp, users=20_000, seed=6)
    seen: list[NarrationTask[Any]] = []

    class Recording:
        name = "recording"

        def narrate(self, task: NarrationTask[Any]) -> Any:
            seen.append(task)
            return ExperimentNarrative(headline="custom", summary="s")

    report = analyze_experiment(demo_config(), DuckDBWarehouse(s.path), narrator=Recording())
    assert report.narrative is not None and report.narrative.headline == "custom"
    task = seen[0]
    assert task.kind == "experiment" and task.subject_id == "checkout-2024-03"
    ids = {r["id"] for r in task.facts["results"]} | {h["id"] for h in task.facts["health"]}
    assert "conversion/one_click" in ids and "check:srm" in ids
    a = TemplateNarrator().narrate(experiment_narration_task(report))
    b = experiment_narration_task(report).template()
    assert a == b and a.headline
    for point in a.key_points:
        assert set(point.refs) <= ids


# ----------------------------------------------------------------------------------- decision rules


def _cfg(method: str = "sequential", planned: int | None = None) -> ExperimentConfig:
    raw = demo_config()
    raw["analysis"]["method"] = method
    if planned:
        raw["decision"]["planned_units_per_variant"] = planned
    return ExperimentConfig.load(raw)


def _row(metric: str, variant: str, role: str, direction: str = "flat", estimate: float = 0.0) -> ResultRow:
    return ResultRow(
        id=f"{metric}/{variant}",
        metric=metric,
        variant=variant,
        role=role,
        kind="mean",
        inverse=False,  # type: ignore[arg-type]
        control_mean=1.0,
        variant_mean=1.0,
        estimate=estimate,
        std_error=0.01,
        ci_lower=estimate - 0.02,
        ci_upper=estimate + 0.02,
        p_value=0.5,
        adjusted_p_value=None,
        chance_to_win=None,
        significant=direction != "flat",
        direction=direction,  # type: ignore[arg-type]
    )


def _variants(units: int) -> list[VariantSummary]:
    return [
        VariantSummary(
            name=n,
            is_control=n == "control",
            weight=1,
            units=units,
            expected_share=1 / 3,
            observed_share=1 / 3,
        )
        for n in ("control", "one_click", "recommendations")
    ]


def _health(**fail: bool) -> list[HealthCheck]:
    return [
        HealthCheck(id=i, name=i, status="fail" if fail.get(i) else "pass", message=i)
        for i in ("srm", "multiple_exposure", "pre_period_balance", "guardrails")
    ]


@pytest.mark.parametrize(
    ("method", "units", "one_click", "recs", "health", "verdict", "variant", "rules"),
    [
        # D3 ship (sequential may stop early); D1 a guardrail regression blocks the other arm
        (
            "sequential",
            100,
            [("conversion", "goal", "better", 0.1)],
            [("page_latency", "guardrail", "worse", 0.08)],
            {},
            "ship",
            "one_click",
            ["D3", "D1"],
        ),
        # two winners: the larger lift on the first goal is shipped
        (
            "sequential",
            100,
            [("conversion", "goal", "better", 0.05)],
            [("conversion", "goal", "better", 0.09)],
            {},
            "ship",
            "recommendations",
            ["D3", "D3"],
        ),
        # D2 a goal got worse
        (
            "sequential",
            100,
            [("conversion", "goal", "worse", -0.1)],
            [],
            {},
            "keep running",
            None,
            ["D2", "D6"],
        ),
        # D4 frequentist before the planned sample: peeking, keep running
        (
            "frequentist",
            100,
            [("conversion", "goal", "better", 0.1)],
            [],
            {},
            "keep running",
            None,
            ["D4", "D6"],
        ),
        # frequentist at the planned sample: ship
        (
            "frequentist",
            1000,
            [("conversion", "goal", "better", 0.1)],
            [],
            {},
            "ship",
            "one_click",
            ["D3", "D5"],
        ),
        # D5 planned sample reached, nothing moved
        ("sequential", 1000, [], [], {}, "do not ship", None, ["D5", "D5"]),
        # health failures win over everything: H1, H3
        (
            "sequential",
            1000,
            [("conversion", "goal", "better", 0.1)],
            [],
            {"srm": True},
            "investigate",
            None,
            ["H1", "D3", "D5"],
        ),
        ("sequential", 1000, [], [], {"pre_period_balance": True}, "investigate", None, ["H3", "D5", "D5"]),
        # a guardrail regression outranks a goal win in the same arm
        (
            "sequential",
            100,
            [("conversion", "goal", "better", 0.1), ("page_latency", "guardrail", "worse", 0.1)],
            [],
            {},
            "keep running",
            None,
            ["D1", "D6"],
        ),
    ],
)
def test_decision_rules(
    method: str,
    units: int,
    one_click: list[Any],
    recs: list[Any],
    health: dict[str, bool],
    verdict: str,
    variant: str | None,
    rules: list[str],
) -> None:
    rows = [_row(m, "one_click", role, d, e) for m, role, d, e in one_click]
    rows += [_row(m, "recommendations", role, d, e) for m, role, d, e in recs]
    rows += [_row("revenue", v, "goal") for v in ("one_click", "recommendations")]
    decision = decide(_cfg(method, planned=500), rows, _health(**health), _variants(units), 500)
    assert decision.verdict == verdict
    assert decision.variant == variant
    assert [r.rule for r in decision.reasons] == rules


def test_keep_running_without_a_plan_mentions_no_numbers_it_does_not_have() -> None:
    decision = decide(_cfg(), [_row("conversion", "one_click", "goal")], _health(), _variants(100), None)
    assert decision.per_variant["one_click"] == "keep running"
    assert "planned" not in decision.reasons[0].text


def test_planned_sample_from_goal_mde_reaches_do_not_ship_on_aa(module_tmp: Path) -> None:
    s = sample(module_tmp, users=60_000, seed=21, aa=True)
    raw = demo_config()
    raw["decision"]["planned_units_per_variant"] = 10_000
    report = analyze_experiment(raw, DuckDBWarehouse(s.path))
    assert report.planned_units_per_variant == 10_000
    assert {h.id: h.status for h in report.health}["sample_size"] == "pass"
    assert report.decision.verdict == "do not ship"
    assert all(r.rule == "D5" for r in report.decision.reasons)
    # without an explicit plan, the plan comes from the goals' MDE and the control baseline
    auto = analyze_experiment(demo_config(), DuckDBWarehouse(s.path))
    assert auto.planned_units_per_variant is not None and auto.planned_units_per_variant > 20_000


def test_bayesian_and_frequentist_methods_run(module_tmp: Path) -> None:
    s = sample(module_tmp, users=120_000, seed=7)
    for method in ("bayesian", "frequentist"):
        raw = planted_config()
        raw["analysis"]["method"] = method
        report = analyze_experiment(raw, DuckDBWarehouse(s.path))
        r = report.result("conversion", "one_click")
        assert r.significant and r.direction == "better"
        if method == "bayesian":
            assert r.chance_to_win is not None and r.chance_to_win > 0.95
        assert report.method == method


def test_timeseries_uses_sequential_bounds_that_shrink(module_tmp: Path) -> None:
    s = sample(module_tmp, users=120_000, seed=7)
    report = analyze_experiment(demo_config(), DuckDBWarehouse(s.path))
    series = next(t for t in report.timeseries if t.metric == "conversion" and t.variant == "one_click")
    widths = [
        p.ci_upper - p.ci_lower for p in series.points if p.ci_upper is not None and p.ci_lower is not None
    ]  # type: ignore[operator]
    assert len(widths) == 14 and widths[-1] < widths[0] / 2
    last = series.points[-1]
    main = report.result("conversion", "one_click")
    assert last.estimate == pytest.approx(main.estimate, rel=1e-9)  # the last day is the whole experiment
    assert timedelta(days=13) == datetime.fromisoformat(series.points[-1].day) - datetime.fromisoformat(
        series.points[0].day
    )
