"""The feature-lifecycle example (design → tracking → staged rollout → analyse → branch) with
``dag.test()``; every step's output is checked against a direct core call on the same data."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dagrun import load_dag, local_path, run, task_states, xcom
from test_example_dags import assert_close, assert_report_matches


def test_feature_lifecycle_runs_end_to_end_and_branches_on_the_verdict(airflow_db: Path) -> None:
    dag = load_dag("airflow_feature_lifecycle.py")

    dr = run(dag, datetime(2025, 2, 18, tzinfo=UTC))

    states = task_states(dr)
    configs = xcom(dr, "prepare_demo", key="experiment"), xcom(dr, "prepare_demo", key="rollout")
    experiment, rollout = configs

    from dataeng_agents.core.commands.lifecycle import rollout_check
    from dataeng_agents.core.experiment import analyze_experiment, design_experiment, load_configs

    cfg, _ = load_configs(experiment)
    direct = analyze_experiment(cfg)
    branch = {"ship": "ship", "keep running": "keep_running"}.get(direct.decision.verdict, "stop")
    expected = {
        "prepare_demo": "success",
        "design": "success",
        "tracking_check": "success",
        "rollout_stage_1": "success",
        "rollout_stage_2": "success",
        "rollout_stage_3": "success",
        "analyse": "success",
        "decide": "success",
        "ship": "skipped",
        "keep_running": "skipped",
        "stop": "skipped",
    }
    expected[branch] = "success"
    assert states == expected

    # design: the sample size and duration the core computes from the same baseline
    design = xcom(dr, "design")
    assert_close(
        {k: v for k, v in design.items() if k not in ("report", "narration")},
        direct_design := design_experiment(cfg).summary(),
    )
    assert design["per_variant"] == direct_design["per_variant"] > 0
    assert json.loads(local_path(design["report"]["json"]).read_text())["kind"] == "experiment_design"

    # tracking: the clean demo has no finding
    assert xcom(dr, "tracking_check")["ok"] is True

    # rollout: each stage's decision is the core's at the same check time
    _, life = load_configs(rollout)
    started_at = life.require_rollout().started_at
    assert started_at is not None
    started = started_at.replace(tzinfo=UTC)
    for k in (1, 2, 3):
        got = xcom(dr, f"rollout_stage_{k}")
        want = rollout_check(rollout, stage=k, now=started + timedelta(days=k, minutes=5)).summary()
        assert_close(got, json.loads(json.dumps(want, default=str)), f"stage {k}")
        assert got["decision"] == "advance"

    # analysis: the written report has the core's numbers; the branch followed its verdict
    summary = xcom(dr, "analyse")
    assert summary["verdict"] == direct.decision.verdict
    assert_report_matches(json.loads(local_path(summary["report"]["json"]).read_text()), direct)
