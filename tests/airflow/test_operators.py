"""Operator behaviours in one ``dag.test()`` run: a guardrail policy that fails the task after the
report is written, a remote ``ObjectStoragePath`` destination, synchronous Claude narration through
the official ``anthropic`` connection, the persona with upstream context, the asset event, and the
operators' argument validation."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import bundled_config
from dagrun import all_xcom_text, load_dag, local_path, rendered_fields_text, run, task_states, xcom
from fake_anthropic import FakeAnthropicAPI
from test_example_dags import assert_close

API_KEY = "sk-ant-api03-OPERATORS-SECRET-51c0ffee"

DAG_SOURCE = """
from datetime import datetime

from airflow.sdk import DAG
from dataeng_agents.airflow_provider.operators.agent import DataengAgentOperator
from dataeng_agents.airflow_provider.operators.experiment import ExperimentAnalysisOperator

with DAG(dag_id="dataeng_test_operators", schedule=None, start_date=datetime(2024, 3, 1)) as dag:
    strict = ExperimentAnalysisOperator(
        task_id="guardrail_fails",
        config={config!r},
        duckdb_path={duckdb!r},
        guardrail_policy="fail",
        retries=3,
    )
    remote = ExperimentAnalysisOperator(
        task_id="to_object_storage",
        config={config!r},
        duckdb_path={duckdb!r},
        output_path="memory://reports/{{{{ dag.dag_id }}}}/{{{{ run_id }}}}",
        formats=["json", "md"],
    )
    claude = ExperimentAnalysisOperator(
        task_id="claude_sync",
        config={config!r},
        duckdb_path={duckdb!r},
        anthropic_conn_id="anthropic_ops",
        deferrable=False,
    )
    DataengAgentOperator(
        task_id="ask",
        question="What should the team do about {{{{ ti.xcom_pull(task_ids='claude_sync')['verdict'] }}}}?",
        context_task_ids=["claude_sync", "to_object_storage"],
        anthropic_conn_id="anthropic_ops",
    ).set_upstream([claude, remote])
"""


def test_operator_behaviours(
    airflow_db: Path,
    checkout_duckdb: Path,
    write_dag: Any,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_ANTHROPIC_OPS", json.dumps({"conn_type": "anthropic", "password": API_KEY})
    )
    api = FakeAnthropicAPI().install(monkeypatch)
    write_dag(
        "test_operators_dag.py", DAG_SOURCE.format(config=bundled_config(), duckdb=str(checkout_duckdb))
    )
    dag = load_dag("test_operators_dag.py")

    dr = run(dag, datetime(2024, 3, 9, tzinfo=UTC))

    states = task_states(dr)
    assert states == {
        "guardrail_fails": "failed",
        "to_object_storage": "success",
        "claude_sync": "success",
        "ask": "success",
    }
    (failed,) = [ti for ti in dr.get_task_instances() if ti.task_id == "guardrail_fails"]
    assert failed.try_number == 1  # AirflowFailException: retries=3 were not used

    # the guardrail policy failed the task only after the report was written
    summary = xcom(dr, "guardrail_fails", key="summary")
    report = json.loads(local_path(summary["report"]["json"]).read_text())
    regressed = [
        r["id"]
        for r in report["results"]
        if r["role"] == "guardrail" and r["significant"] and r["direction"] == "worse"
    ]
    assert regressed == ["page_latency/recommendations"]

    # remote object storage: written through ObjectStoragePath (fsspec memory filesystem, same process)
    remote = xcom(dr, "to_object_storage")
    assert set(remote["report"]) == {"json", "md"}
    assert remote["report"]["json"].startswith("memory://reports/dataeng_test_operators/")
    from airflow.sdk import ObjectStoragePath

    remote_report = json.loads(ObjectStoragePath(remote["report"]["json"]).read_text())
    assert remote_report["experiment_id"] == "checkout-2024-03"
    assert_close(remote_report["results"], report["results"], "remote")

    # synchronous Claude narration with the connection's key; numbers unchanged, prose from Claude
    claude = xcom(dr, "claude_sync")
    claude_report = json.loads(local_path(claude["report"]["json"]).read_text())
    assert claude_report["narrative"]["provenance"]["narrator"] == "claude"
    assert_close(claude_report["results"], report["results"], "claude")
    assert claude["headline"] == "Claude wrote this headline."
    assert api.batch_creates == []  # deferrable=False: interactive Messages API
    assert api.calls("POST", "/v1/messages")

    # the persona saw both upstream summaries as context documents, and the templated question
    answer = xcom(dr, "ask")
    assert answer["provenance"]["narrator"] == "claude"
    asked = [json.loads(r.content) for r in api.calls("POST", "/v1/messages")]
    prompts = [json.dumps(body["messages"]) for body in asked]
    assert any(
        "What should the team do about keep running?" in p or "What should the team do about" in p
        for p in prompts
    )
    assert any("context:claude_sync.json" in p and "context:to_object_storage.json" in p for p in prompts)

    # the asset event carries the verdict
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        events = session.execute(
            select(AssetEvent.extra)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetModel.name == "dataeng_report__dataeng_test_operators__claude_sync")
        ).all()
    assert [e[0]["verdict"] for e in events] == [claude["verdict"]]

    # the key is nowhere a user can read it
    out, err = capfd.readouterr()
    assert API_KEY not in out + err
    assert API_KEY not in all_xcom_text(dr)
    assert API_KEY not in rendered_fields_text(dr)


def test_operator_arguments_are_validated() -> None:
    from dataeng_agents.airflow_provider.operators.experiment import ExperimentAnalysisOperator
    from dataeng_agents.airflow_provider.operators.review import PipelineReviewOperator

    with pytest.raises(ValueError, match="srm_policy"):
        ExperimentAnalysisOperator(task_id="a", config={}, srm_policy="ignore")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="formats"):
        ExperimentAnalysisOperator(task_id="b", config={}, formats=["pdf"])
    with pytest.raises(ValueError, match="window"):
        ExperimentAnalysisOperator(task_id="c", config={}, window="weekly")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="fail_on"):
        PipelineReviewOperator(task_id="d", fail_on="critical")  # type: ignore[arg-type]
    op = ExperimentAnalysisOperator(task_id="e", config={})
    assert op.deferrable is False  # [operators] default_deferrable
    assert {"config", "duckdb_path", "output_path", "conn_id"} <= set(op.template_fields)
    assert [a.name for a in op.outlets] == ["dataeng_report__adhoc_airflow__e"] or len(op.outlets) == 1
