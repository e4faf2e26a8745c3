"""The core facade from a request to a design (``design_request``), shared by the CLI, the Airflow
operator and the Prefect task; and the ARC007 review rule sizing each sink by its own sources."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from dataeng_agents.core.commands.data_pipeline import DEFAULT_SPEC_OUT, design_request, write_design
from dataeng_agents.core.design import design_pipeline, extract_spec, load_spec
from dataeng_agents.core.errors import ConfigError, InputError
from pipeline_requests import CLAUDE_ANSWER, KAFKA_BQ, PG_SNOW
from test_llm_fakes import FakeAnthropic, message, tool_use


def test_a_sentence_is_drafted_written_designed_and_scaffolded(tmp_path: Path) -> None:
    run = design_request(
        KAFKA_BQ, spec_out=tmp_path / DEFAULT_SPEC_OUT, scaffold_dir=tmp_path / "projects" / "{name}"
    )
    spec_file = tmp_path / "kafka_events_to_bigquery.spec.yaml"
    assert run.spec_path == str(spec_file) and run.request == KAFKA_BQ
    assert load_spec(spec_file) == run.spec == extract_spec(KAFKA_BQ).spec
    text = spec_file.read_text()
    assert text.startswith(f"# Drafted by the extractor from: {KAFKA_BQ}")
    assert all(f"#   - {a}" in text for a in run.draft.assumptions)  # type: ignore[union-attr]
    assert run.design == design_pipeline(run.spec) and run.design.recommendation == "kappa"
    project = tmp_path / "projects" / "kafka_events_to_bigquery"
    assert run.scaffold_dir == str(project)
    assert {"dags/kafka_events_to_bigquery.py", "flows/kafka_events_to_bigquery_flow.py"} <= set(
        run.scaffold_files
    )
    assert sorted(p.relative_to(project).as_posix() for p in project.rglob("*") if p.is_file()) == (
        run.scaffold_files
    )
    s = run.summary()
    assert (s["architecture"], s["warehouse"], s["drafted_by"], s["fallback_reason"]) == (
        "kappa",
        "bigquery",
        "extractor",
        None,
    )
    assert s["assumptions"] == len(run.draft.assumptions) > 0  # type: ignore[union-attr]
    assert s["open_questions"] == run.open_questions() and s["scaffold_files"] == len(run.scaffold_files)
    assert s["monthly_cost_usd"] == round(run.design.cost.total_usd_per_month, 2)
    assert run.advice is None


def test_the_batch_request_and_the_written_design(tmp_path: Path) -> None:
    run = design_request(PG_SNOW)  # no spec_out: nothing written
    assert run.spec_path is None and run.scaffold_dir is None and list(tmp_path.iterdir()) == []
    assert (run.design.recommendation, run.design.schedule, run.design.cost.warehouse) == (
        "batch_elt",
        "@daily",
        "snowflake",
    )
    paths = write_design(run, tmp_path / "out")
    assert sorted(Path(p).name for p in paths.values()) == ["design.json", "design.md", "spec.yaml"]
    doc = json.loads(Path(paths["json"]).read_text())
    assert doc == run.to_json_doc() and doc["draft"]["drafted_by"] == "extractor"
    assert load_spec(Path(paths["spec"])) == run.spec
    md = Path(paths["md"]).read_text()
    assert md == run.to_markdown() and "## Assumptions made while drafting the spec" in md


def test_a_spec_file_is_designed_as_it_is(tmp_path: Path) -> None:
    spec_file = tmp_path / "orders.yaml"
    spec_file.write_text(yaml.safe_dump(extract_spec(PG_SNOW).spec.model_dump(mode="json")))
    run = design_request(str(spec_file), spec_out=tmp_path / "unused.yaml")
    assert run.draft is None and run.spec_path == str(spec_file) and run.drafted_by is None
    assert not (tmp_path / "unused.yaml").exists()
    assert "draft" not in run.to_json_doc() and run.spec_text().startswith("name: orders_to_snowflake")
    assert run.design == design_pipeline(spec_file)


def test_claude_drafts_through_the_client(tmp_path: Path) -> None:
    fake = FakeAnthropic(messages=[message([tool_use("final_answer", CLAUDE_ANSWER)])])
    run = design_request(KAFKA_BQ, client=fake.client(), spec_out=tmp_path / "s.yaml", max_usd=1.0)
    assert run.drafted_by == "claude" and run.spec.name == "clicks_to_bq"
    assert yaml.safe_load((tmp_path / "s.yaml").read_text())["sources"][0]["volume_gb_per_day"] == 30
    assert run.open_questions()[0] == "Which key deduplicates a click?"
    assert len(fake.message_bodies()) == 1


def test_advice_is_narrated_when_a_narrator_is_given() -> None:
    from dataeng_agents.core.narrative import TemplateNarrator

    run = design_request(KAFKA_BQ, narrator=TemplateNarrator())
    assert run.advice is not None and run.advice.summary.startswith("Recommended: Kappa")
    assert run.to_json_doc()["advice"]["summary"] == run.advice.summary


def test_nothing_is_written_when_a_check_refuses(tmp_path: Path) -> None:
    taken = tmp_path / "taken.yaml"
    taken.write_text("# mine\n")
    with pytest.raises(InputError) as exists:
        design_request(KAFKA_BQ, spec_out=taken, scaffold_dir=tmp_path / "proj")
    assert exists.value.field == "spec_out" and taken.read_text() == "# mine\n"
    assert not (tmp_path / "proj").exists()

    project = tmp_path / "proj"
    design_request(KAFKA_BQ, scaffold_dir=project)
    dag = project / "dags" / "kafka_events_to_bigquery.py"
    dag.write_text("# edited by hand\n")
    with pytest.raises(InputError) as clash:
        design_request(KAFKA_BQ, spec_out=tmp_path / "new.yaml", scaffold_dir=project)
    assert clash.value.field == "scaffold_dir" and "kafka_events_to_bigquery.py" in clash.value.message
    assert not (tmp_path / "new.yaml").exists() and dag.read_text() == "# edited by hand\n"
    forced = design_request(KAFKA_BQ, spec_out=taken, scaffold_dir=project, force=True)
    assert load_spec(taken) == forced.spec and dag.read_text() != "# edited by hand\n"


@pytest.mark.parametrize(
    ("request_text", "kwargs", "field"),
    [
        ("", {}, "request"),
        ("   ", {}, "request"),
        (KAFKA_BQ, {"max_usd": -1.0}, "max_usd"),
        (KAFKA_BQ, {"max_usd": float("nan")}, "max_usd"),
    ],
)
def test_bad_input_names_the_field(request_text: str, kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(InputError) as err:
        design_request(request_text, **kwargs)
    assert err.value.field == field


def test_a_missing_spec_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="spec file not found"):
        design_request(str(tmp_path / "nope.yaml"))


ARC007_SPEC = """
name: clicks_and_users
freshness_slo_minutes: 60
sources:
- {name: clicks, kind: event_stream, volume_gb_per_day: 40, replayable: true, event_time_field: ts}
- {name: users, kind: database, volume_gb_per_day: 1, change_pattern: upsert, primary_key: [user_id]}
sinks:
- {name: fct_clicks, kind: warehouse, sources: [clicks]}
- {name: dim_users, kind: warehouse, sources: [users], upsert_key: [user_id], write_mode: merge}
"""


def test_arc007_sizes_each_sink_by_its_own_sources(tmp_path: Path) -> None:
    from dataeng_agents.core.review import review_paths

    spec_file = tmp_path / "clicks_and_users.yaml"
    spec_file.write_text(ARC007_SPEC)
    result = review_paths([spec_file], profile="strict")
    assert [f.status for f in result.files] == ["reviewed"]
    arc007 = [f.message for f in result.findings if f.rule_id == "ARC007"]
    # 41 GB/day in all, but dim_users only receives the 1 GB/day of users: too small to partition
    assert arc007 == ["sink 'fct_clicks' grows 40 GB/day with no partition_by"]
