"""PipelineReviewOperator reads the review config as the CLI does, and writes the markdown the CLI
prints (issue 12: the operator used to build its own config and review at ``default``)."""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dagrun import load_dag, local_path, run, xcom
from review_project import make_project

DAG_SOURCE = """
from datetime import datetime

from airflow.sdk import DAG
from dataeng_agents.airflow_provider.operators.review import PipelineReviewOperator

with DAG(dag_id="dataeng_test_review_config", schedule=None, start_date=datetime(2024, 3, 1)) as dag:
    PipelineReviewOperator(task_id="review", paths=[{dags!r}], fail_on="never", output_path={out!r})
"""


def test_operator_uses_the_project_profile_and_the_core_renderer(
    airflow_db: Path, write_dag: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    from dataeng_agents.core.cli import app
    from typer.testing import CliRunner

    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    (tmp_path / "team").mkdir()
    dags = make_project(tmp_path / "team")
    write_dag(
        "test_review_config_dag.py",
        textwrap.dedent(DAG_SOURCE.format(dags=str(dags), out=str(tmp_path / "out"))),
    )
    dr = run(load_dag("test_review_config_dag.py"), datetime(2024, 3, 9, tzinfo=UTC))

    summary = xcom(dr, "review", key="summary")
    assert summary["profile"] == "strict"
    review = json.loads(local_path(summary["report"]["json"]).read_text())
    assert {f["severity"] for f in review["findings"] if f["rule_id"] == "REL003"} == {"error"}

    cli = CliRunner().invoke(app, ["review", str(dags), "--format", "json", "--fail-on", "never"])
    assert sorted(f["id"] for f in json.loads(cli.output)["findings"]) == sorted(
        f["id"] for f in review["findings"]
    )
    explained = CliRunner().invoke(
        app, ["review", str(dags), "--explain", "-f", "markdown", "--fail-on", "never"]
    )
    assert explained.output.strip() == local_path(summary["report"]["md"]).read_text().strip()
