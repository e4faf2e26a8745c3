"""Production shape of the Airflow operators, each behaviour run through ``dag.test()``:

* dynamic task mapping: ``.partial(...).expand(config=[a, b])`` instances each write their own
  report (map index in the path), push their own summary and "Report" link, and emit their own
  asset event on an outlet the scheduler registered;
* argument validation at run time: a misspelt persona, a connection of the wrong type, an unknown
  context task, a missing review path (even with ``fail_on="never"``), an unreviewable file named
  with its error;
* templated ``anthropic_conn_id``/``model``, ``fail_on_llm_error`` and the ``narration`` summary;
* deferral bounded by ``execution_timeout``: the trigger gives up ``timeout_margin`` seconds early,
  the batch is cancelled, the template report is written, the warehouse is queried once and no
  "XCom not found" error is logged;
* ``on_kill`` cancels the pending batch and forgets it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import bundled_config
from dagrun import load_dag, local_path, run, task_log_text, task_states
from fake_anthropic import FakeAnthropicAPI

API_KEY = "sk-ant-api03-PRODUCTION-SECRET-0b5e55ed"
LOGICAL_DATE = datetime(2024, 3, 9, tzinfo=UTC)


def _xcoms(dr: Any, task_id: str, key: str = "return_value") -> dict[int, Any]:
    """``{map_index: value}`` of one task's XCom in ``dr``."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(XComModel.map_index, XComModel.value).where(
                XComModel.dag_id == dr.dag_id,
                XComModel.run_id == dr.run_id,
                XComModel.task_id == task_id,
                XComModel.key == key,
            )
        ).all()
    return {int(i): v for i, v in rows}


def _asset_events(asset_name: str) -> list[dict[str, Any]]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(AssetEvent.extra, AssetModel.uri)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetModel.name == asset_name)
        ).all()
    return [{**(extra or {}), "_uri": uri} for extra, uri in rows]


MAPPED_DAG = """
from datetime import datetime

from airflow.sdk import DAG
from dataeng_agents.airflow_provider.operators.experiment import ExperimentAnalysisOperator

with DAG(dag_id="dataeng_test_mapped", schedule=None, start_date=datetime(2024, 3, 1),
         params={{"conn": "anthropic_prod", "model": "claude-sonnet-4-5"}}) as dag:
    ExperimentAnalysisOperator.partial(
        task_id="analyse",
        duckdb_path={duckdb!r},
        output_path={output!r},
        anthropic_conn_id="{{{{ params.conn }}}}",
        model="{{{{ params.model }}}}",
    ).expand(config=[{first!r}, {second!r}])
"""


def test_mapped_instances_get_their_own_report_link_and_asset_event(
    airflow_db: Path,
    checkout_duckdb: Path,
    write_dag: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_ANTHROPIC_PROD", json.dumps({"conn_type": "anthropic", "password": API_KEY})
    )
    api = FakeAnthropicAPI().install(monkeypatch)
    second = yaml.safe_load(Path(bundled_config()).read_text())
    second["id"] = "checkout-2024-03-rerun"
    output = tmp_path / "reports"
    write_dag(
        "test_mapped_dag.py",
        MAPPED_DAG.format(
            duckdb=str(checkout_duckdb),
            output=str(output),
            first=bundled_config(),
            second=yaml.safe_dump(second),  # YAML text: the loader takes paths, text and dicts
        ),
    )
    dag = load_dag("test_mapped_dag.py")
    # the outlet is declared on the mapped task itself, so the scheduler registers the asset
    (asset,) = dag.get_task("analyse").partial_kwargs["outlets"]
    assert asset.uri == output.resolve().as_uri()  # the Asset URI follows output_path

    dr = run(dag, LOGICAL_DATE)

    tis = {ti.map_index: ti for ti in dr.get_task_instances()}
    assert {i: str(ti.state) for i, ti in tis.items()} == {0: "success", 1: "success"}
    summaries = _xcoms(dr, "analyse")
    links = _xcoms(dr, "analyse", key="_link_ReportLink")
    assert [summaries[i]["experiment_id"] for i in (0, 1)] == ["checkout-2024-03", "checkout-2024-03-rerun"]
    for index in (0, 1):
        summary = summaries[index]
        folder = local_path(summary["report"]["json"]).parent
        assert folder == output / f"map_index={index}"
        written = json.loads(local_path(summary["report"]["json"]).read_text())
        assert written["experiment_id"] == summary["experiment_id"]  # its own report, not the other's
        assert links[index] == summary["report"]["html"]
        # templated connection and model reached the narrator: Claude wrote the prose
        assert summary["narration"] == {"narrator": "claude", "fell_back": False, "fallback_reasons": []} or (
            summary["narration"]["narrator"] == "claude" and not summary["narration"]["fell_back"]
        )
    models = {json.loads(r.content)["model"] for r in api.calls("POST", "/v1/messages")}
    assert models == {"claude-sonnet-4-5"}

    events = _asset_events(asset.name)
    assert sorted((e["map_index"], e["experiment_id"]) for e in events) == [
        (0, "checkout-2024-03"),
        (1, "checkout-2024-03-rerun"),
    ]
    assert {e["report"]["html"] for e in events} == {links[0], links[1]}


VALIDATION_DAG = """
from datetime import datetime, timedelta

from airflow.sdk import DAG
from dataeng_agents.airflow_provider.operators.agent import DataengAgentOperator
from dataeng_agents.airflow_provider.operators.experiment import ExperimentAnalysisOperator
from dataeng_agents.airflow_provider.operators.review import PipelineReviewOperator

with DAG(dag_id="dataeng_test_validation", schedule=None, start_date=datetime(2024, 3, 1)) as dag:
    DataengAgentOperator(task_id="misspelt_persona", question="q", persona="data-enginer")
    DataengAgentOperator(
        task_id="misspelt_persona_deferred", question="q", persona="data-enginer",
        anthropic_conn_id="anthropic_prod", deferrable=True,
    )
    DataengAgentOperator(task_id="wrong_conn_type", question="q", anthropic_conn_id="not_anthropic")
    DataengAgentOperator(task_id="unknown_upstream", question="q", context_task_ids=["analyse_typo"])
    DataengAgentOperator(task_id="template_answer", question="q", persona="backend-architect")
    PipelineReviewOperator(task_id="missing_path", paths=[{missing!r}], fail_on="never")
    PipelineReviewOperator(task_id="broken_file", paths=[{broken!r}], fail_on="never")
    PipelineReviewOperator(task_id="broken_file_fails", paths=[{broken!r}], fail_on="error")
    ExperimentAnalysisOperator(
        task_id="llm_error_fails", config={config!r}, duckdb_path={duckdb!r},
        anthropic_conn_id="anthropic_prod", fail_on_llm_error=True, output_path={output!r},
    )
    # no such table: no retry can help, so the task fails at once despite its retries
    ExperimentAnalysisOperator(
        task_id="missing_table", config={config!r}, duckdb_path={empty!r}, retries=3,
        retry_delay=timedelta(seconds=1),
    )
"""


def test_operators_validate_their_arguments_and_name_what_failed(
    airflow_db: Path,
    checkout_duckdb: Path,
    write_dag: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_ANTHROPIC_PROD", json.dumps({"conn_type": "anthropic", "password": API_KEY})
    )
    monkeypatch.setenv("AIRFLOW_CONN_NOT_ANTHROPIC", json.dumps({"conn_type": "postgres", "host": "h"}))
    import httpx2

    api = FakeAnthropicAPI()
    # every request fails: fail_on_llm_error must fail the task, after the report is written
    monkeypatch.setattr(
        api,
        "handler",
        lambda request: httpx2.Response(
            400, json={"type": "error", "error": {"type": "invalid_request_error", "message": "nope"}}
        ),
    )
    api.install(monkeypatch)
    broken = tmp_path / "broken_dag.py"
    broken.write_text("from airflow.sdk import DAG\nwith DAG(dag_id='x' as dag:\n    pass\n")
    missing = tmp_path / "no_such_folder"
    import duckdb

    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    write_dag(
        "test_validation_dag.py",
        VALIDATION_DAG.format(
            missing=str(missing),
            broken=str(broken),
            config=bundled_config(),
            duckdb=str(checkout_duckdb),
            output=str(tmp_path / "llm"),
            empty=str(empty),
        ),
    )
    dag = load_dag("test_validation_dag.py")

    dr = run(dag, LOGICAL_DATE)

    assert task_states(dr) == {
        "misspelt_persona": "failed",
        "misspelt_persona_deferred": "failed",
        "wrong_conn_type": "failed",
        "unknown_upstream": "failed",
        "template_answer": "success",
        "missing_path": "failed",
        "broken_file": "success",  # fail_on="never": reviewed what it could, named the file
        "broken_file_fails": "failed",
        "llm_error_fails": "failed",
        "missing_table": "failed",
    }
    (missing_table,) = [ti for ti in dr.get_task_instances() if ti.task_id == "missing_table"]
    assert missing_table.try_number == 1  # not retried
    out, err = capfd.readouterr()
    # dag.test() runs every task in this process: their errors are in its output
    text = out + err + caplog.text + "".join(task_log_text(dr, ti.task_id) for ti in dr.get_task_instances())
    logs = dict.fromkeys(task_states(dr), text)
    assert "persona: " in text and "data-enginer" in text
    assert "not retried: a retry would fail the same way" in text
    assert api.batch_creates == []  # the deferred one failed before submitting anything
    assert "'postgres', expected 'anthropic'" in logs["wrong_conn_type"]
    assert "no task 'analyse_typo'" in logs["unknown_upstream"]
    assert "no such file or folder" in logs["missing_path"] and str(missing) in logs["missing_path"]
    assert f"{broken}:" in logs["broken_file_fails"] and "could not be reviewed" in logs["broken_file_fails"]
    assert "could not be reviewed: " + str(broken) in logs["broken_file_fails"]
    # the LLM failure failed the task after the template report was written, and said so
    (report,) = (tmp_path / "llm").glob("*.json")
    provenance = json.loads(report.read_text())["narrative"]["provenance"]
    assert provenance["narrator"] == "template" and provenance["fallback_reason"]
    assert "the template wrote the prose because Claude failed" in logs["llm_error_fails"]
    summary = _xcoms(dr, "llm_error_fails", key="summary")[-1]
    assert summary["narration"]["fell_back"] is True
    assert summary["narration"]["fallback_reasons"] == [provenance["fallback_reason"]]


def test_agent_operator_alias_is_deprecated() -> None:
    from dataeng_agents.airflow_provider.operators.agent import AgentOperator, DataengAgentOperator

    with pytest.warns(DeprecationWarning, match="DataengAgentOperator"):
        op = AgentOperator(task_id="old", question="q")
    assert isinstance(op, DataengAgentOperator)
    assert {"anthropic_conn_id", "model"} <= set(DataengAgentOperator.template_fields)


DEFERRAL_DAG = """
from datetime import datetime, timedelta

from airflow.sdk import DAG
from dataeng_agents.airflow_provider.operators.experiment import ExperimentAnalysisOperator

with DAG(dag_id="dataeng_test_deferral_bound", schedule=None, start_date=datetime(2024, 3, 1)) as dag:
    ExperimentAnalysisOperator(
        task_id="analyse",
        config={config!r},
        duckdb_path={duckdb!r},
        anthropic_conn_id="anthropic_prod",
        deferrable=True,
        poll_interval=1.0,
        execution_timeout=timedelta(seconds={timeout}),
        timeout_margin={margin},
    )
"""


def test_deferral_is_bounded_by_execution_timeout_and_cancels_the_batch(
    airflow_db: Path,
    checkout_duckdb: Path,
    write_dag: Any,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    import time

    from dataeng_agents.airflow_provider.operators._narrated import NarratedOperator
    from dataeng_agents.airflow_provider.triggers.narration import NarrationBatchTrigger
    from dataeng_agents.core.warehouse import runners

    monkeypatch.setenv(
        "AIRFLOW_CONN_ANTHROPIC_PROD", json.dumps({"conn_type": "anthropic", "password": API_KEY})
    )
    # the batch never ends; the default batch_timeout (24 h) would wait a day
    api = FakeAnthropicAPI(polls_before_end=10**9).install(monkeypatch)
    queries: list[str] = []
    real_query = runners.DuckDBWarehouse.query

    def counting_query(self: Any, sql: str, *args: Any, **kwargs: Any) -> Any:
        queries.append(sql)
        return real_query(self, sql, *args, **kwargs)

    monkeypatch.setattr(runners.DuckDBWarehouse, "query", counting_query)
    deferrals: list[dict[str, Any]] = []
    real_defer = NarratedOperator.defer

    def recording_defer(self: Any, *, trigger: Any, method_name: str, timeout: Any = None, **kw: Any) -> Any:
        assert isinstance(trigger, NarrationBatchTrigger)
        deferrals.append({"at": time.time(), "end_time": trigger.end_time, "timeout": timeout})
        return real_defer(self, trigger=trigger, method_name=method_name, timeout=timeout, **kw)

    monkeypatch.setattr(NarratedOperator, "defer", recording_defer)
    timeout, margin = 60, 52
    write_dag(
        "test_deferral_bound_dag.py",
        DEFERRAL_DAG.format(
            config=bundled_config(), duckdb=str(checkout_duckdb), timeout=timeout, margin=margin
        ),
    )
    dag = load_dag("test_deferral_bound_dag.py")

    started = time.time()
    dr = run(dag, LOGICAL_DATE)

    assert task_states(dr) == {"analyse": "success"}
    (deferral,) = deferrals
    waited = deferral["end_time"] - deferral["at"]
    assert 0 < waited <= timeout - margin  # not batch_timeout (24 h)
    assert deferral["timeout"].total_seconds() <= timeout  # Airflow's backstop fires after the trigger
    assert time.time() - started < timeout + 60
    # the trigger timed out: the batch was cancelled and the template wrote the prose
    (batch_id,) = api.batches
    assert len(api.calls("POST", f"/v1/messages/batches/{batch_id}/cancel")) == 1
    summary = _xcoms(dr, "analyse")[-1]
    report = json.loads(local_path(summary["report"]["json"]).read_text())
    assert report["narrative"]["provenance"]["narrator"] == "template"
    assert "timeout" in report["narrative"]["provenance"]["fallback_reason"]
    assert summary["narration"]["fell_back"] is True
    # the warehouse was queried once across the deferral (the report waited in task_state_store)
    assert len(queries) == 1, len(queries)
    out, err = capfd.readouterr()
    assert "XCom not found" not in out + err + task_log_text(dr, "analyse")


def test_on_kill_cancels_the_pending_batch_and_forgets_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from dataeng_agents.airflow_provider.operators._narrated import TaskStateLedger
    from dataeng_agents.airflow_provider.operators.experiment import ExperimentAnalysisOperator
    from dataeng_agents.core.llm.ledger import LedgerEntry

    monkeypatch.setenv(
        "AIRFLOW_CONN_ANTHROPIC_PROD", json.dumps({"conn_type": "anthropic", "password": API_KEY})
    )
    api = FakeAnthropicAPI().install(monkeypatch)
    api.batches["msgbatch_0001"] = {"requests": [], "polls": 0}

    class Store(dict[str, Any]):
        def set(self, key: str, value: Any) -> None:
            self[key] = value

        def delete(self, key: str) -> None:
            self.pop(key, None)

    ledger = TaskStateLedger(Store())
    ledger.put(
        LedgerEntry("req-1", "msgbatch_0001", "2024-03-09T00:00:00", "m", "data-engineer", "experiment", "x")
    )
    op = ExperimentAnalysisOperator(
        task_id="killed", config={}, anthropic_conn_id="anthropic_prod", deferrable=True
    )
    # the state execute() leaves between submitting the batch and deferring
    op._pending_batches, op._pending_ledger, op._pending_custom_ids = ["msgbatch_0001"], ledger, ["req-1"]

    op.on_kill()

    assert len(api.calls("POST", "/v1/messages/batches/msgbatch_0001/cancel")) == 1
    assert ledger.get("req-1") is None  # a retry submits a fresh batch instead of a cancelled one
