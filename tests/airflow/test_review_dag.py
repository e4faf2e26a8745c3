"""The weekly DAG-folder review example with ``dag.test()``, and the project's own reviewer on the
provider and the examples."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from conftest import DAGS, EXAMPLES, REPO
from dagrun import load_dag, local_path, run, task_states, xcom

LEGACY_DAG = """
from datetime import datetime

from airflow import DAG
from airflow.operators.bash import BashOperator

with DAG("legacy_etl", schedule_interval="@daily", start_date=datetime(2024, 1, 1)) as dag:
    BashOperator(task_id="load", bash_command="echo load")
"""


def test_examples_and_provider_pass_the_project_reviewer_at_strict() -> None:
    from dataeng_agents.core.commands.data_pipeline import review_paths

    targets = [REPO / "airflow_provider", *sorted(EXAMPLES.glob("airflow_*.py"))]
    result = review_paths(targets, profile="strict", airflow_version="3.3")

    assert result.summary()["file_errors"] == 0
    assert [f"{f.path}:{f.line} {f.rule_id} {f.message}" for f in result.findings] == []
    reviewed = {Path(f.path).name for f in result.files if f.kind == "airflow"}
    assert {p.name for p in EXAMPLES.glob("airflow_*.py")} <= reviewed


def test_weekly_review_fails_on_an_error_writes_the_review_and_still_advises(
    airflow_db: Path, write_dag: Any
) -> None:
    write_dag("legacy_etl.py", LEGACY_DAG)
    dag = load_dag("airflow_weekly_dag_review.py")

    dr = run(dag, datetime(2024, 3, 11, 7, tzinfo=UTC))

    states = task_states(dr)
    assert states == {
        "review_dags": "failed",
        "what_to_fix_first": "success",
        "watcher": "success",
    } or states == {
        "review_dags": "failed",
        "what_to_fix_first": "success",
        "watcher": "failed",
    }
    assert str(dr.state.value if hasattr(dr.state, "value") else dr.state) == "failed"

    # the review was written before the task failed, and it is the core's review of the folder
    summary = xcom(dr, "review_dags", key="summary")
    assert summary["findings"]["error"] >= 1
    review = json.loads(local_path(summary["report"]["json"]).read_text())
    from dataeng_agents.core.commands.data_pipeline import review_paths

    direct = review_paths([DAGS], profile="strict", airflow_version="3.3")
    assert sorted(f["id"] for f in review["findings"]) == sorted(f.id for f in direct.findings)
    errors = [f for f in review["findings"] if f["severity"] == "error"]
    assert {(Path(f["path"]).name, f["rule_id"]) for f in errors} == {("legacy_etl.py", "SCH005")}
    assert review["advice"]["provenance"]["narrator"] == "template"
    assert "SCH005" in local_path(summary["report"]["md"]).read_text()
    sarif = json.loads(local_path(summary["report"]["sarif"]).read_text())
    assert sarif["version"] == "2.1.0"
    assert "SCH005" in local_path(summary["report"]["html"]).read_text()
    assert xcom(dr, "review_dags", key="_link_ReportLink") == summary["report"]["html"]

    # the persona got the failed review's summary as its context document
    answer = xcom(dr, "what_to_fix_first")
    assert answer["provenance"]["narrator"] == "template"
    assert any("context:review_dags.json" in p["refs"] for p in answer["points"])
