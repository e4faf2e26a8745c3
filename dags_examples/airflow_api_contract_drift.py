"""Nightly API contract check: breaking changes since the deployed release, and a contract review.

``ApiContractDiffOperator`` compares the repository's contract with the same file at the git ref of
the deployed release (``API_DEPLOYED_REF``, e.g. a release tag) and fails on a breaking change;
``ApiContractReviewOperator`` reviews the repository's contracts at the strict profile. Both write
their reports (JSON/Markdown, plus SARIF/HTML for the review) before they fail, and the
backend-architect persona writes the advice when ``DATAENG_USE_CLAUDE=1`` (templates otherwise).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from airflow.providers.smtp.notifications.smtp import SmtpNotifier
from airflow.sdk import DAG, AsyncCallback, DeadlineAlert, DeadlineReference
from airflow.timetables.trigger import CronTriggerTimetable
from dataeng_agents.airflow_provider.operators.api_contract import (
    ApiContractDiffOperator,
    ApiContractReviewOperator,
)

NOTIFY = ["api-platform@example.com"]
USE_CLAUDE = os.environ.get("DATAENG_USE_CLAUDE") == "1"
API_SPEC = os.environ.get("API_SPEC_PATH", "/opt/airflow/repo/api/openapi.yaml")
DEPLOYED_REF = os.environ.get("API_DEPLOYED_REF", "production")

with DAG(
    dag_id="dataeng_api_contract_drift",
    description="Nightly breaking-change gate and review of the API contract",
    doc_md=__doc__,
    schedule=CronTriggerTimetable("30 2 * * *", timezone="UTC"),
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=1),
    deadline=DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(minutes=45),
        callback=AsyncCallback(SmtpNotifier, kwargs={"to": NOTIFY, "subject": "API contract check is late"}),
    ),
    default_args={
        "owner": "api-platform",
        "retries": 1,
        "retry_delay": timedelta(minutes=5),
        "execution_timeout": timedelta(minutes=20),
        "on_failure_callback": SmtpNotifier(to=NOTIFY),
    },
    tags=["dataeng", "api", "review"],
) as dag:
    drift = ApiContractDiffOperator(
        task_id="breaking_changes_since_release",
        new_path=API_SPEC,
        base_ref=DEPLOYED_REF,
        fail_on="breaking",
        anthropic_conn_id="anthropic_default" if USE_CLAUDE else None,
    )
    review = ApiContractReviewOperator(
        task_id="review_contract",
        paths=[API_SPEC],
        profile="strict",
        fail_on="error",
        anthropic_conn_id="anthropic_default" if USE_CLAUDE else None,
    )
