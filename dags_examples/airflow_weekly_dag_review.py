"""Weekly review of this deployment's DAG folder with the project's rules, at the strict profile.

``PipelineReviewOperator`` reviews ``[core] dags_folder`` (no DAG code is executed: the review is
static), writes ``review.json`` / ``review.md`` / ``review.sarif`` / ``review.html`` and fails when a finding is an
error. The data-engineer persona then reads the review summary and says what to fix first; it runs
even when the review failed, which is when its advice matters most, and a watcher task keeps the
run failed in that case.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from airflow.providers.smtp.notifications.smtp import SmtpNotifier
from airflow.sdk import DAG, AsyncCallback, DeadlineAlert, DeadlineReference, task
from airflow.sdk.exceptions import AirflowFailException
from airflow.timetables.trigger import CronTriggerTimetable
from dataeng_agents.airflow_provider.operators.agent import DataengAgentOperator
from dataeng_agents.airflow_provider.operators.review import PipelineReviewOperator

NOTIFY = ["data-platform@example.com"]
USE_CLAUDE = os.environ.get("DATAENG_USE_CLAUDE") == "1"

with DAG(
    dag_id="dataeng_weekly_dag_review",
    description="Static review of every DAG in the DAGs folder (strict profile)",
    schedule=CronTriggerTimetable("0 7 * * 1", timezone="UTC"),
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=1),
    deadline=DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(minutes=45),
        callback=AsyncCallback(SmtpNotifier, kwargs={"to": NOTIFY, "subject": "DAG review is late"}),
    ),
    default_args={
        "owner": "data-platform",
        "retries": 1,
        "execution_timeout": timedelta(minutes=30),
        "on_failure_callback": SmtpNotifier(to=NOTIFY),
    },
    tags=["dataeng", "review"],
) as dag:
    review = PipelineReviewOperator(task_id="review_dags", profile="strict", fail_on="error")
    advice = DataengAgentOperator(
        task_id="what_to_fix_first",
        persona="data-engineer",
        question="Which of these review findings should the team fix first this week, and why?",
        context_task_ids=["review_dags"],
        context_xcom_key="summary",
        anthropic_conn_id="anthropic_default" if USE_CLAUDE else None,
        trigger_rule="all_done",
    )

    # a watcher that retried would only fail again: no retries on purpose
    @task(trigger_rule="one_failed", retries=0)
    def watcher() -> None:  # dataeng: ignore[REL001]
        """Fails the run when any task failed (the advice task runs ``all_done`` and would hide it)."""
        raise AirflowFailException("a task of the weekly review failed; see review_dags")

    review >> advice
    [review, advice] >> watcher()
