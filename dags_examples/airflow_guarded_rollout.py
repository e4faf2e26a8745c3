"""A guarded rollout that runs unattended: one hourly task advances the feature flag stage by stage.

Each run of ``rollout`` (:class:`GuardedRolloutOperator`) reads the rollout's history from the
decisions table (which stage is live, when each stage really started, since when the sample ratio is
off), checks the guardrails with always-valid confidence sequences at the run's data interval end,
records the decision, then moves the flag: advance → the next stage's percent, roll back → 0. A roll
back fails the run (the failure callback alerts), a finished rollout skips.

The demo writes the core's seeded staged rollout (conversion 30% worse under the feature) into
DuckDB under ``$AIRFLOW_HOME/dataeng_sample/guarded_rollout``, and its "flag service" is a JSON file
next to it. In production, point ``flag_http_conn_id`` at the flag service's HTTP connection (the
password is the API token) and ``decisions_conn_id`` at a database connection.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from airflow.providers.smtp.notifications.smtp import SmtpNotifier
from airflow.sdk import DAG, AsyncCallback, DeadlineAlert, DeadlineReference, task
from dataeng_agents.airflow_provider.operators.rollout import GuardedRolloutOperator
from dataeng_agents.core.lifecycle.actions import CallableFlag

SAMPLE_DIR = (
    Path(os.environ.get("AIRFLOW_HOME", os.path.expanduser("~/airflow")))
    / "dataeng_sample"
    / "guarded_rollout"
)
NOTIFY = ["growth-team@example.com"]


def write_flag(experiment_id: str, percent: float) -> None:
    """The demo's flag service: the percent each experiment's flag stands at, in a JSON file."""
    path = SAMPLE_DIR / "flags.json"
    flags = json.loads(path.read_text()) if path.exists() else {}
    flags[experiment_id] = percent
    path.write_text(json.dumps(flags))


with DAG(
    dag_id="dataeng_guarded_rollout",
    description="Advance a feature flag through its rollout stages while the guardrails hold",
    schedule="@hourly",
    start_date=datetime(2025, 3, 3, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=45),
    deadline=DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(minutes=30),
        callback=AsyncCallback(SmtpNotifier, kwargs={"to": NOTIFY, "subject": "Rollout check is late"}),
    ),
    default_args={
        "owner": "growth-team",
        "retries": 2,
        "retry_delay": timedelta(minutes=5),
        "execution_timeout": timedelta(minutes=20),
        "on_failure_callback": SmtpNotifier(to=NOTIFY),
    },
    tags=["dataeng", "rollout"],
) as dag:

    @task
    def prepare_demo(folder: str = str(SAMPLE_DIR)) -> str:
        """Write the seeded rollout data and its config, once."""
        import yaml
        from dataeng_agents.core.lifecycle.demo_data import generate_rollout_data, rollout_demo_config

        root = Path(folder)
        root.mkdir(parents=True, exist_ok=True)
        config = root / "rollout.yaml"
        if not config.exists():
            truth = generate_rollout_data(root / "rollout.duckdb", conversion_lift=-0.30)
            config.write_text(
                yaml.safe_dump(rollout_demo_config(truth, str(root / "rollout.duckdb")), sort_keys=False)
            )
        return str(config)

    prepare_demo() >> GuardedRolloutOperator(
        task_id="rollout",
        config=str(SAMPLE_DIR / "rollout.yaml"),
        decisions_duckdb_path=str(SAMPLE_DIR / "decisions.duckdb"),
        # A roll back or a page raises AirflowFailException, which Airflow never retries; the
        # retries above only cover transient warehouse or flag-service errors.
        flag=CallableFlag(write_flag),
    )
