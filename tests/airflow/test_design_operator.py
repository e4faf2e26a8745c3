"""``PipelineDesignOperator`` in one ``dag.test()`` run: the two example requests offline and through an
``anthropic`` connection pointing at a fake Messages API served over HTTP, a mapped task, and bad
input. Every design is compared with what ``dataeng pipeline design -f json`` prints for the same
request (the CLI and the operator share one core facade)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from dagrun import load_dag, local_path, run, task_states, xcom
from fake_anthropic import FakeAnthropicAPI
from pipeline_requests import CLAUDE_SPEC, KAFKA_BQ, PG_SNOW, draft_message, is_draft_request

API_KEY = "sk-ant-api03-DESIGN-SECRET-7e57c0de"

DAG_SOURCE = """
from datetime import datetime

from airflow.sdk import DAG
from dataeng_agents.airflow_provider.operators.design import PipelineDesignOperator

ROOT = @ROOT@

with DAG(dag_id="dataeng_test_design", schedule=None, start_date=datetime(2024, 3, 1)) as dag:
    PipelineDesignOperator(
        task_id="kafka_offline",
        request=@KAFKA@,
        spec_out=ROOT + "/offline/{{ ds_nodash }}/{name}.spec.yaml",
        scaffold_dir=ROOT + "/offline/{name}",
    )
    PipelineDesignOperator(task_id="batch_offline", request=@PG_SNOW@)
    PipelineDesignOperator(
        task_id="kafka_claude",
        request=@KAFKA@,
        anthropic_conn_id="anthropic_design",
        spec_out=ROOT + "/claude/kafka.spec.yaml",
        scaffold_dir=ROOT + "/claude/project",
        max_usd=1.0,
    )
    PipelineDesignOperator(
        task_id="batch_claude_rejected", request=@PG_SNOW@, anthropic_conn_id="anthropic_design"
    )
    PipelineDesignOperator(task_id="missing_spec", request=ROOT + "/missing.yaml")
    PipelineDesignOperator(task_id="spec_exists", request=@KAFKA@, spec_out=ROOT + "/taken.yaml")
    PipelineDesignOperator(task_id="negative_budget", request=@KAFKA@, max_usd=-1.0)
    PipelineDesignOperator(task_id="wrong_conn_type", request=@KAFKA@, anthropic_conn_id="not_anthropic")
    PipelineDesignOperator.partial(task_id="mapped").expand(request=[@KAFKA@, @PG_SNOW@])
"""


@dataclass
class DraftingAPI(FakeAnthropicAPI):
    """The fake Messages API; a drafting request about Kafka gets a valid spec (``CLAUDE_SPEC``),
    any other request the generic schema-example answer (which the drafter rejects)."""

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path == "/v1/messages":
            with self._lock:
                request.read()
                params = json.loads(request.content)
                if is_draft_request(params) and "Kafka" in json.dumps(params["messages"]):
                    self.requests.append(request)
                    return httpx.Response(200, json=draft_message(params))
        return super().handler(request)


def _cli_json(request: str, spec_out: Path, monkeypatch: pytest.MonkeyPatch, base_url: str | None) -> Any:
    """What ``dataeng pipeline design <request> -f json`` prints (Claude at ``base_url`` when given)."""
    from dataeng_agents.core.cli import app
    from typer.testing import CliRunner

    with monkeypatch.context() as m:
        if base_url is None:
            m.delenv("ANTHROPIC_API_KEY", raising=False)
        else:
            m.setenv("ANTHROPIC_API_KEY", API_KEY)
            m.setenv("ANTHROPIC_BASE_URL", base_url)
        m.delenv("DATAENG_NARRATOR", raising=False)
        res = CliRunner().invoke(
            app, ["pipeline", "design", request, "--spec-out", str(spec_out), "-f", "json"]
        )
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def _without_spec_path(doc: dict[str, Any]) -> dict[str, Any]:
    out = dict(doc)
    out["draft"] = {k: v for k, v in doc["draft"].items() if k != "spec_path"}
    return out


def test_design_operator(
    airflow_db: Path,
    write_dag: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    from dataeng_agents.core.design import load_spec

    api = DraftingAPI()
    base_url, server = api.serve_http()
    try:
        monkeypatch.setenv(
            "AIRFLOW_CONN_ANTHROPIC_DESIGN",
            json.dumps({"conn_type": "anthropic", "password": API_KEY, "host": base_url}),
        )
        monkeypatch.setenv("AIRFLOW_CONN_NOT_ANTHROPIC", json.dumps({"conn_type": "postgres", "host": "h"}))
        root = tmp_path / "designs"
        root.mkdir()
        (root / "taken.yaml").write_text("# the user's own spec\n")
        source = (
            DAG_SOURCE.replace("@ROOT@", repr(str(root)))
            .replace("@KAFKA@", repr(KAFKA_BQ))
            .replace("@PG_SNOW@", repr(PG_SNOW))
        )
        write_dag("test_design_dag.py", source)
        dag = load_dag("test_design_dag.py")
        dr = run(dag, datetime(2024, 3, 9, tzinfo=UTC))
        out, err = capfd.readouterr()
        logs = out + err
        claude_requests = [json.loads(r.content) for r in api.calls("POST", "/v1/messages")]

        states = task_states(dr)
        assert states == {
            "kafka_offline": "success",
            "batch_offline": "success",
            "kafka_claude": "success",
            "batch_claude_rejected": "success",
            "missing_spec": "failed",
            "spec_exists": "failed",
            "negative_budget": "failed",
            "wrong_conn_type": "failed",
            "mapped": "success",
        }

        # -- the streaming request, offline: spec (templated path), design files, scaffold --------
        kafka = xcom(dr, "kafka_offline")
        spec_file = root / "offline" / "20240309" / "kafka_events_to_bigquery.spec.yaml"
        assert kafka["spec_path"] == str(spec_file)
        assert load_spec(spec_file).name == "kafka_events_to_bigquery"
        assert (kafka["architecture"], kafka["warehouse"]) == ("kappa", "bigquery")
        assert (kafka["drafted_by"], kafka["fallback_reason"]) == ("extractor", None)
        assert kafka["assumptions"] >= 3 and kafka["open_questions"]
        design = json.loads(local_path(kafka["report"]["json"]).read_text())
        assert kafka["monthly_cost_usd"] == round(design["cost"]["total_usd_per_month"], 2) > 0
        assert "dataeng_test_design/kafka_offline/" in kafka["report"]["json"]
        cli = _cli_json(KAFKA_BQ, tmp_path / "cli_kafka.yaml", monkeypatch, None)
        assert _without_spec_path(design) == _without_spec_path(cli)
        assert design["draft"]["spec_path"] == str(spec_file)
        assert local_path(kafka["report"]["spec"]).read_text() == spec_file.read_text()
        assert "Kappa" in local_path(kafka["report"]["md"]).read_text()
        project = root / "offline" / "kafka_events_to_bigquery"
        assert kafka["scaffold_dir"] == str(project) and kafka["scaffold_files"] > 10
        assert (project / "dags" / "kafka_events_to_bigquery.py").is_file()
        assert (project / "flows" / "kafka_events_to_bigquery_flow.py").is_file()
        assert xcom(dr, "kafka_offline", key="_link_ReportLink") == kafka["report"]["md"]

        # -- the batch request, offline, no spec_out: the spec lives in the run's folder ----------
        batch = xcom(dr, "batch_offline")
        assert (batch["architecture"], batch["warehouse"], batch["schedule"]) == (
            "batch_elt",
            "snowflake",
            "@daily",
        )
        assert batch["spec_path"] == batch["report"]["spec"]
        assert load_spec(local_path(batch["spec_path"])).name == "orders_to_snowflake"
        assert batch["scaffold_dir"] is None and batch["scaffold_files"] == 0
        batch_design = json.loads(local_path(batch["report"]["json"]).read_text())
        batch_cli = _cli_json(PG_SNOW, tmp_path / "cli_batch.yaml", monkeypatch, None)
        assert _without_spec_path(batch_design) == _without_spec_path(batch_cli)

        # -- Claude through the connection drafts the streaming spec --------------------------------
        claude = xcom(dr, "kafka_claude")
        assert (claude["drafted_by"], claude["fallback_reason"], claude["spec"]) == (
            "claude",
            None,
            "clicks_to_bq",
        )
        assert claude["assumptions"] == 2 and "Which key deduplicates a click?" in claude["open_questions"]
        drafted = load_spec(root / "claude" / "kafka.spec.yaml")
        assert drafted.sources[0].volume_gb_per_day == CLAUDE_SPEC["sources"][0]["volume_gb_per_day"]
        claude_design = json.loads(local_path(claude["report"]["json"]).read_text())
        assert claude_design["recommendation"] == claude["architecture"] == "kappa"
        assert (root / "claude" / "project" / "dags" / "clicks_to_bq.py").is_file()
        assert (root / "claude" / "project" / "flows" / "clicks_to_bq_flow.py").is_file()
        first = next(r for r in claude_requests if KAFKA_BQ in json.dumps(r["messages"]))
        tool = next(t for t in first["tools"] if t["name"] == "final_answer")
        assert tool["input_schema"]["properties"]["spec"]["properties"]["sources"]
        assert all(
            r.headers.get("authorization") == f"Bearer {API_KEY}" or r.headers.get("x-api-key") == API_KEY
            for r in api.calls("POST", "/v1/messages")
        )
        seen = len(api.calls("POST", "/v1/messages"))
        cli_claude = _cli_json(KAFKA_BQ, tmp_path / "cli_claude.yaml", monkeypatch, base_url)
        assert len(api.calls("POST", "/v1/messages")) == seen + 1  # the CLI asked the same fake
        assert _without_spec_path(claude_design) == _without_spec_path(cli_claude)

        # -- Claude's answer for the batch request is rejected twice: the extractor's spec stands --
        rejected = xcom(dr, "batch_claude_rejected")
        assert rejected["drafted_by"] == "extractor" and "rejected answer" in rejected["fallback_reason"]
        batch_requests = [r for r in claude_requests if PG_SNOW in json.dumps(r["messages"])]
        assert len(batch_requests) == 2  # the answer and its one repair turn
        rejected_design = json.loads(local_path(rejected["report"]["json"]).read_text())
        assert {k: v for k, v in rejected_design.items() if k != "draft"} == {
            k: v for k, v in batch_design.items() if k != "draft"
        }

        # -- bad input fails the task with the field named, before anything is written -------------
        assert f"request: {root}/missing.yaml: spec file not found" in logs
        assert f"spec_out: {root}/taken.yaml exists" in logs
        assert "max_usd: must be a non-negative number, got -1.0" in logs
        assert "anthropic_conn_id: connection 'not_anthropic' has type 'postgres'" in logs
        assert (root / "taken.yaml").read_text() == "# the user's own spec\n"
        for task_id in ("missing_spec", "spec_exists", "negative_budget", "wrong_conn_type"):
            assert xcom(dr, task_id) is None

        # -- a mapped task: one report folder per map index -----------------------------------------
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session() as session:
            rows = session.execute(
                select(XComModel.map_index, XComModel.value).where(
                    XComModel.run_id == dr.run_id,
                    XComModel.task_id == "mapped",
                    XComModel.key == "return_value",
                )
            ).all()
        mapped = {index: value for index, value in rows}
        assert sorted(mapped) == [0, 1]
        assert [mapped[0]["architecture"], mapped[1]["architecture"]] == ["kappa", "batch_elt"]
        folders = [local_path(mapped[i]["report"]["json"]).parent.name for i in (0, 1)]
        assert folders == ["map_index=0", "map_index=1"]
    finally:
        server.shutdown()
        server.server_close()
