"""From a sentence to a spec: the offline extractor, Claude through the real SDK on a fake API, the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from dataeng_agents.core.design import design_pipeline, draft_spec, extract_spec, is_sentence, load_spec
from dataeng_agents.core.design.draft import SpecDraftAnswer, spec_yaml
from dataeng_agents.core.errors import InputError
from test_llm_fakes import FakeAnthropic, message, tool_use
from typer.testing import CliRunner

KAFKA_BQ = "Design a real-time streaming pipeline from Kafka to BigQuery"
PG_SNOW = "Build a daily batch ELT pipeline from PostgreSQL orders to Snowflake with dbt"


def test_the_streaming_request() -> None:
    d = extract_spec(KAFKA_BQ)
    sp = d.spec
    assert [s.kind for s in sp.sources] == ["event_stream"] and sp.sources[0].replayable
    assert sp.warehouse is not None and sp.warehouse.product == "bigquery" and sp.cloud == "gcp"
    assert sp.freshness_slo_minutes <= 5
    assert any("real-time" in a for a in d.assumptions) and any("10 GB/day" in a for a in d.assumptions)
    assert any("retain" in q or "keep" in q for q in d.open_questions)
    design = design_pipeline(sp)
    assert design.recommendation == "kappa" and design.cost.warehouse == "bigquery"
    assert {"cost.ingest", "cost.compute", "cost.stream_workers"} <= {i.id for i in design.cost.items}


def test_the_batch_request() -> None:
    d = extract_spec(PG_SNOW)
    sp = d.spec
    src = sp.sources[0]
    assert (src.name, src.kind, src.change_pattern, src.primary_key) == (
        "orders",
        "database",
        "upsert",
        ["order_id"],
    )
    assert (
        sp.transformations.engine == "dbt"
        and sp.warehouse is not None
        and sp.warehouse.product == "snowflake"
    )
    assert any("updated_at" in a for a in d.assumptions)  # the watermark is an assumption the user sees
    design = design_pipeline(sp)
    assert design.recommendation == "batch_elt" and design.schedule == "@daily"
    assert "updated_at" in design.ingestion[0].choice
    assert "not partitioned" in design.storage[0].choice  # no event_date invented for an upserted table


@pytest.mark.parametrize(
    ("request_text", "kinds", "product", "slo_max", "arch"),
    [
        ("Sync Salesforce accounts into Redshift every hour", ["saas"], "redshift", 180, "batch_elt"),
        ("Load CSV files from S3 into DuckDB nightly", ["files"], "duckdb", 3000, "batch_elt"),
        (
            "Replicate the MySQL customers table to Postgres using CDC with Debezium",
            ["cdc"],
            "postgres",
            3000,
            None,
        ),
        (
            "Move 500 GB a day of application logs from GCS to BigQuery every 15 minutes",
            ["files"],
            "bigquery",
            30,
            "micro_batch",
        ),
        (
            "Stream IoT sensor readings from Kafka at 50k events per second into Snowflake, near real-time dashboards",
            ["event_stream"],
            "snowflake",
            5,
            "kappa",
        ),
        (
            "We need hourly product usage metrics from our REST API and Postgres users table in Snowflake",
            ["api", "database"],
            "snowflake",
            180,
            None,
        ),
        (
            "pull data from the Stripe API into BigQuery daily for finance",
            ["saas"],
            "bigquery",
            3000,
            "batch_elt",
        ),
    ],
)
def test_untailored_sentences(
    request_text: str, kinds: list[str], product: str, slo_max: float, arch: str | None
) -> None:
    d = extract_spec(request_text)
    assert sorted(s.kind for s in d.spec.sources) == sorted(kinds)
    assert d.spec.warehouse is not None and d.spec.warehouse.product == product
    assert d.spec.freshness_slo_minutes <= slo_max
    assert len({s.name for s in d.spec.sinks}) == len(d.spec.sinks) >= 1
    assert d.assumptions and d.drafted_by == "extractor"
    design = design_pipeline(d.spec)
    if arch:
        assert design.recommendation == arch
    # the YAML the user edits loads back to the same spec, assumptions as comments
    text = spec_yaml(d)
    assert load_spec(text) == d.spec and all(f"#   - {a}" in text for a in d.assumptions)


def test_volumes_and_rates_are_read() -> None:
    d = extract_spec(
        "Ingest 2 TB per day of clickstream events from Kinesis into a Databricks lakehouse within 10 minutes"
    )
    s = d.spec.sources[0]
    assert (
        s.volume_gb_per_day == 2000
        and d.spec.freshness_slo_minutes == 10
        and d.spec.stream_platform == "kinesis"
    )
    r = extract_spec("Stream 3000 events per second from Kafka into BigQuery").spec.sources[0]
    assert r.events_per_second_peak == 3000 and r.volume_gb_per_day == pytest.approx(
        3000 * 86400 * 1000 / 1e9
    )


def test_no_source_is_a_clear_error() -> None:
    with pytest.raises(InputError) as exc:
        extract_spec("Make the dashboards faster please")
    assert exc.value.field == "request"


def test_sentence_or_file(tmp_path: Path) -> None:
    spec_file = tmp_path / "my spec.yaml"
    spec_file.write_text("x: 1")
    assert is_sentence(KAFKA_BQ) and not is_sentence(str(spec_file)) and not is_sentence("specs/orders.yaml")
    assert not is_sentence("spec.json")


def _answer(spec: dict[str, Any]) -> dict[str, Any]:
    return {"spec": spec, "assumptions": ["Kafka retention is 7 days"], "open_questions": ["Which key?"]}


VALID = {
    "name": "clicks_to_bq",
    "sources": [
        {
            "name": "clicks",
            "kind": "event_stream",
            "volume_gb_per_day": 30,
            "replayable": True,
            "event_time_field": "ts",
        }
    ],
    "sinks": [{"name": "fct_clicks", "kind": "warehouse"}],
    "freshness_slo_minutes": 2,
    "warehouse": {"product": "bigquery"},
    "cloud": "gcp",
}


def test_claude_drafts_through_the_schema_tool() -> None:
    fake = FakeAnthropic(messages=[message([tool_use("final_answer", _answer(VALID))])])
    d = draft_spec(KAFKA_BQ, fake.client())
    assert d.drafted_by == "claude" and d.fallback_reason is None and d.usage is not None
    assert d.spec.sources[0].volume_gb_per_day == 30 and d.assumptions == ["Kafka retention is 7 days"]
    body = fake.message_bodies()[0]
    tool = next(t for t in body["tools"] if t["name"] == "final_answer")
    # the tool's input schema is the draft model's pydantic schema made strict (references inlined,
    # every object closed, every property required), with the spec's schema inside
    from dataeng_agents.core.llm.runner import strict_schema

    schema = SpecDraftAnswer.model_json_schema()
    assert tool["strict"] is True
    assert tool["input_schema"]["properties"]["spec"] == strict_schema(
        schema["$defs"]["PipelineSpec"], schema["$defs"]
    )
    assert KAFKA_BQ in body["messages"][0]["content"][0]["text"]


def test_claude_gets_one_repair_turn() -> None:
    bad = {**VALID, "freshness_slo_minutes": 0}
    fake = FakeAnthropic(
        messages=[
            message([tool_use("final_answer", _answer(bad))]),
            message([tool_use("final_answer", _answer(VALID))]),
        ]
    )
    d = draft_spec(KAFKA_BQ, fake.client())
    assert d.drafted_by == "claude" and d.spec.freshness_slo_minutes == 2
    second = fake.message_bodies()[1]["messages"]
    repair = second[-1]["content"][0]
    assert repair["is_error"] and "freshness_slo_minutes" in repair["content"]


def test_two_invalid_answers_fall_back_to_the_extractor() -> None:
    bad = {**VALID, "sources": [{"name": "clicks", "kind": "ftp", "volume_gb_per_day": 1}]}
    fake = FakeAnthropic(messages=[message([tool_use("final_answer", _answer(bad))]) for _ in range(2)])
    d = draft_spec(KAFKA_BQ, fake.client())
    assert d.drafted_by == "extractor" and "rejected answer" in (d.fallback_reason or "")
    assert d.spec == extract_spec(KAFKA_BQ).spec and d.usage is not None and len(fake.message_bodies()) == 2


def test_api_error_falls_back() -> None:
    from test_llm_fakes import error

    fake = FakeAnthropic(messages=[error(401, "authentication_error", "invalid x-api-key")])
    d = draft_spec(PG_SNOW, fake.client())
    assert d.drafted_by == "extractor" and "401" in (d.fallback_reason or "")


runner = CliRunner()


def _fake_client(monkeypatch: pytest.MonkeyPatch, fake: FakeAnthropic) -> None:
    import dataeng_agents.core.llm.client as client_mod

    real_build = client_mod.build_client

    def build(api_key: str | None = None, **kw: Any) -> Any:
        import httpx2

        return real_build(
            api_key, http_client=httpx2.Client(transport=httpx2.MockTransport(fake.handle)), **kw
        )

    monkeypatch.setattr(client_mod, "build_client", build)


def test_cli_design_from_a_sentence_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dataeng_agents.core.cli import app

    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    out = tmp_path / "kafka.yaml"
    res = runner.invoke(
        app, ["pipeline", "design", KAFKA_BQ, "--spec-out", str(out), "--scaffold", str(tmp_path / "proj")]
    )
    assert res.exit_code == 0, res.output
    assert "offline extractor" in res.output and "Kappa" in res.output and "bigquery" in res.output
    assert "Assumptions" in res.output and "Open questions" in res.output
    assert load_spec(out).name == "kafka_events_to_bigquery"
    assert (tmp_path / "proj" / "dags" / "kafka_events_to_bigquery.py").exists()
    again = runner.invoke(app, ["pipeline", "design", KAFKA_BQ, "--spec-out", str(out)])
    assert again.exit_code != 0 and "exists" in again.output
    # the written spec is a file: designing it again takes the file path
    res = runner.invoke(app, ["pipeline", "design", str(out), "-f", "json"])
    assert res.exit_code == 0 and json.loads(res.output)["recommendation"] == "kappa"


def test_cli_design_from_a_sentence_with_claude(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dataeng_agents.core.cli import app

    fake = FakeAnthropic(messages=[message([tool_use("final_answer", _answer(VALID))])])
    _fake_client(monkeypatch, fake)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-key-000000000")
    monkeypatch.delenv("DATAENG_NARRATOR", raising=False)
    out = tmp_path / "d.yaml"
    res = runner.invoke(app, ["pipeline", "design", KAFKA_BQ, "--spec-out", str(out), "-f", "json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["draft"]["drafted_by"] == "claude" and doc["spec_name"] == "clicks_to_bq"
    assert yaml.safe_load(out.read_text())["sources"][0]["volume_gb_per_day"] == 30
    assert "sk-ant-test-key" not in fake.raw_bodies()
