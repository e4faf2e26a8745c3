"""Guarded rollout: the sequential decision engine, its planning helpers and the seeded simulation."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import numpy as np
import pytest
from dataeng_agents.core.errors import ConfigError
from dataeng_agents.core.lifecycle.config import LifecycleConfig, RolloutPlan
from dataeng_agents.core.lifecycle.rollout import (
    ADVANCE,
    HARM,
    HOLD,
    INCONCLUSIVE,
    INSUFFICIENT,
    NON_INFERIOR,
    ROLL_BACK,
    GuardrailRule,
    SimulatedGuardrail,
    StageStats,
    build_decision,
    decide,
    detectable_regression,
    evaluate_guardrails,
    simulate_rollouts,
    suggest_tuning,
)
from dataeng_agents.core.lifecycle.sequential import always_valid_p_value, cs_halfwidth, sequential_rho
from warehouse_copy import copy_duckdb_to_postgres

STAGES = [{"percent": p, "min_duration": "24h"} for p in (1, 5, 20, 50, 100)]
UNITS_PER_HOUR = 10_000.0
CONVERSION = GuardrailRule("conversion", "proportion", higher_is_better=True, tolerance=0.0)
REVENUE = GuardrailRule("revenue", "mean", higher_is_better=True, tolerance=0.0)


def _plan(**kw: object) -> RolloutPlan:
    base: dict[str, object] = {
        "stages": STAGES,
        "guardrails": [{"metric": "conversion"}, {"metric": "revenue"}],
    }
    base.update(kw)
    return RolloutPlan.model_validate(base)


def test_halfwidth_matches_the_published_formula() -> None:
    alpha, tuning, n, var = 0.05, 5000.0, 12_345.0, 0.0004
    rho = math.sqrt((-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / tuning)
    assert float(sequential_rho(alpha, tuning)) == pytest.approx(rho, rel=1e-12)
    s2 = var * n
    expected = math.sqrt(s2) * math.sqrt(
        2 * (n * rho**2 + 1) * math.log(math.sqrt(n * rho**2 + 1) / alpha) / (n * rho) ** 2
    )
    assert float(cs_halfwidth(var, n, alpha, tuning)) == pytest.approx(expected, rel=1e-12)
    # the always-valid p-value crosses alpha exactly where the null leaves the sequence
    hw = expected
    assert float(always_valid_p_value(hw * 1.001, var, n, alpha, tuning)) < alpha
    assert float(always_valid_p_value(hw * 0.999, var, n, alpha, tuning)) > alpha
    assert math.isnan(float(cs_halfwidth(0.0, n, alpha, tuning)))


def _one_stage(n_t: float, m_t: float, n_c: float, m_c: float, sd: float) -> StageStats:
    def ss(n: float, m: float) -> float:
        return (n - 1) * sd**2 + n * m * m

    return StageStats(
        n_t=np.array([[n_t]]),
        sum_t=np.array([[n_t * m_t]]),
        ss_t=np.array([[ss(n_t, m_t)]]),
        n_c=np.array([[n_c]]),
        sum_c=np.array([[n_c * m_c]]),
        ss_c=np.array([[ss(n_c, m_c)]]),
    )


def test_single_stage_lift_and_delta_variance_match_a_direct_computation() -> None:
    st = _one_stage(5000, 10.5, 5000, 10.0, 4.0)
    ev = evaluate_guardrails(st, [REVENUE], alpha=0.05, tuning=5000, min_units=100)
    lift = 0.5 / 10.0
    var = (16 / 5000) / 100 + 10.5**2 * (16 / 5000) / 10**4
    assert ev.lift[0] == pytest.approx(lift)
    assert ev.std_error[0] == pytest.approx(math.sqrt(var))
    hw = float(cs_halfwidth(var, 10_000, 0.05, 5000))
    assert (ev.lower[0], ev.upper[0]) == pytest.approx((lift - hw, lift + hw))
    assert ev.status[0] == NON_INFERIOR


def test_lower_is_better_metrics_are_oriented() -> None:
    latency = GuardrailRule("latency", "mean", higher_is_better=False, tolerance=0.01)
    st = _one_stage(20_000, 110.0, 20_000, 100.0, 30.0)  # +10% latency: harm
    ev = evaluate_guardrails(st, [latency], alpha=0.05, tuning=5000, min_units=100)
    assert ev.lift[0] == pytest.approx(0.10)
    assert ev.lower[0] > 0.01 and ev.status[0] == HARM


def test_stage_weighting_removes_a_time_trend_that_fools_the_pooled_comparison() -> None:
    # Metric level doubles between stages; allocation 1% then 50%; no true effect.
    rng = np.random.default_rng(3)
    n = np.array([200_000.0, 200_000.0])
    share = np.array([0.01, 0.5])
    level = np.array([10.0, 20.0])
    n_t = np.round(n * share)
    n_c = n - n_t
    sd = 5.0
    m_t = level + rng.standard_normal(2) * sd / np.sqrt(n_t)
    m_c = level + rng.standard_normal(2) * sd / np.sqrt(n_c)
    st = StageStats(
        n_t=n_t[:, None],
        sum_t=(n_t * m_t)[:, None],
        ss_t=((n_t - 1) * sd**2 + n_t * m_t**2)[:, None],
        n_c=n_c[:, None],
        sum_c=(n_c * m_c)[:, None],
        ss_c=((n_c - 1) * sd**2 + n_c * m_c**2)[:, None],
    )
    ev = evaluate_guardrails(st, [REVENUE], alpha=0.05, tuning=5000, min_units=100)
    pooled = (n_t * m_t).sum() / n_t.sum() / ((n_c * m_c).sum() / n_c.sum()) - 1
    assert abs(pooled) > 0.2  # Simpson: the pooled comparison sees a large fake lift
    assert abs(ev.lift[0]) < 0.01 and ev.lower[0] < 0 < ev.upper[0]


def test_too_few_units_is_insufficient_not_harm() -> None:
    st = _one_stage(50, 5.0, 5000, 10.0, 1.0)
    ev = evaluate_guardrails(st, [REVENUE], alpha=0.05, tuning=5000, min_units=100)
    assert ev.status[0] == INSUFFICIENT and math.isnan(ev.lift[0])


@pytest.mark.parametrize(
    ("statuses", "complete", "srm", "rule", "expected"),
    [
        ([NON_INFERIOR, HARM], True, False, "no_harm", ROLL_BACK),
        ([HARM, HARM], False, True, "no_harm", ROLL_BACK),
        ([INCONCLUSIVE, NON_INFERIOR], True, False, "no_harm", ADVANCE),
        ([INCONCLUSIVE, NON_INFERIOR], True, False, "non_inferiority", HOLD),
        ([NON_INFERIOR, NON_INFERIOR], True, False, "non_inferiority", ADVANCE),
        ([NON_INFERIOR, NON_INFERIOR], False, False, "no_harm", HOLD),
        ([NON_INFERIOR, NON_INFERIOR], True, True, "no_harm", HOLD),
        ([INSUFFICIENT, NON_INFERIOR], True, False, "no_harm", HOLD),
    ],
)
def test_decision_table(statuses: list[int], complete: bool, srm: bool, rule: str, expected: int) -> None:
    got = decide(np.array([statuses]), np.array([complete]), np.array([srm]), rule)  # type: ignore[arg-type]
    assert int(got[0]) == expected


def test_build_decision_explains_a_roll_back() -> None:
    plan = _plan(stages=STAGES[:3])
    stats = StageStats.zeros((3, 2))
    harm = _one_stage(30_000, 9.0, 30_000, 10.0, 3.0)
    for name in ("n_t", "sum_t", "ss_t", "n_c", "sum_c", "ss_c"):
        getattr(stats, name)[1, :] = getattr(harm, name)[0, 0]
    d = build_decision(
        experiment_id="exp",
        plan=plan,
        rules=[CONVERSION.__class__("conversion", "mean"), REVENUE],
        stage=2,
        stats=stats,
        checked_at=datetime(2026, 1, 2, tzinfo=UTC),
        stage_started_at=datetime(2026, 1, 1, tzinfo=UTC),
        stage_hours=5.0,
    )
    assert d.decision == "roll back"
    assert any("regressed" in r for r in d.reasons)
    assert (
        d.guardrails[1].status == "harm" and d.guardrails[1].ci[1] is not None and d.guardrails[1].ci[1] < 0
    )
    assert d.summary()["harmful_guardrails"] == ["conversion", "revenue"]


def test_rollout_config_errors_name_the_path() -> None:
    with pytest.raises(ConfigError) as err:
        LifecycleConfig.load(
            {"rollout": {"stages": [{"percent": 5}, {"percent": 1}], "guardrails": [{"metric": "x"}]}}
        )
    assert err.value.field == "rollout.stages"
    with pytest.raises(ConfigError) as err:
        LifecycleConfig.load(
            {"rollout": {"stages": [{"percent": 5, "min_duration": "soon"}], "guardrails": [{"metric": "x"}]}}
        )
    assert err.value.field == "rollout.stages[0].min_duration"
    with pytest.raises(ConfigError) as err:
        LifecycleConfig.load(
            {"rollout": {"stages": [{"percent": 5}], "guardrails": [{"metric": "x", "tolerance": -1}]}}
        )
    assert err.value.field == "rollout.guardrails[0].tolerance"


def _simulate(
    true_lift: float, seed: int, *, sequential: bool = True
) -> tuple[object, list[float], RolloutPlan]:
    plan0 = _plan()
    plan = _plan(sequential_tuning=suggest_tuning(plan0, UNITS_PER_HOUR))
    detectable = detectable_regression(
        plan, CONVERSION, baseline_mean=0.10, baseline_sd=None, units_per_hour=UNITS_PER_HOUR
    )
    sim = simulate_rollouts(
        plan,
        [SimulatedGuardrail(CONVERSION, 0.10, None, true_lift), SimulatedGuardrail(REVENUE, 25.0, 60.0, 0.0)],
        units_per_hour=UNITS_PER_HOUR,
        hours=168,
        check_every=1,
        n_rollouts=2000,
        # traffic peaks in the evening and sags at night
        hourly_profile=list(1.0 + 0.5 * np.sin(np.arange(24) / 24 * 2 * np.pi)),
        seed=seed,
        sequential=sequential,
    )
    return sim, detectable, plan


@pytest.mark.slow
def test_simulated_rollouts_false_alarm_and_detection_rates(capsys: pytest.CaptureFixture[str]) -> None:
    null, _, _ = _simulate(0.0, seed=20261127)
    harm, detectable, _ = _simulate(-0.05, seed=20261128)
    stage = next(
        i for i, d in enumerate(detectable) if d <= 0.05
    )  # first stage planned to see a 5% regression
    by_stage = harm.rolled_back_by_stage  # type: ignore[attr-defined]
    with capsys.disabled():
        print(
            f"\n[rollout simulation] 2000 rollouts x 168 hourly checks: no harm -> roll back "
            f"{null.rollback_rate:.2%} (completed {null.completed_rate:.2%}); "  # type: ignore[attr-defined]
            f"5% conversion regression -> rolled back by end of stage {stage + 1} "
            f"({STAGES[stage]['percent']}%, planned detectable {detectable[stage]:.2%}): {by_stage[stage]:.2%}; "
            f"by stage {[f'{x:.1%}' for x in by_stage]}"
        )
    assert null.rollback_rate <= 0.05  # type: ignore[attr-defined]
    assert null.completed_rate >= 0.9  # type: ignore[attr-defined]
    assert by_stage[stage] >= 0.90
    # the regression is not caught at 1% in the first day: that stage has too few units
    assert by_stage[0] < 0.5


@pytest.mark.slow
def test_fixed_horizon_intervals_checked_hourly_inflate_false_alarms(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The same no-harm rollouts (same seed) judged with a fixed-horizon z interval at every check."""
    null, _, _ = _simulate(0.0, seed=20261127)
    naive, _, _ = _simulate(0.0, seed=20261127, sequential=False)
    with capsys.disabled():
        print(
            f"\n[rollout simulation] no harm, 168 hourly checks: fixed-horizon z interval rolls back "
            f"{naive.rollback_rate:.2%}, the confidence sequence {null.rollback_rate:.2%}"  # type: ignore[attr-defined]
        )
    assert naive.rollback_rate > 0.10  # type: ignore[attr-defined]
    assert naive.rollback_rate > 5 * null.rollback_rate  # type: ignore[attr-defined]


# ------------------------------------------------------------------------ real checks on the warehouse
from datetime import timedelta  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from dataeng_agents.core.commands.lifecycle import (  # noqa: E402
    RolloutCallback,
    TableDecisionCallback,
    rollout_check,
    write_lifecycle_report,
)
from dataeng_agents.core.errors import InputError  # noqa: E402
from dataeng_agents.core.lifecycle.demo_data import (  # noqa: E402
    RolloutTruth,
    generate_rollout_data,
    rollout_demo_config,
)


@pytest.fixture(scope="module")
def no_harm(tmp_path_factory: pytest.TempPathFactory) -> tuple[RolloutTruth, dict[str, Any]]:
    path = str(tmp_path_factory.mktemp("rollout") / "ok.duckdb")
    truth = generate_rollout_data(path, seed=21)
    return truth, rollout_demo_config(truth, path)


@pytest.fixture(scope="module")
def harmful(tmp_path_factory: pytest.TempPathFactory) -> tuple[RolloutTruth, dict[str, Any]]:
    path = str(tmp_path_factory.mktemp("rollout") / "harm.duckdb")
    truth = generate_rollout_data(path, seed=22, conversion_lift=-0.30)
    return truth, rollout_demo_config(truth, path)


def test_rollout_check_holds_then_advances_without_harm(no_harm: tuple[RolloutTruth, dict[str, Any]]) -> None:
    truth, cfg = no_harm
    early = rollout_check(cfg, 1, now=truth.start + timedelta(hours=10))
    assert early.decision == "hold"
    assert {g.status for g in early.guardrails} == {"insufficient data"}
    done = rollout_check(cfg, 1, now=truth.start + timedelta(hours=25))
    assert done.decision == "advance" and done.next_stage_percent == 5
    assert done.summary()["next_stage_percent"] == 5
    mid = rollout_check(cfg, 2, now=truth.start + timedelta(hours=30))
    assert mid.decision == "hold" and any("minimum 24.0 h" in r for r in mid.reasons)
    assert mid.stage_hours == pytest.approx(6.0)
    assert all(g.status in ("inconclusive", "non-inferior") for g in mid.guardrails)
    assert mid.narrative is not None and mid.narrative["headline"].startswith("Hold stage 2")


def test_rollout_check_rolls_back_a_harmful_feature(harmful: tuple[RolloutTruth, dict[str, Any]]) -> None:
    truth, cfg = harmful
    d = rollout_check(cfg, 3, now=truth.start + timedelta(hours=62))
    assert d.decision == "roll back"
    conv = next(g for g in d.guardrails if g.metric == "conversion")
    assert conv.status == "harm" and conv.ci[1] is not None and conv.ci[1] < 0
    assert (
        conv.lift is not None and conv.ci[0] is not None and conv.ci[0] < -0.30 < conv.ci[1]
    )  # covers the truth
    eng = next(g for g in d.guardrails if g.metric == "engagement_minutes")
    assert eng.status != "harm"
    assert d.srm_p_value is not None and d.srm_p_value > 0.001


def test_now_hides_later_data(harmful: tuple[RolloutTruth, dict[str, Any]]) -> None:
    truth, cfg = harmful
    a = rollout_check(cfg, 3, now=truth.start + timedelta(hours=52))
    b = rollout_check(cfg, 3, now=truth.start + timedelta(hours=62))
    assert a.stage_units["treatment"] < b.stage_units["treatment"]
    again = rollout_check(cfg, 3, now=truth.start + timedelta(hours=52))  # a backfill reproduces the decision
    assert (again.decision, again.stage_units, again.reasons) == (a.decision, a.stage_units, a.reasons)
    assert [x for g in again.guardrails for x in g.ci] == pytest.approx(
        [x for g in a.guardrails for x in g.ci], rel=1e-9
    )


def test_stage_start_follows_the_given_time(no_harm: tuple[RolloutTruth, dict[str, Any]]) -> None:
    truth, cfg = no_harm
    late_start = truth.start + timedelta(hours=28)
    d = rollout_check(cfg, 2, now=truth.start + timedelta(hours=40), stage_started_at=late_start)
    assert d.stage_started_at == late_start.replace(
        tzinfo=d.stage_started_at.tzinfo if d.stage_started_at else None
    )
    assert d.stage_hours == pytest.approx(12.0)


def test_rollout_errors(no_harm: tuple[RolloutTruth, dict[str, Any]]) -> None:
    truth, cfg = no_harm
    with pytest.raises(InputError) as err:
        rollout_check(cfg, 9, now=truth.start + timedelta(hours=10))
    assert err.value.field == "stage"
    with pytest.raises(InputError) as err:
        rollout_check(cfg, 3, now=truth.start + timedelta(hours=10))
    assert err.value.field == "now"
    bad = dict(cfg)
    bad["rollout"] = {**cfg["rollout"], "guardrails": [{"metric": "typo"}]}
    with pytest.raises(ConfigError) as cerr:
        rollout_check(bad, 1, now=truth.start + timedelta(hours=10))
    assert cerr.value.field == "rollout.guardrails[0].metric"
    with pytest.raises(ConfigError) as cerr:
        rollout_check({k: v for k, v in cfg.items() if k != "rollout"}, 1)
    assert cerr.value.field == "rollout"


def test_single_balanced_stage_matches_the_stats_engine() -> None:
    from dataeng_agents.core.stats import analyze

    n, mt, mc, sd = 8000, 10.4, 10.0, 3.0

    def ss(m: float) -> float:
        return (n - 1) * sd**2 + n * m * m

    st = _one_stage(n, mt, n, mc, sd)
    ev = evaluate_guardrails(st, [REVENUE], alpha=0.05, tuning=5000, min_units=100)
    out = analyze(
        {
            "control": "control",
            "variants": [{"name": "control"}, {"name": "treatment"}],
            "settings": {
                "method": "sequential",
                "difference": "relative",
                "alpha": 0.05,
                "sequential_tuning": 5000,
                "relative_method": "delta",  # the rollout engine's linear delta method
            },
            "metrics": [
                {
                    "name": "revenue",
                    "kind": "mean",
                    "stats": {
                        "control": {"n": n, "sum": n * mc, "sum_squares": ss(mc)},
                        "treatment": {"n": n, "sum": n * mt, "sum_squares": ss(mt)},
                    },
                }
            ],
        }
    )
    r = out.results[0]
    assert ev.lift[0] == pytest.approx(r.estimate, rel=1e-9)
    assert r.ci is not None
    assert (ev.lower[0], ev.upper[0]) == pytest.approx(tuple(r.ci), rel=1e-6)


class _Recorder:
    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, decision: Any) -> None:
        self.seen.append(decision.decision)


def test_callbacks_and_the_decision_table_on_duckdb(
    harmful: tuple[RolloutTruth, dict[str, Any]], tmp_path: Path
) -> None:
    import duckdb

    truth, cfg = harmful
    rec = _Recorder()
    assert isinstance(rec, RolloutCallback)
    flags = tmp_path / "flags.duckdb"
    table = TableDecisionCallback(lambda: duckdb.connect(str(flags)), table="main.rollout_decisions")
    for h in (50, 62, 62):  # the last one is a retry of the same check
        rollout_check(cfg, 3, now=truth.start + timedelta(hours=h), callback=[rec, table])
    assert rec.seen[-1] == "roll back"
    rows = (
        duckdb.connect(str(flags))
        .execute(
            "SELECT stage, decision, checked_at, reasons, evidence FROM rollout_decisions ORDER BY checked_at"
        )
        .fetchall()
    )
    assert [r[1] for r in rows] == rec.seen[:2]  # the retry replaced its row
    assert "conversion" in rows[-1][3] and '"status": "harm"' in rows[-1][4]
    with pytest.raises(InputError):
        TableDecisionCallback(lambda: None, table="decisions; DROP TABLE x")
    paths = write_lifecycle_report(
        rollout_check(cfg, 3, now=truth.start + timedelta(hours=62)), tmp_path / "out"
    )
    assert Path(paths["md"]).read_text().startswith("# Rollout check") and Path(paths["json"]).exists()


@pytest.mark.postgres
def test_rollout_on_postgres_equals_duckdb_and_writes_the_table(
    harmful: tuple[RolloutTruth, dict[str, Any]], postgres_schema: tuple[str, str]
) -> None:
    import psycopg

    truth, cfg = harmful
    url, schema = postgres_schema
    source = cfg["warehouse"].removeprefix("duckdb:///")
    copy_duckdb_to_postgres(source, url, schema, ["exposures", "orders", "engagement"])
    pg_cfg = {**cfg, "assignment": {**cfg["assignment"], "table": f"{schema}.exposures"}}
    pg_cfg["sources"] = {k: {**v, "table": f"{schema}.{v['table']}"} for k, v in cfg["sources"].items()}
    now = truth.start + timedelta(hours=62)
    table = TableDecisionCallback(
        lambda: psycopg.connect(url), table=f"{schema}.rollout_decisions", dialect="postgres"
    )
    pg = rollout_check(pg_cfg, 3, url, now, callback=table)
    duck = rollout_check(cfg, 3, now=now)
    assert pg.decision == duck.decision == "roll back"
    for a, b in zip(pg.guardrails, duck.guardrails, strict=True):
        assert a.units == b.units
        assert a.lift == pytest.approx(b.lift, rel=1e-9)
        assert a.ci == pytest.approx(b.ci, rel=1e-9)
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            f'SELECT experiment_id, stage, decision FROM "{schema}".rollout_decisions'
        ).fetchall()
    assert rows == [(cfg["id"], 3, "roll back")]


def test_ratio_guardrail_matches_the_stats_engine_and_catches_harm(tmp_path: Path) -> None:
    from dataeng_agents.core.stats import analyze

    # one balanced stage: minutes per event, delta method, same interval as core.stats
    n = 6000
    arms = {
        "control": (6000.0, 1.5e5, 5.2e6, 9000.0, 15000.0, 2.4e5),
        "treatment": (6000.0, 1.45e5, 5.0e6, 9100.0, 15300.0, 2.35e5),
    }
    rule = GuardrailRule("minutes_per_event", "ratio", higher_is_better=True, tolerance=0.0)
    t, c = arms["treatment"], arms["control"]
    st = StageStats(
        n_t=np.array([[t[0]]]),
        sum_t=np.array([[t[1]]]),
        ss_t=np.array([[t[2]]]),
        n_c=np.array([[c[0]]]),
        sum_c=np.array([[c[1]]]),
        ss_c=np.array([[c[2]]]),
        dsum_t=np.array([[t[3]]]),
        dss_t=np.array([[t[4]]]),
        prod_t=np.array([[t[5]]]),
        dsum_c=np.array([[c[3]]]),
        dss_c=np.array([[c[4]]]),
        prod_c=np.array([[c[5]]]),
    )
    ev = evaluate_guardrails(st, [rule], alpha=0.05, tuning=5000, min_units=100)
    out = analyze(
        {
            "control": "control",
            "variants": [{"name": "control"}, {"name": "treatment"}],
            "settings": {
                "method": "sequential",
                "difference": "relative",
                "alpha": 0.05,
                "sequential_tuning": 5000,
                "relative_method": "delta",  # the rollout engine's linear delta method
            },
            "metrics": [
                {
                    "name": "minutes_per_event",
                    "kind": "ratio",
                    "stats": {
                        v: {
                            "n": int(a[0]),
                            "sum": a[1],
                            "sum_squares": a[2],
                            "denominator_sum": a[3],
                            "denominator_sum_squares": a[4],
                            "sum_product_denominator": a[5],
                        }
                        for v, a in arms.items()
                    },
                }
            ],
        }
    )
    r = out.results[0]
    assert ev.lift[0] == pytest.approx(r.estimate, rel=1e-9)
    assert r.ci is not None
    assert (ev.lower[0], ev.upper[0]) == pytest.approx(tuple(r.ci), rel=1e-6)
    assert n == int(t[0])

    # on the warehouse: minutes per engagement event, 30% fewer minutes under the feature
    path = str(tmp_path / "ratio.duckdb")
    truth = generate_rollout_data(path, seed=23, minutes_lift=-0.30)
    cfg = rollout_demo_config(truth, path)
    cfg["metrics"].append(
        {
            "name": "minutes_per_event",
            "kind": "ratio",
            "source": "engagement",
            "value": "minutes",
            "denominator": "1",
        }
    )
    cfg["rollout"]["guardrails"] = [{"metric": "minutes_per_event", "tolerance": 0.05}]
    d = rollout_check(cfg, 2, now=truth.start + timedelta(hours=30))
    g = d.guardrails[0]
    assert g.kind == "ratio" and g.status == "harm" and d.decision == "roll back"
    assert g.ci[0] is not None and g.ci[1] is not None and g.ci[0] < -0.30 < g.ci[1]


def test_rollout_narrative_through_claude_on_a_fake_api(harmful: tuple[RolloutTruth, dict[str, Any]]) -> None:
    """The same rollout_check with the Claude narrator (real anthropic SDK, scripted Messages API)."""
    from dataeng_agents.core.agents import ClaudeNarrator
    from dataeng_agents.core.llm import RetryPolicy
    from test_llm_fakes import FakeAnthropic, message, tool_use

    truth, cfg = harmful
    now = truth.start + timedelta(hours=62)
    answer = {
        "headline": "Roll back the checkout redesign at stage 3",
        "summary": "Conversion regressed beyond its tolerance under the always-valid interval; engagement did not.",
        "key_points": [
            {
                "text": "Conversion is harmed: the whole interval lies below zero.",
                "refs": ["guardrail:conversion"],
            },
            {"text": "Engagement minutes show no harm.", "refs": ["guardrail:engagement_minutes"]},
        ],
        "recommendation": "Turn the flag off and look at the checkout funnel.",
        "caveats": [],
        "next_steps": ["Fix the regression, then restart at stage 1."],
    }
    fake = FakeAnthropic(
        messages=[message([tool_use("final_answer", answer)], input_tokens=1200, output_tokens=300)]
    )
    narrator = ClaudeNarrator(fake.client(), retry=RetryPolicy(sleep=lambda s: None))
    d = rollout_check(cfg, 3, now=now, narrator=narrator)
    assert d.decision == "roll back"  # the decision never depends on the narrator
    assert d.narrative is not None
    assert d.narrative["provenance"]["narrator"] == "claude", d.narrative["provenance"]
    assert d.narrative["headline"] == answer["headline"]
    body = fake.message_bodies()[0]
    assert "guardrail:conversion" in json.dumps(body)  # the decision's evidence was sent as facts
    # an answer that invents a number falls back to the deterministic template, recorded in provenance
    bad = {**answer, "summary": "Conversion fell by 41.7% and revenue by 12.3%."}
    fake = FakeAnthropic(messages=[message([tool_use("final_answer", bad)])] * 6)
    d = rollout_check(
        cfg, 3, now=now, narrator=ClaudeNarrator(fake.client(), retry=RetryPolicy(sleep=lambda s: None))
    )
    assert d.decision == "roll back"
    assert d.narrative is not None and d.narrative["headline"].startswith("Roll back stage 3")
    assert "41.7" in d.narrative["provenance"]["fallback_reason"], d.narrative["provenance"]


def test_last_stage_completes_the_rollout(no_harm: tuple[RolloutTruth, dict[str, Any]]) -> None:
    truth, cfg = no_harm
    d = rollout_check(cfg, 5, now=truth.start + timedelta(hours=121))
    # 100% has no control: the evidence is the earlier stages'; advancing from the last stage completes
    assert d.decision == "advance" and d.complete and d.next_stage_percent is None
    assert d.summary()["complete"] is True and "rollout complete" in d.reasons[0]
    assert all(g.units["control"] > 10_000 for g in d.guardrails)


def _heavy(cap_quantile_z: float | None, *, skew_guard: bool = True) -> Any:
    """Revenue-like guardrail without harm: log-normal unit values, coefficient of variation 4."""
    cv, mean = 4.0, 25.0
    s2 = math.log1p(cv * cv)
    cap = (
        None if cap_quantile_z is None else math.exp(math.log(mean) - s2 / 2 + math.sqrt(s2) * cap_quantile_z)
    )
    plan0 = RolloutPlan.model_validate({"stages": STAGES, "guardrails": [{"metric": "revenue"}]})
    plan = plan0.model_copy(update={"sequential_tuning": suggest_tuning(plan0, 1000.0)})
    return simulate_rollouts(
        plan,
        [SimulatedGuardrail(REVENUE, mean, mean * cv, 0.0, "lognormal", cap)],
        units_per_hour=1000.0,
        n_rollouts=200,
        seed=7,
        skew_guard=skew_guard,
    )


@pytest.mark.slow
def test_heavy_tailed_guardrails_need_capping_or_the_skewness_guard(
    capsys: pytest.CaptureFixture[str],
) -> None:
    unguarded = _heavy(None, skew_guard=False)
    guarded = _heavy(None)
    capped = _heavy(2.3263)  # capped at the 99th percentile
    with capsys.disabled():
        print(
            f"\n[rollout simulation] log-normal guardrail (CV 4), 200 rollouts x 168 h, no harm: roll back "
            f"{unguarded.rollback_rate:.1%} without the skewness guard, {guarded.rollback_rate:.1%} with it "
            f"(completed {guarded.completed_rate:.0%}); capped at p99: {capped.rollback_rate:.1%}"
        )
    # the normal approximation fails for an uncapped heavy tail at 1%; the guard keeps it inconclusive
    assert unguarded.rollback_rate > 0.05
    assert guarded.rollback_rate <= 0.05 and guarded.completed_rate >= 0.9
    assert capped.rollback_rate <= 0.05


def test_capping_and_the_skewness_guard_on_the_warehouse(
    no_harm: tuple[RolloutTruth, dict[str, Any]],
) -> None:
    truth, cfg = no_harm
    base = {**cfg, "metrics": [*cfg["metrics"]]}
    base["metrics"].append(
        {"name": "revenue", "kind": "mean", "source": "orders", "value": "amount", "window": "7d"}
    )
    base["rollout"] = {**cfg["rollout"], "guardrails": [{"metric": "revenue"}]}
    now = truth.start + timedelta(hours=30)
    raw = rollout_check(base, 2, now=now).guardrails[0]
    # 90% of units have no order: per-unit revenue is very skewed, so the guardrail stays inconclusive
    d = rollout_check(base, 2, now=now)
    assert raw.status == "inconclusive" and any("is skewed" in r for r in d.reasons)
    capped_cfg = {**base, "metrics": [*cfg["metrics"], {**base["metrics"][-1], "capping": {"value": 20.0}}]}
    capped = rollout_check(capped_cfg, 2, now=now).guardrails[0]
    assert capped.control_mean is not None and raw.control_mean is not None
    assert capped.control_mean < raw.control_mean and capped.units == raw.units
    pct_cfg = {**base, "metrics": [*cfg["metrics"], {**base["metrics"][-1], "capping": {"percentile": 0.95}}]}
    pct = rollout_check(pct_cfg, 2, now=now).guardrails[0]
    assert pct.control_mean is not None and pct.control_mean < raw.control_mean
