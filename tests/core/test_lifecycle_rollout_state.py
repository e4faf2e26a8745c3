"""A rollout that runs unattended: its history in the decisions table, its SRM policy, its design, its
actions — checked in closed-loop simulations where the flag hook moves the flag of a simulated
product (``RolloutWorld``) and every later hour of traffic follows the flag as it then stands."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import duckdb
import numpy as np
import pytest
from dataeng_agents.core.experiment import load_configs
from dataeng_agents.core.lifecycle.actions import (
    CallableFlag,
    HttpFlagHook,
    RolloutActionError,
    apply_decision,
)
from dataeng_agents.core.lifecycle.config import LifecycleConfig, RolloutPlan
from dataeng_agents.core.lifecycle.demo_data import RolloutWorld
from dataeng_agents.core.lifecycle.guarded import check_rollout
from dataeng_agents.core.lifecycle.rollout import (
    GuardrailRule,
    RolloutDecision,
    StageStats,
    build_decision,
    stage_schedule,
)
from dataeng_agents.core.lifecycle.state import DecisionStore, RolloutFinishedError
from dataeng_agents.core.warehouse import DuckDBWarehouse

STAGES = [{"percent": p, "min_duration": "12h"} for p in (10, 25, 50, 100)]


def drive(
    world: RolloutWorld,
    cfg_dict: dict[str, Any],
    store: DecisionStore,
    *,
    hours: int,
    every: int = 2,
    outage: range = range(0),
) -> list[RolloutDecision]:
    """The scheduler: every ``every`` hours (none during ``outage``) check, record, move the flag."""
    cfg, life = load_configs(cfg_dict)
    assert life.rollout is not None
    wh = DuckDBWarehouse(str(world.path))
    world.set_flag(cfg.id, life.rollout.stages[0].percent)
    out: list[RolloutDecision] = []
    while world.hours < hours:
        world.advance(every)
        if world.hours in outage:
            continue
        try:
            d = check_rollout(cfg, life, wh, now=world.now, history=store.history(cfg.id))
        except RolloutFinishedError:
            break
        out.append(apply_decision(d, store=store, flag=CallableFlag(world.set_flag)))
    return out


def _store(tmp_path: Path, name: str = "decisions.duckdb") -> DecisionStore:
    path = tmp_path / name
    return DecisionStore(lambda: duckdb.connect(str(path)), table="rollout_decisions")


def test_an_overlong_stage_is_remembered_and_raises_no_false_srm(tmp_path: Path) -> None:
    world = RolloutWorld(tmp_path / "w.duckdb", seed=11)
    cfg = world.config(STAGES)
    store = _store(tmp_path)
    # the scheduler is down from hour 12 to hour 30: stage 1 (10%) runs 30 h instead of 12 h
    decisions = drive(world, cfg, store, hours=120, outage=range(11, 30))
    assert not any(d.srm_mismatch for d in decisions), [(d.stage, d.srm_p_value) for d in decisions]
    assert not any(d.decision == "roll back" for d in decisions)
    assert decisions[-1].complete, decisions[-1].reasons
    # the history put stage 2's start at the advance (hour 30), not at the minimum schedule (hour 12)
    changes = [(round((t - world.start).total_seconds() / 3600), p) for t, p in world.flag_changes]
    assert changes[:2] == [(0, 10.0), (30, 25.0)]
    stage2 = next(d for d in decisions if d.stage == 2)
    assert stage2.stage_starts[1] - stage2.stage_starts[0] == timedelta(hours=30)
    # without the history (the old behaviour: minimum schedule) the same check sees a mismatch
    c, life = load_configs(cfg)
    blind = check_rollout(c, life, DuckDBWarehouse(str(world.path)), stage=2, now=stage2.checked_at)
    assert blind.srm_mismatch and blind.srm_p_value is not None and blind.srm_p_value < 1e-6
    assert blind.stage_starts[1] - blind.stage_starts[0] == timedelta(hours=12)
    # the rollout is over: the next scheduled check says so instead of starting again
    history = store.history(c.id)
    with pytest.raises(RolloutFinishedError):
        history.current_stage(len(STAGES))
    assert [r.decision for r in history.records] == [d.decision for d in decisions]


@pytest.mark.slow
@pytest.mark.parametrize("then", ["roll back", "page"])
def test_an_exposure_loss_holds_then_rolls_back_or_pages(tmp_path: Path, then: str) -> None:
    # from hour 14 on, 40% of the treatment's exposure rows never reach the warehouse
    world = RolloutWorld(tmp_path / "w.duckdb", exposure_loss=0.4, exposure_loss_from=14, seed=12)
    cfg = world.config(STAGES, srm={"max_hold": "12h", "then": then})
    decisions = drive(world, cfg, _store(tmp_path), hours=90)
    flagged = [d for d in decisions if d.srm_mismatch]
    assert flagged, "the exposure loss was never seen"
    first = flagged[0]
    assert first.decision == "hold" and any("holding up to 12 h, then " + then in r for r in first.reasons)
    assert all(d.decision != "advance" for d in flagged)
    hours_flagged = [(d.checked_at - first.checked_at).total_seconds() / 3600 for d in flagged]
    if then == "roll back":
        last = decisions[-1]
        assert last.decision == "roll back" and last.flag_percent == 0 and last.next_stage_percent is None
        assert any("past the 12 h hold limit: roll back" in r for r in last.reasons)
        assert hours_flagged[-1] == pytest.approx(12, abs=2)
        assert world.flag_percent == 0.0
        assert not any(g.status == "harm" for g in last.guardrails)  # it was the SRM, not a guardrail
    else:
        late = [d for d, h in zip(flagged, hours_flagged, strict=True) if h >= 12]
        assert late and all(d.page and d.decision == "hold" for d in late)
        assert all(not d.page for d, h in zip(flagged, hours_flagged, strict=True) if h < 12)
        assert world.flag_percent > 0  # paging never moves the flag
    assert all(d.srm_since == first.checked_at for d in flagged)


@pytest.mark.slow
def test_returning_users_percentage_design_is_refused_and_coverage_design_completes(tmp_path: Path) -> None:
    common: dict[str, Any] = {"returning_share": 0.5, "units_per_hour": 300.0, "seed": 13}
    pct_world = RolloutWorld(tmp_path / "pct.duckdb", **common)
    pct = drive(pct_world, pct_world.config(STAGES), _store(tmp_path, "p.duckdb"), hours=80)
    cov_world = RolloutWorld(tmp_path / "cov.duckdb", design="coverage", **common)
    cov = drive(cov_world, cov_world.config(STAGES), _store(tmp_path, "c.duckdb"), hours=110)
    # percentage: returning control units switch to the feature as the percent grows; the check
    # sees them in both arms and refuses the comparison instead of advancing on a biased lift
    refused = [d for d in pct if d.page and d.units_in_both_arms]
    assert refused and all(d.decision != "advance" for d in refused)
    assert any("design: coverage" in r for r in refused[0].reasons)
    biased = refused[0].guardrails[0]
    assert biased.lift is not None and biased.lift > 0.05  # the bias it refused: no true effect
    # coverage: nobody switches arm, the lift is unbiased, the rollout completes
    assert all(d.units_in_both_arms == 0 for d in cov)
    assert not any(d.decision == "roll back" or d.page or d.srm_mismatch for d in cov)
    assert cov[-1].complete
    conv = cov[-1].guardrails[0]
    assert conv.ci[0] is not None and conv.ci[1] is not None and conv.ci[0] < 0 < conv.ci[1]


def test_a_harmful_feature_is_rolled_back_in_the_coverage_design(tmp_path: Path) -> None:
    world = RolloutWorld(tmp_path / "w.duckdb", design="coverage", conversion_lift=-0.4, seed=14)
    decisions = drive(world, world.config(STAGES), _store(tmp_path), hours=80)
    last = decisions[-1]
    assert last.decision == "roll back" and world.flag_percent == 0
    assert next(g for g in last.guardrails if g.metric == "conversion").status == "harm"


# ------------------------------------------------------------------------------------- the engine
def _plan(**kw: Any) -> RolloutPlan:
    # coverage design, split 50/50: the equal arms of _stats match the planned ratio
    base: dict[str, Any] = {
        "stages": STAGES,
        "guardrails": [{"metric": "conversion"}, {"metric": "minutes"}],
        "design": "coverage",
    }
    base.update(kw)
    return RolloutPlan.model_validate(base)


RULES = [GuardrailRule("conversion", "proportion"), GuardrailRule("minutes", "mean")]


def _stats(n: float, conv_t: float, conv_c: float, min_t: float = 20.0, min_c: float = 20.0) -> StageStats:
    st = StageStats.zeros((4, 2))
    for arm, conv, mins in (("t", conv_t, min_t), ("c", conv_c, min_c)):
        getattr(st, f"n_{arm}")[0] = n
        getattr(st, f"sum_{arm}")[0] = [n * conv, n * mins]
        getattr(st, f"ss_{arm}")[0] = [n * conv, (n - 1) * 64.0 + n * mins * mins]
    return st


def _decide(plan: RolloutPlan, stats: StageStats, **kw: Any) -> RolloutDecision:
    from datetime import UTC, datetime

    now = datetime(2025, 3, 4, tzinfo=UTC)
    return build_decision(
        experiment_id="e",
        plan=plan,
        rules=RULES,
        stage=1,
        stats=stats,
        checked_at=now,
        stage_started_at=now - timedelta(hours=20),
        stage_hours=20.0,
        **kw,
    )


def test_roll_back_moves_the_flag_to_zero_and_names_no_next_stage() -> None:
    d = _decide(_plan(), _stats(20_000, 0.07, 0.10))
    assert d.decision == "roll back" and d.next_stage_percent is None and d.flag_percent == 0
    assert d.summary()["flag_percent"] == 0
    ok = _decide(_plan(), _stats(20_000, 0.10, 0.10))
    assert ok.decision == "advance" and ok.next_stage_percent == 25 and ok.flag_percent == 25


def test_notify_only_guardrail_does_not_roll_back() -> None:
    harmful = _stats(20_000, 0.07, 0.10)
    d = _decide(_plan(), harmful, actions=["notify", "roll back"])
    assert d.decision == "advance" and d.notify == ["conversion"]
    assert any("notify-only" in r for r in d.reasons)
    assert _decide(_plan(), harmful, actions=["roll back", "notify"]).decision == "roll back"
    plan = LifecycleConfig.load(
        {"rollout": {"stages": STAGES, "guardrails": [{"metric": "x", "action": "notify"}]}}
    ).require_rollout()
    assert plan.guardrails[0].action == "notify"


def test_weak_guardrails_are_named_when_the_stage_advances() -> None:
    small = _stats(400, 0.10, 0.10)
    d = _decide(_plan(), small)
    assert d.decision == "advance"
    assert any("conversion can only catch a regression of" in w for w in d.warnings), d.warnings
    big = _decide(_plan(detectable_harm=0.5), _stats(2_000, 0.10, 0.10))
    assert not any("conversion" in w for w in big.warnings)


def test_crossover_above_the_limit_is_refused_and_below_it_is_reported() -> None:
    st = _stats(20_000, 0.10, 0.10)
    few = _decide(_plan(), st, units_in_both_arms=40)
    assert few.decision == "advance" and not few.page and few.units_in_both_arms == 40 and few.warnings
    many = _decide(_plan(), st, units_in_both_arms=2_000)
    assert many.decision == "hold" and many.page


def test_stage_durations_honour_the_units_rules() -> None:
    two = [{"percent": 1, "min_duration": "12h"}, {"percent": 100, "min_duration": "12h"}]
    plan = _plan(stages=two, design="percentage")
    hours, _ = stage_schedule(plan, units_per_hour=300.0)[0]
    # 100 treatment units at 1% of 300 units an hour take 33.3 h, not the 12 h minimum
    assert hours == pytest.approx(100 / 3.0)
    assert stage_schedule(plan, units_per_hour=30_000.0)[0][0] == 12.0
    # coverage design: 1% covered, half of them treated
    assert stage_schedule(_plan(stages=two), units_per_hour=300.0)[0][0] == pytest.approx(200 / 3.0)


def test_srm_policy_config() -> None:
    plan = _plan(srm={"max_hold": "2d", "then": "page"})
    assert plan.srm_policy.max_hold == 48 and plan.srm_policy.then == "page"
    assert _plan(srm_threshold=0.01).srm_policy.threshold == 0.01


# ------------------------------------------------------------------------------------- the actions
def test_a_failing_callback_raises_a_typed_error_after_the_decision_is_recorded(tmp_path: Path) -> None:
    store = _store(tmp_path)
    d = _decide(_plan(), _stats(20_000, 0.10, 0.10))
    seen: list[str] = []

    def broken(decision: RolloutDecision) -> None:
        raise TypeError("bad payload")

    with pytest.raises(RolloutActionError) as err:
        apply_decision(d, store=store, callbacks=[broken, lambda x: seen.append(x.decision)])
    assert err.value.decision.decision == "advance" and "bad payload" in str(err.value)
    assert seen == ["advance"]  # the later callback still ran
    assert [r.decision for r in store.history("e").records] == ["advance"]  # recorded first


def test_a_failing_flag_hook_leaves_a_paging_hold_in_the_history(tmp_path: Path) -> None:
    store = _store(tmp_path)
    d = _decide(_plan(), _stats(20_000, 0.10, 0.10))

    def down(experiment_id: str, percent: float) -> None:
        raise ConnectionError("flag service unreachable")

    with pytest.raises(RolloutActionError) as err:
        apply_decision(d, store=store, flag=CallableFlag(down))
    assert err.value.failures[0][0] == "flag"
    records = store.history("e").records
    assert len(records) == 1 and records[0].decision == "hold" and records[0].page
    assert store.history("e").current_stage(4) == 1  # the flag did not move: still stage 1


class _FlagService(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, str, dict[str, Any], str | None]]] = []

    def do_PUT(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.received.append(("PUT", self.path, body, self.headers.get("Authorization")))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def flag_service() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _FlagService)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_http_flag_hook_against_a_local_stub(flag_service: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLAG_TOKEN", "s3cret")
    hook = HttpFlagHook(
        flag_service
        + "/api/admin/projects/default/features/{experiment_id}/environments/production/strategies/abc",
        method="PUT",
        body=lambda pct, d: {"name": "flexibleRollout", "parameters": {"rollout": str(round(pct))}},
        token_env="FLAG_TOKEN",
        token_prefix="",
    )
    back = _decide(_plan(), _stats(20_000, 0.07, 0.10))
    apply_decision(back, flag=hook)
    method, path, body, auth = _FlagService.received[-1]
    assert method == "PUT" and path.endswith("/features/e/environments/production/strategies/abc")
    assert body == {"name": "flexibleRollout", "parameters": {"rollout": "0"}} and auth == "s3cret"
    hold = _decide(_plan(), _stats(50, 0.10, 0.10))
    n = len(_FlagService.received)
    apply_decision(hold, flag=hook)
    assert len(_FlagService.received) == n  # a hold does not touch the flag
    monkeypatch.delenv("FLAG_TOKEN")
    with pytest.raises(RolloutActionError, match="FLAG_TOKEN is not set"):
        apply_decision(back, flag=hook)


def test_history_survives_an_old_table_without_the_new_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute(
        "CREATE TABLE rollout_decisions (experiment_id VARCHAR(200), stage INTEGER, stage_percent DOUBLE, "
        "decision VARCHAR(20), next_stage_percent DOUBLE, checked_at TIMESTAMP, reasons TEXT, evidence TEXT)"
    )
    con.execute(
        "INSERT INTO rollout_decisions VALUES ('e', 1, 10, 'advance', 25, '2025-03-04 10:00:00', '[]', '[]')"
    )
    con.close()
    store = DecisionStore(lambda: duckdb.connect(str(path)))
    h = store.history("e")
    assert h.current_stage(4) == 2 and h.records[0].srm_mismatch is None
    store.record(_decide(_plan(), _stats(20_000, 0.10, 0.10)))
    assert len(store.history("e").records) == 2
    assert np.isfinite(store.history("e").records[-1].srm_p_value or 0.0)


@pytest.mark.postgres
def test_the_history_round_trips_on_postgres(postgres_schema: tuple[str, str]) -> None:
    import psycopg

    url, schema = postgres_schema
    store = DecisionStore(
        lambda: psycopg.connect(url), table=f"{schema}.rollout_decisions", dialect="postgres"
    )
    assert store.history("e").records == []
    srm = _decide(_plan(), _stats(20_000, 0.10, 0.10), units_in_both_arms=40)
    store.record(srm)
    store.record(srm)  # a retry replaces its row
    later = _decide(_plan(), _stats(20_000, 0.07, 0.10)).model_copy(
        update={"checked_at": srm.checked_at + timedelta(hours=2)}
    )
    store.record(later)
    h = store.history("e")
    assert [(r.stage, r.decision, r.flag_percent) for r in h.records] == [
        (1, "advance", 25.0),
        (1, "roll back", 0.0),
    ]
    assert h.records[0].checked_at == srm.checked_at and h.records[0].units_in_both_arms == 40
    with pytest.raises(RolloutFinishedError):
        h.current_stage(4)
