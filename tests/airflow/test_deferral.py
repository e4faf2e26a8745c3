"""Deferrable narration end to end with ``dag.test()``: the operator submits one Message Batch,
defers, the trigger polls it with the async client, the task resumes and writes the report with
Claude's prose. A retry after a crash re-attaches to the same batch. The real ``anthropic`` SDK and
the official ``AnthropicHook`` talk to a fake Batches API behind ``httpx2.MockTransport``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import bundled_config
from dagrun import all_xcom_text, load_dag, local_path, rendered_fields_text, run, task_states, xcom
from fake_anthropic import FakeAnthropicAPI

API_KEY = "sk-ant-api03-DEFERRAL-SECRET-7f3a9c2e1b"
LOGICAL_DATE = datetime(2024, 3, 9, tzinfo=UTC)

DAG_SOURCE = """
from datetime import datetime, timedelta

from airflow.sdk import DAG
from dataeng_agents.airflow_provider.operators.experiment import ExperimentAnalysisOperator

with DAG(
    dag_id="dataeng_test_deferral",
    schedule=None,
    start_date=datetime(2024, 3, 1),
    default_args={{"retries": {retries}, "retry_delay": timedelta(seconds=0)}},
) as dag:
    ExperimentAnalysisOperator(
        task_id="analyse",
        config={config!r},
        duckdb_path="{{{{ params.duckdb }}}}",
        params={{"duckdb": {duckdb!r}}},
        anthropic_conn_id="anthropic_test",
        deferrable=True,
        poll_interval=0.01,
    )
"""


@pytest.fixture
def anthropic_conn(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(
        "AIRFLOW_CONN_ANTHROPIC_TEST",
        json.dumps({"conn_type": "anthropic", "password": API_KEY, "extra": {"model": "claude-sonnet-4-5"}}),
    )
    return "anthropic_test"


def _deferral_dag(write_dag: Any, duckdb: Path, retries: int) -> Any:
    write_dag(
        "test_deferral_dag.py",
        DAG_SOURCE.format(retries=retries, config=bundled_config(), duckdb=str(duckdb)),
    )
    return load_dag("test_deferral_dag.py")


def _assert_claude_report(dr: Any, duckdb: Path) -> dict[str, Any]:
    summary = xcom(dr, "analyse")
    report = json.loads(local_path(summary["report"]["json"]).read_text())
    provenance = report["narrative"]["provenance"]
    assert provenance["narrator"] == "claude", provenance
    assert provenance["fallback_reason"] is None
    assert provenance["usage"]["batch"] == 1.0  # answered from the batch, at batch prices
    assert report["narrative"]["headline"] == "Claude wrote this headline."

    # the LLM wrote prose only: every number is the core's
    from dataeng_agents.core.experiment import analyze_experiment
    from dataeng_agents.core.warehouse import DuckDBWarehouse

    interval = (datetime(2024, 3, 1, tzinfo=UTC), dr.data_interval_end)
    direct = analyze_experiment(bundled_config(), DuckDBWarehouse(str(duckdb)), data_interval=interval)
    got = {r["id"]: r["estimate"] for r in report["results"]}
    assert got == pytest.approx({r.id: r.estimate for r in direct.results}, rel=1e-9)
    assert report["decision"] == direct.decision.model_dump(mode="json")
    return report


def test_operator_defers_trigger_polls_and_task_resumes(
    airflow_db: Path,
    checkout_duckdb: Path,
    anthropic_conn: str,
    write_dag: Any,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    api = FakeAnthropicAPI(polls_before_end=2).install(monkeypatch)
    dag = _deferral_dag(write_dag, checkout_duckdb, retries=0)

    dr = run(dag, LOGICAL_DATE)

    assert task_states(dr) == {"analyse": "success"}
    _assert_claude_report(dr, checkout_duckdb)
    # one batch, polled by the trigger with the ASYNC client until it ended, then read once
    assert len(api.batch_creates) == 1
    batch_id = next(iter(api.batches))
    polls = api.calls("GET", f"/v1/messages/batches/{batch_id}")
    trigger_polls = [r for r in polls if r.headers.get("x-stainless-async", "false") != "false"]
    assert len(trigger_polls) >= 3, [r.headers.get("x-stainless-async") for r in polls]
    assert len(api.calls("GET", f"/v1/messages/batches/{batch_id}/results")) == 1
    # the submitted request is the core's: one request, the connection's model, the final_answer tool
    body = json.loads(api.batch_creates[0].content)
    assert len(body["requests"]) == 1
    assert body["requests"][0]["params"]["model"] == "claude-sonnet-4-5"
    assert [t["name"] for t in body["requests"][0]["params"]["tools"]] == ["final_answer"]
    # the key authenticated every call and appears nowhere a user can read it
    assert all(API_KEY in r.headers["authorization"] for r in api.requests)
    out, err = capfd.readouterr()
    assert API_KEY not in out + err + caplog.text
    assert API_KEY not in all_xcom_text(dr)
    assert API_KEY not in rendered_fields_text(dr)
    assert API_KEY not in json.dumps(api.batch_creates[0].content.decode())


def test_retry_after_a_crash_reattaches_to_the_same_batch(
    airflow_db: Path,
    checkout_duckdb: Path,
    anthropic_conn: str,
    write_dag: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dataeng_agents.airflow_provider.operators._narrated import NarratedOperator

    api = FakeAnthropicAPI(polls_before_end=1).install(monkeypatch)
    real_defer_on = NarratedOperator._defer_on
    attempts: list[list[str]] = []

    def crash_once(self: NarratedOperator, batch_ids: list[str], *args: Any) -> None:
        attempts.append(list(batch_ids))
        if len(attempts) == 1:
            # the worker dies after the batch was submitted (and paid for), before deferring
            raise RuntimeError("worker lost (simulated)")
        real_defer_on(self, batch_ids, *args)

    monkeypatch.setattr(NarratedOperator, "_defer_on", crash_once)
    dag = _deferral_dag(write_dag, checkout_duckdb, retries=1)

    dr = run(dag, LOGICAL_DATE)

    assert task_states(dr) == {"analyse": "success"}
    (ti,) = dr.get_task_instances()
    assert ti.try_number == 2
    assert len(attempts) == 2 and attempts[0] == attempts[1]  # the retry waited for the same batch
    assert len(api.batch_creates) == 1  # no second bill
    _assert_claude_report(dr, checkout_duckdb)
