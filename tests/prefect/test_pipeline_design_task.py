"""``design_pipeline_from_request`` and ``pipeline_design_flow`` on the session's Prefect server: the two
example requests offline and through an ``AgentSettings`` block whose credentials point at the local
fake Messages API. Every design is compared with what ``dataeng pipeline design -f json`` prints for
the same request (one core facade behind both)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pipeline_requests import CLAUDE_SPEC, KAFKA_BQ, PG_SNOW, draft_message, is_draft_request
from prefect_api import run_artifacts


def _settings(api_key: str, base_url: str) -> Any:
    from dataeng_agents.prefect_integration import AgentSettings, AnthropicCredentials

    return AgentSettings(
        persona="data-engineer",
        max_usd=0.5,
        anthropic_credentials=AnthropicCredentials(api_key=api_key, base_url=base_url, max_retries=0),
    )


def _cli_json(request: str, spec_out: Path, monkeypatch: pytest.MonkeyPatch, key_and_url: Any = None) -> Any:
    """What ``dataeng pipeline design <request> -f json`` prints (Claude at the fake when given)."""
    from dataeng_agents.core.cli import app
    from typer.testing import CliRunner

    with monkeypatch.context() as m:
        m.delenv("DATAENG_NARRATOR", raising=False)
        if key_and_url is None:
            m.delenv("ANTHROPIC_API_KEY", raising=False)
        else:
            m.setenv("ANTHROPIC_API_KEY", key_and_url[0])
            m.setenv("ANTHROPIC_BASE_URL", key_and_url[1])
        res = CliRunner().invoke(
            app, ["pipeline", "design", request, "--spec-out", str(spec_out), "-f", "json"]
        )
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def _same_design(run: Any, cli: dict[str, Any]) -> None:
    doc = run.to_json_doc()
    assert {k: v for k, v in doc.items() if k != "draft"} == {k: v for k, v in cli.items() if k != "draft"}
    ours = {k: v for k, v in doc["draft"].items() if k != "spec_path"}
    assert ours == {k: v for k, v in cli["draft"].items() if k != "spec_path"}


def test_both_requests_offline(prefect_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dataeng_agents.core.design import load_spec
    from dataeng_agents.prefect_integration import design_pipeline_from_request
    from prefect import flow

    @flow
    def design_both(root: str) -> list[Any]:
        kafka = design_pipeline_from_request(
            KAFKA_BQ, spec_out=f"{root}/{{name}}.spec.yaml", scaffold_dir=f"{root}/kafka"
        )
        batch = design_pipeline_from_request(PG_SNOW, spec_out=f"{root}/batch.spec.yaml")
        return [kafka, batch]

    state = design_both(str(tmp_path), return_state=True)
    kafka, batch = state.result()

    spec_file = tmp_path / "kafka_events_to_bigquery.spec.yaml"
    assert kafka.spec_path == str(spec_file) and load_spec(spec_file) == kafka.spec
    assert (kafka.design.recommendation, kafka.design.cost.warehouse) == ("kappa", "bigquery")
    assert kafka.drafted_by == "extractor" and kafka.draft.fallback_reason is None
    _same_design(kafka, _cli_json(KAFKA_BQ, tmp_path / "cli" / "kafka.yaml", monkeypatch))
    assert (tmp_path / "kafka" / "dags" / "kafka_events_to_bigquery.py").is_file()
    assert (tmp_path / "kafka" / "flows" / "kafka_events_to_bigquery_flow.py").is_file()
    assert "dags/kafka_events_to_bigquery.py" in kafka.scaffold_files

    assert load_spec(tmp_path / "batch.spec.yaml").name == "orders_to_snowflake"
    assert (batch.design.recommendation, batch.design.schedule) == ("batch_elt", "@daily")
    assert batch.scaffold_dir is None and batch.scaffold_files == []
    _same_design(batch, _cli_json(PG_SNOW, tmp_path / "cli" / "batch.yaml", monkeypatch))

    artifacts = run_artifacts(state.state_details.flow_run_id)
    assert set(artifacts) == {"kafka-events-to-bigquery-design", "orders-to-snowflake-design"}
    markdown = str(artifacts["kafka-events-to-bigquery-design"].data)
    assert "Spec drafted by the offline extractor" in markdown and str(spec_file) in markdown
    assert kafka.design.recommendation_label in markdown
    assert "`dags/kafka_events_to_bigquery.py`" in markdown and "```yaml" in markdown
    batch_md = str(artifacts["orders-to-snowflake-design"].data)
    for run, md in ((kafka, markdown), (batch, batch_md)):
        # every open question (the design's, then the draft's) is listed once above the spec
        above_spec = md.split("## Spec")[0]
        assert run.open_questions() and all(above_spec.count(f"- {q}") == 1 for q in run.open_questions())
    assert batch.design.recommendation_label in str(artifacts["orders-to-snowflake-design"].data)


def test_claude_drafts_through_the_block(
    prefect_server: str,
    fake_anthropic: Any,
    api_key: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from dataeng_agents.core.design import load_spec
    from dataeng_agents.prefect_integration import design_pipeline_from_request
    from prefect import flow

    generic = fake_anthropic.answer

    def answer(body: dict[str, Any]) -> dict[str, Any]:  # a valid spec for Kafka, the generic answer else
        if is_draft_request(body) and "Kafka" in json.dumps(body["messages"]):
            return draft_message(body)
        return generic(body)

    monkeypatch.setattr(fake_anthropic, "answer", answer)
    settings = _settings(api_key, fake_anthropic.base_url)

    @flow
    def design_both(root: str) -> list[Any]:
        kafka = design_pipeline_from_request(
            KAFKA_BQ, agent_settings=settings, spec_out=f"{root}/kafka.spec.yaml", scaffold_dir=f"{root}/proj"
        )
        batch = design_pipeline_from_request(PG_SNOW, agent_settings=settings, spec_out=f"{root}/batch.yaml")
        return [kafka, batch]

    kafka, batch = design_both(str(tmp_path))
    asked = list(fake_anthropic.requests)

    # the streaming request: Claude's spec, written, designed and scaffolded
    assert kafka.drafted_by == "claude" and kafka.draft.fallback_reason is None
    assert kafka.spec.name == CLAUDE_SPEC["name"] == load_spec(tmp_path / "kafka.spec.yaml").name
    assert kafka.design.recommendation == "kappa" and kafka.draft.usage["calls"] == 1
    assert (tmp_path / "proj" / "dags" / "clicks_to_bq.py").is_file()
    assert (tmp_path / "proj" / "flows" / "clicks_to_bq_flow.py").is_file()
    kafka_request = next(r for r in asked if KAFKA_BQ in json.dumps(r["messages"]))
    assert kafka_request["model"] == settings.resolved_model()
    _same_design(
        kafka, _cli_json(KAFKA_BQ, tmp_path / "cli.yaml", monkeypatch, (api_key, fake_anthropic.base_url))
    )

    # the batch request: the generic answer is rejected twice, the extractor's spec stands
    assert batch.drafted_by == "extractor" and "rejected answer" in batch.draft.fallback_reason
    assert len([r for r in asked if PG_SNOW in json.dumps(r["messages"])]) == 2
    fake = (api_key, fake_anthropic.base_url)
    _same_design(batch, _cli_json(PG_SNOW, tmp_path / "cli_batch.yaml", monkeypatch, fake))
    assert len([r for r in fake_anthropic.requests if PG_SNOW in json.dumps(r["messages"])]) == 4
    assert "Claude did not draft the spec: rejected answer" in caplog.text

    # the key reached the API only
    assert set(fake_anthropic.api_keys) == {api_key}
    assert api_key not in caplog.text and api_key not in kafka.model_dump_json()


def test_flow_summary_and_bad_input(prefect_server: str, tmp_path: Path) -> None:
    from dataeng_agents.core.errors import InputError
    from dataeng_agents.prefect_integration import AgentSettings, pipeline_design_flow

    AgentSettings(persona="data-engineer").save("design-offline", overwrite=True)  # no credentials
    summary = pipeline_design_flow(
        KAFKA_BQ, agent_settings="design-offline", spec_out=str(tmp_path / "k.yaml")
    )
    assert summary["architecture"] == "kappa" and summary["warehouse"] == "bigquery"
    assert summary["spec_path"] == str(tmp_path / "k.yaml") and summary["drafted_by"] == "extractor"
    assert summary["assumptions"] >= 3 and summary["open_questions"] and summary["monthly_cost_usd"] > 0

    before = (tmp_path / "k.yaml").read_text()
    state = pipeline_design_flow(KAFKA_BQ, spec_out=str(tmp_path / "k.yaml"), return_state=True)
    with pytest.raises(InputError) as exists:
        state.result()
    assert exists.value.field == "spec_out" and (tmp_path / "k.yaml").read_text() == before

    state = pipeline_design_flow(str(tmp_path / "missing.yaml"), return_state=True)
    with pytest.raises(InputError, match="spec file not found"):
        state.result()
    state = pipeline_design_flow("  ", return_state=True)
    with pytest.raises(InputError) as empty:
        state.result()
    assert empty.value.field == "request"
