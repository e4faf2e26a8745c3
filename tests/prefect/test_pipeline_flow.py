"""pipeline_review_flow end to end: findings as artifacts (checked against a direct core call), policy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prefect_api import run_artifacts, run_events

REPO = Path(__file__).resolve().parents[2]

BAD_FLOW = """\
from __future__ import annotations

from datetime import datetime, timedelta

from prefect import flow, task


WAREHOUSE = "postgresql://etl:s3cretPassw0rd@warehouse.internal:5432/dw"


@task
def extract() -> list[int]:
    started = datetime.now() - timedelta(days=1)
    token = "ghp_Zx9YwVu8TsRq7PoNm6LkJi5HgFe4DcBa3210"
    try:
        return [started.day]
    except Exception:
        pass
    return []


@flow
def nightly() -> None:
    extract()
"""


@pytest.fixture
def bad_flow_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "nightly.py").write_text(BAD_FLOW, encoding="utf-8")
    return folder


def test_findings_published_and_error_fails_the_run(
    prefect_server: str, bad_flow_dir: Path, tmp_path: Path
) -> None:
    from dataeng_agents.core.review import review_paths
    from dataeng_agents.prefect_integration.flows import PipelineReviewError, pipeline_review_flow

    state = pipeline_review_flow(
        paths=[str(bad_flow_dir)],
        pipeline_id="Nightly Flows",
        report_dir=str(tmp_path / "review"),
        return_state=True,
    )
    assert state.is_failed()
    with pytest.raises(PipelineReviewError, match="'error': 2"):
        state.result()

    direct = review_paths([str(bad_flow_dir)])
    # SEC001 a hard-coded URI password and a GitHub token (REL005 and REL008 are warnings in Prefect)
    assert direct.counts()["error"] == 2
    assert sorted(f.rule_id for f in direct.findings if f.severity.value == "error") == ["SEC001", "SEC001"]
    artifacts = run_artifacts(state.state_details.flow_run_id)
    assert set(artifacts) == {"nightly-flows-report", "nightly-flows-findings", "nightly-flows-html"}
    table = json.loads(str(artifacts["nightly-flows-findings"].data))
    assert [(r["id"], r["rule"], r["severity"], r["line"]) for r in table] == [
        (f.id, f.rule_id, f.severity.value, f.line) for f in direct.findings
    ]
    markdown = str(artifacts["nightly-flows-report"].data)
    for finding in direct.findings:
        assert finding.id in markdown
    assert "## Advice" in markdown
    files = {p.suffix: p for p in (tmp_path / "review").rglob("review.*")}  # this run's own folder
    html = files[".html"]
    assert html.parent == tmp_path / "review" / "nightly-flows" / str(state.state_details.flow_run_id)
    assert (
        html.is_file()
        and "<table>" in html.read_text()
        and html.as_uri() in str(artifacts["nightly-flows-html"].data)
    )
    (event,) = run_events(
        "dataeng.pipeline.reviewed", "dataeng.pipeline.nightly-flows", state.state_details.flow_run_id
    )
    assert event.payload["findings"] == direct.counts() and event.payload["failed"] is True
    sarif = json.loads(files[".sarif"].read_text())
    assert len(sarif["runs"][0]["results"]) == len(direct.findings)


def test_fail_on_never_completes_with_the_core_summary(
    prefect_server: str, bad_flow_dir: Path, tmp_path: Path
) -> None:
    from dataeng_agents.core.review import review_paths
    from dataeng_agents.prefect_integration.flows import pipeline_review_flow

    result = pipeline_review_flow(paths=[str(bad_flow_dir)], pipeline_id="nightly", fail_on="never")
    direct = review_paths([str(bad_flow_dir)]).summary()
    assert {k: result[k] for k in direct} == direct
    assert result["advice"]


def test_our_example_flows_pass_our_own_review(prefect_server: str) -> None:
    from dataeng_agents.prefect_integration.flows import pipeline_review_flow

    examples = sorted(str(p) for p in (REPO / "dags_examples").glob("prefect_*.py"))
    assert len(examples) >= 3
    result = pipeline_review_flow(paths=examples, pipeline_id="prefect-examples", fail_on="error")
    assert result["findings"]["error"] == 0 and result["file_errors"] == 0


def test_review_reads_the_project_config_and_writes_what_the_cli_prints(
    prefect_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 12: with ``[tool.dataeng.review] profile = "strict"`` the task, the flow, the CLI and the
    Airflow operator review at ``strict``, and the flow's review.md is ``dataeng review --explain -f
    markdown``."""
    from dataeng_agents.core.cli import app
    from dataeng_agents.prefect_integration.flows import pipeline_review_flow
    from dataeng_agents.prefect_integration.tasks import review_pipeline
    from review_project import make_project
    from typer.testing import CliRunner

    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    (tmp_path / "team").mkdir()
    dags = make_project(tmp_path / "team")
    task_result = review_pipeline([str(dags)])
    assert task_result.profile == "strict"
    assert {f.severity.value for f in task_result.findings if f.rule_id == "REL003"} == {"error"}

    summary = pipeline_review_flow(
        paths=[str(dags)], pipeline_id="team", fail_on="never", report_dir=str(tmp_path / "review")
    )
    assert summary["profile"] == "strict"
    explained = CliRunner().invoke(app, ["review", str(dags), "--explain", "-f", "markdown", "--fail-on", "never"])
    # the flow writes each run below its own folder of report_dir
    assert explained.output.strip() == Path(summary["report_files"]["md"]).read_text().strip()
