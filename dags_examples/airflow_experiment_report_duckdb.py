"""Daily report of the bundled checkout experiment, analysed on the DuckDB sample.

Each run analyses every exposure from the experiment's start up to the end of the run's data
interval (the analysis is sequential, so looking every day does not inflate false positives) and
publishes ``report.json`` / ``report.md`` / ``report.html`` under
``$AIRFLOW_HOME/dataeng_reports/<dag_id>/<task_id>/<run_id>``. The first task writes the seeded
sample (``dataeng demo`` data) into a DuckDB file when it is missing.

Set ``anthropic_conn_id`` to a connection of type ``anthropic`` to have Claude write the prose;
without it the prose comes from the deterministic templates.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from airflow.providers.smtp.notifications.smtp import SmtpNotifier
from airflow.sdk import DAG, AsyncCallback, DeadlineAlert, DeadlineReference, task
from airflow.timetables.interval import CronDataIntervalTimetable
from dataeng_agents.airflow_provider.operators.experiment import ExperimentAnalysisOperator

SAMPLE_DUCKDB = os.environ.get(
    "DATAENG_SAMPLE_DUCKDB",
    os.path.join(
        os.environ.get("AIRFLOW_HOME", os.path.expanduser("~/airflow")), "dataeng_sample", "checkout.duckdb"
    ),
)
CONFIG = "checkout_demo.yaml"
NOTIFY = ["growth-team@example.com"]

with DAG(
    dag_id="dataeng_experiment_report_duckdb",
    description="Daily sequential analysis of the checkout experiment on the DuckDB sample",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=datetime(2024, 3, 2, tzinfo=UTC),
    end_date=datetime(2024, 3, 16, tzinfo=UTC),
    dagrun_timeout=timedelta(hours=3),
    deadline=DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(hours=2),
        callback=AsyncCallback(SmtpNotifier, kwargs={"to": NOTIFY, "subject": "Experiment report is late"}),
    ),
    catchup=False,
    max_active_runs=1,
    default_args={
        "owner": "growth-team",
        "retries": 1,
        "execution_timeout": timedelta(hours=1),
        "on_failure_callback": SmtpNotifier(to=NOTIFY),
    },
    tags=["dataeng", "experiment"],
) as dag:

    @task
    def bundled_config() -> str:
        """Path of the bundled experiment config (resolved on the worker, not at parse time)."""
        from importlib.resources import files

        return str(files("dataeng_agents.core.examples") / "experiments" / CONFIG)

    @task
    def prepare_sample(path: str = SAMPLE_DUCKDB) -> str:
        """Write the seeded sample experiment into DuckDB unless it is already there."""
        from dataeng_agents.core.warehouse.sample_data import generate

        if not os.path.exists(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            generate(path, users=int(os.environ.get("DATAENG_SAMPLE_USERS", "120000")))
        return path

    config = bundled_config()
    sample = prepare_sample()
    analyse = ExperimentAnalysisOperator(
        task_id="analyse_checkout",
        config="{{ ti.xcom_pull(task_ids='bundled_config') }}",
        duckdb_path="{{ ti.xcom_pull(task_ids='prepare_sample') }}",
        srm_policy="fail",
        guardrail_policy="warn",
    )
    [config, sample] >> analyse
