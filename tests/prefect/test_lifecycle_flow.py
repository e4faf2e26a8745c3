"""feature_lifecycle_flow: design → tracking check → rollout check → final analysis, on the core's
seeded lifecycle and rollout data; decisions and artifacts checked against direct core calls."""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from prefect_api import run_artifacts, run_events


@pytest.fixture(scope="module")
def rollout_ok(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, dict[str, Any]]:
    from dataeng_agents.core.lifecycle.demo_data import generate_rollout_data, rollout_demo_config

    path = str(tmp_path_factory.mktemp("rollout") / "ok.duckdb")
    truth = generate_rollout_data(path, seed=21, hours=125)
    return truth, rollout_demo_config(truth, path)


@pytest.fixture(scope="module")
def rollout_harmful(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, dict[str, Any]]:
    from dataeng_agents.core.lifecycle.demo_data import generate_rollout_data, rollout_demo_config

    path = str(tmp_path_factory.mktemp("rollout") / "harm.duckdb")
    truth = generate_rollout_data(path, seed=22, conversion_lift=-0.30)
    return truth, rollout_demo_config(truth, path)


def test_stage_advances_without_harm(prefect_server: str, rollout_ok: tuple[Any, dict[str, Any]]) -> None:
    from dataeng_agents.core.commands.lifecycle import rollout_check
    from dataeng_agents.prefect_integration.flows import feature_lifecycle_flow

    truth, cfg = rollout_ok
    at = truth.start + timedelta(hours=25)
    state = feature_lifecycle_flow(config=cfg, stage=1, checked_at=at, return_state=True)
    assert state.is_completed(), state.message
    result = state.result()
    direct = rollout_check(cfg, 1, now=at)
    assert direct.decision == "advance"
    assert result["rollout"] == json.loads(json.dumps(direct.summary()))
    assert result["hypothesis"] is None and result["tracking"] is None and result["final_report"] is None
    artifacts = run_artifacts(state.state_details.flow_run_id)
    assert set(artifacts) == {"checkout-redesign-rollout-rollout"}
    assert "Decision: advance" in str(artifacts["checkout-redesign-rollout-rollout"].data)


def test_last_stage_complete_runs_the_final_analysis(
    prefect_server: str, rollout_ok: tuple[Any, dict[str, Any]], tmp_path: Path
) -> None:
    from dataeng_agents.core.experiment import analyze_experiment, load_configs
    from dataeng_agents.prefect_integration.flows import feature_lifecycle_flow

    truth, cfg = rollout_ok
    at = truth.start + timedelta(hours=24 * 4 + 25)
    # The ramp (1% → 100%) moves the allocation, so the pooled final analysis shows an SRM against
    # the configured 50/50 weights: the policy here stops on guardrails only.
    result = feature_lifecycle_flow(
        config=cfg, stage=5, checked_at=at, report_dir=str(tmp_path), final_fail_on=["guardrail"]
    )
    assert result["rollout"]["complete"] is True
    final = result["final_report"]
    direct = analyze_experiment(load_configs(cfg)[0])
    assert final["verdict"] == direct.decision.verdict
    assert final["units"] == direct.summary()["units"]
    assert final["artifacts"]["table_key"] == "checkout-redesign-rollout-metrics"
    assert Path(final["report_files"]["html"]).is_file()


def test_roll_back_fails_the_run(prefect_server: str, rollout_harmful: tuple[Any, dict[str, Any]]) -> None:
    from dataeng_agents.core.commands.lifecycle import rollout_check
    from dataeng_agents.prefect_integration.flows import RolloutStoppedError, feature_lifecycle_flow

    truth, cfg = rollout_harmful
    at = truth.start + timedelta(hours=62)
    state = feature_lifecycle_flow(config=cfg, stage=3, checked_at=at, return_state=True)
    assert state.is_failed()
    with pytest.raises(RolloutStoppedError, match="roll back"):
        state.result()
    direct = rollout_check(cfg, 3, now=at)
    assert direct.decision == "roll back"
    markdown = str(run_artifacts(state.state_details.flow_run_id)["checkout-redesign-rollout-rollout"].data)
    assert "Decision: roll back" in markdown
    (event,) = run_events(
        "dataeng.rollout.checked",
        "dataeng.experiment.checkout-redesign-rollout",
        state.state_details.flow_run_id,
    )
    assert event.payload["decision"] == "roll back" and event.payload["harmful_guardrails"] == ["conversion"]
    assert event.payload["harmful_guardrails"] == direct.summary()["harmful_guardrails"]


def test_design_and_broken_tracking(prefect_server: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The lifecycle demo plants a dropped property in the treatment's events: the run fails on it,
    after publishing the hypothesis and the tracking findings."""
    from dataeng_agents.core.commands.lifecycle import check_tracking
    from dataeng_agents.core.lifecycle.demo_data import generate_lifecycle_data, lifecycle_demo_config
    from dataeng_agents.prefect_integration import ExperimentWarehouse
    from dataeng_agents.prefect_integration.flows import RolloutStoppedError, feature_lifecycle_flow

    path = str(tmp_path_factory.mktemp("lifecycle") / "life.duckdb")
    truth = generate_lifecycle_data(path, users=8000)
    cfg = lifecycle_demo_config(truth, path)
    at = datetime.combine(truth.experiment_start, time()) + timedelta(hours=30)
    state = feature_lifecycle_flow(
        config=cfg, stage=1, warehouse=ExperimentWarehouse(duckdb_path=path), checked_at=at, return_state=True
    )
    assert state.is_failed()
    with pytest.raises(RolloutStoppedError, match="tracking plan broken"):
        state.result()
    direct = check_tracking(cfg, now=at)
    assert not direct.ok
    artifacts = run_artifacts(state.state_details.flow_run_id)
    assert {"checkout-redesign-hypothesis", "checkout-redesign-tracking", "checkout-redesign-rollout"} <= set(
        artifacts
    )
    tracking_md = str(artifacts["checkout-redesign-tracking"].data)
    for finding in direct.findings:
        assert finding.id in tracking_md
