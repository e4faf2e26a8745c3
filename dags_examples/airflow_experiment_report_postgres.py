"""Daily report of the checkout experiment, analysed where the data lives: PostgreSQL.

The warehouse is an ordinary Airflow connection (``dataeng_warehouse``, type ``postgres``; any
common-sql connection works: Snowflake, BigQuery, Trino, ...). The SQL is generated in the
connection's dialect and only per-variant sufficient statistics leave the database. The experiment
config is the bundled one; its ``warehouse:`` URL is ignored because ``conn_id`` is given.

Claude writes the prose when the ``anthropic_default`` connection (type ``anthropic``) exists and
``DATAENG_USE_CLAUDE=1``; with ``deferrable=True`` the request goes through the Message Batches API
while the task waits in the triggerer.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from airflow.providers.smtp.notifications.smtp import SmtpNotifier
from airflow.sdk import DAG, AsyncCallback, DeadlineAlert, DeadlineReference, task
from airflow.timetables.interval import CronDataIntervalTimetable
from dataeng_agents.airflow_provider.operators.experiment import ExperimentAnalysisOperator

USE_CLAUDE = os.environ.get("DATAENG_USE_CLAUDE") == "1"
NOTIFY = ["growth-team@example.com"]

with DAG(
    dag_id="dataeng_experiment_report_postgres",
    description="Daily sequential analysis of the checkout experiment on PostgreSQL",
    schedule=CronDataIntervalTimetable("0 6 * * *", timezone="UTC"),
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
        "retries": 2,
        "retry_delay": timedelta(minutes=5),
        "execution_timeout": timedelta(hours=1),
        "on_failure_callback": SmtpNotifier(to=NOTIFY),
    },
    tags=["dataeng", "experiment", "postgres"],
) as dag:

    @task
    def bundled_config() -> str:
        """Path of the bundled experiment config (resolved on the worker, not at parse time)."""
        from importlib.resources import files

        return str(files("dataeng_agents.core.examples") / "experiments" / "checkout_demo.yaml")

    ExperimentAnalysisOperator(
        task_id="analyse_checkout",
        config=bundled_config(),
        conn_id="dataeng_warehouse",
        anthropic_conn_id="anthropic_default" if USE_CLAUDE else None,
        deferrable=USE_CLAUDE,
        poll_interval=300,
        srm_policy="fail",
        guardrail_policy="warn",
        execution_timeout=timedelta(hours=2),  # covers the deferral
    )
