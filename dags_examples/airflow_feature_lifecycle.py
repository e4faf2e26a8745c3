"""The data-driven-feature lifecycle as one DAG: design → tracking check → staged rollout checks →
analyse → branch on the decision.

* ``design`` sizes the experiment from pre-period baselines (sample size per variant, duration).
* ``tracking_check`` checks the events the feature emits against its versioned tracking plan, per
  variant (missing events, malformed properties, late arrivals); a broken plan fails the run.
* ``rollout_stage_<k>`` is one guarded-rollout check per stage (always-valid confidence sequences
  on the guardrails): ``advance`` continues, ``hold`` skips the later stages, ``roll back`` fails.
* ``analyse`` is the full experiment analysis (SRM, CUPED, sequential tests, the decision rules);
  ``decide`` branches on its verdict: ``ship``, ``keep running`` or ``stop``.

The first task writes the core's seeded demo data (a checkout redesign experiment and its staged
rollout) into DuckDB under ``$AIRFLOW_HOME/dataeng_sample/lifecycle`` with the two YAML configs.
Every decision is the core's; the DAG only wires the steps.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.providers.smtp.notifications.smtp import SmtpNotifier
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, chain, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
from dataeng_agents.airflow_provider.operators.experiment import (
    ExperimentAnalysisOperator,
    ExperimentDesignOperator,
)

NOTIFY = ["growth-team@example.com"]
STAGES = (1, 2, 3)
SAMPLE_DIR = os.path.join(
    os.environ.get("AIRFLOW_HOME", os.path.expanduser("~/airflow")), "dataeng_sample", "lifecycle"
)

with DAG(
    dag_id="dataeng_feature_lifecycle",
    description="Design, tracking check, guarded rollout and analysis of one feature",
    schedule=None,
    start_date=datetime(2025, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args={
        "owner": "growth-team",
        "retries": 1,
        "retry_delay": timedelta(minutes=2),
        "execution_timeout": timedelta(minutes=30),
        "on_failure_callback": SmtpNotifier(to=NOTIFY),
    },
    tags=["dataeng", "experiment", "rollout"],
) as dag:

    @task(multiple_outputs=True)
    def prepare_demo(folder: str = SAMPLE_DIR) -> dict[str, str]:
        """Write the seeded experiment and rollout data and their configs, once."""
        from pathlib import Path

        import yaml
        from dataeng_agents.core.lifecycle.demo_data import (
            generate_lifecycle_data,
            generate_rollout_data,
            lifecycle_demo_config,
            rollout_demo_config,
        )

        root = Path(folder)
        root.mkdir(parents=True, exist_ok=True)
        experiment, rollout = root / "experiment.yaml", root / "rollout.yaml"
        if not experiment.exists():
            truth = generate_lifecycle_data(root / "experiment.duckdb", bug_variant=None)
            config = lifecycle_demo_config(truth, str(root / "experiment.duckdb"))
            experiment.write_text(yaml.safe_dump(config, sort_keys=False))
        if not rollout.exists():
            ramp = generate_rollout_data(root / "rollout.duckdb")
            rollout.write_text(
                yaml.safe_dump(rollout_demo_config(ramp, str(root / "rollout.duckdb")), sort_keys=False)
            )
        return {"experiment": str(experiment), "rollout": str(rollout)}

    @task(multiple_outputs=False)
    def tracking_check(config: str) -> dict[str, Any]:
        """The tracking plan checked per variant at the end of the experiment window."""
        from dataeng_agents.core.commands.lifecycle import check_tracking
        from dataeng_agents.core.experiment import load_configs

        cfg, _ = load_configs(config)
        end = cfg.end if isinstance(cfg.end, datetime) else datetime(cfg.end.year, cfg.end.month, cfg.end.day)
        report = check_tracking(config, now=end.replace(tzinfo=end.tzinfo or UTC))
        if not report.ok:
            raise AirflowFailException(f"tracking plan broken: {report.summary()['findings']}")
        return report.summary()

    @task(multiple_outputs=False)
    def rollout_check(config: str, stage: int) -> dict[str, Any]:
        """One guarded-rollout check, at the end of the stage's minimum duration."""
        from dataeng_agents.core.commands.lifecycle import rollout_check as core_rollout_check
        from dataeng_agents.core.experiment import load_configs

        _, life = load_configs(config)
        plan = life.require_rollout()
        started = plan.started_at if plan.started_at.tzinfo else plan.started_at.replace(tzinfo=UTC)
        decision = core_rollout_check(config, stage=stage, now=started + timedelta(days=stage, minutes=5))
        if decision.decision == "roll back":
            raise AirflowFailException(f"stage {stage}: roll back: {'; '.join(decision.reasons)}")
        if decision.decision == "hold":
            raise AirflowSkipException(f"stage {stage}: hold: {'; '.join(decision.reasons)}")
        return decision.summary()

    configs = prepare_demo()
    design = ExperimentDesignOperator(task_id="design", config=configs["experiment"])
    tracking = tracking_check(configs["experiment"])
    stages = [rollout_check.override(task_id=f"rollout_stage_{k}")(configs["rollout"], k) for k in STAGES]
    analyse = ExperimentAnalysisOperator(
        task_id="analyse",
        config=configs["experiment"],
        window="all",
        guardrail_policy="warn",
        trigger_rule="none_failed",
    )

    @task.branch(multiple_outputs=False)
    def decide(summary: dict[str, Any]) -> str:
        """Follow the analysis verdict."""
        return {"ship": "ship", "keep running": "keep_running"}.get(summary["verdict"], "stop")

    chain(design, tracking, *stages, analyse)
    decide(analyse.output) >> [
        EmptyOperator(task_id="ship"),
        EmptyOperator(task_id="keep_running"),
        EmptyOperator(task_id="stop"),
    ]
