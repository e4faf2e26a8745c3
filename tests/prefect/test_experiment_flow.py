"""experiment_report_flow end to end on a Prefect server: DuckDB sample and real PostgreSQL.

Each run's artifacts are read back from the Prefect API and compared with a direct core call on
the same data; the decision event is read back from the events API.
"""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from prefect_api import run_artifacts, run_events

CONFIG = str(files("dataeng_agents.core.examples.experiments").joinpath("checkout_demo.yaml"))
EXPERIMENT_ID = "checkout-2024-03"


def _direct_report(warehouse: Any) -> Any:
    from dataeng_agents.core.experiment import analyze_experiment

    return analyze_experiment(CONFIG, warehouse)


def _close(got: Any, expected: Any, path: str = "") -> None:
    """Equal, floats to rounding: DuckDB's parallel aggregation sums in a varying order."""
    if isinstance(expected, float) and isinstance(got, int | float):
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-12), path
    elif isinstance(expected, dict):
        assert isinstance(got, dict) and set(got) == set(expected), path
        for key in expected:
            _close(got[key], expected[key], f"{path}.{key}")
    elif isinstance(expected, list | tuple):
        assert isinstance(got, list | tuple) and len(got) == len(expected), path
        for i, (g, e) in enumerate(zip(got, expected, strict=True)):
            _close(g, e, f"{path}[{i}]")
    else:
        assert got == expected, path


def _check_against_core(artifacts: dict[str, Any], direct: Any) -> None:
    table = json.loads(str(artifacts[f"{EXPERIMENT_ID}-metrics"].data))
    assert [row["id"] for row in table] == [r.id for r in direct.results]
    for row, r in zip(table, direct.results, strict=True):
        for field in ("estimate", "ci_lower", "ci_upper", "p_value", "adjusted_p_value", "control_mean"):
            expected = getattr(r, field)
            if expected is None:
                assert row[field] is None, (r.id, field)
            else:
                assert row[field] == pytest.approx(expected, rel=1e-9, abs=1e-12), (r.id, field)
        assert row["significant"] == r.significant and row["direction"] == r.direction


def test_duckdb_sample_end_to_end(prefect_server: str, sample_duckdb: str, tmp_path: Path) -> None:
    from dataeng_agents.core.warehouse import DuckDBWarehouse
    from dataeng_agents.prefect_integration import ExperimentWarehouse
    from dataeng_agents.prefect_integration.flows import experiment_report_flow

    state = experiment_report_flow(
        config=CONFIG,
        warehouse=ExperimentWarehouse(duckdb_path=sample_duckdb),
        report_dir=str(tmp_path / "report"),
        fail_on=["srm"],
        return_state=True,
    )
    assert state.is_completed(), state.message
    result = state.result()
    direct = _direct_report(DuckDBWarehouse(sample_duckdb))

    # the flow's result is the core's compact summary (plus where things went)
    summary = {k: v for k, v in result.items() if k not in ("artifacts", "report_files", "narrative")}
    _close(summary, json.loads(json.dumps(direct.summary(), default=str)))
    assert result["narrative"]["headline"] == direct.narrative.headline  # the prose is in the result
    assert result["verdict"] == direct.decision.verdict

    artifacts = run_artifacts(state.state_details.flow_run_id)
    assert set(artifacts) == {f"{EXPERIMENT_ID}-report", f"{EXPERIMENT_ID}-metrics", f"{EXPERIMENT_ID}-html"}
    _check_against_core(artifacts, direct)

    markdown = str(artifacts[f"{EXPERIMENT_ID}-report"].data)
    # the report file, after one line saying who wrote the prose
    assert markdown.startswith("_Prose: written by the deterministic template")
    assert markdown.endswith(Path(result["report_files"]["md"]).read_text(encoding="utf-8"))
    assert direct.narrative is not None and direct.narrative.headline in markdown
    html = Path(result["report_files"]["html"])
    assert html.is_file() and html.as_uri() in str(artifacts[f"{EXPERIMENT_ID}-html"].data)

    mine = run_events(
        "dataeng.experiment.analyzed", f"dataeng.experiment.{EXPERIMENT_ID}", state.state_details.flow_run_id
    )
    assert len(mine) == 1
    assert mine[0].payload["verdict"] == direct.decision.verdict
    assert mine[0].payload["per_variant"] == direct.decision.per_variant
    assert mine[0].payload["stop_reasons"] == []


def test_guardrail_regression_fails_the_run_by_policy(
    prefect_server: str, sample_duckdb: str, tmp_path: Path
) -> None:
    """The sample plants an 8% latency regression in `recommendations`: the default policy stops."""
    from dataeng_agents.prefect_integration import ExperimentWarehouse
    from dataeng_agents.prefect_integration.flows import ExperimentPolicyError, experiment_report_flow

    state = experiment_report_flow(
        config=CONFIG,
        warehouse=ExperimentWarehouse(duckdb_path=sample_duckdb),
        report_dir=str(tmp_path / "report"),
        return_state=True,
    )
    assert state.is_failed()
    with pytest.raises(ExperimentPolicyError, match="page_latency/recommendations"):
        state.result()
    # the analyst still gets the report that explains the failure
    artifacts = run_artifacts(state.state_details.flow_run_id)
    assert f"{EXPERIMENT_ID}-report" in artifacts and f"{EXPERIMENT_ID}-metrics" in artifacts
    mine = run_events(
        "dataeng.experiment.analyzed", f"dataeng.experiment.{EXPERIMENT_ID}", state.state_details.flow_run_id
    )
    assert len(mine) == 1 and mine[0].payload["stopped_by_policy"] is True
    assert any("Guardrail" in r for r in mine[0].payload["stop_reasons"])


@pytest.mark.postgres
def test_postgres_through_sqlalchemy_connector(
    prefect_server: str, sample_postgres: tuple[str, str], sample_duckdb: str, tmp_path: Path
) -> None:
    """Saved blocks, passed by name (what a deployment does), on the real PostgreSQL server."""
    from dataeng_agents.core.warehouse import DuckDBWarehouse, warehouse_from_url
    from dataeng_agents.prefect_integration import ExperimentWarehouse
    from dataeng_agents.prefect_integration.flows import experiment_report_flow
    from prefect_sqlalchemy import SqlAlchemyConnector

    url, schema = sample_postgres
    connector = SqlAlchemyConnector(
        connection_info=url.replace("postgresql://", "postgresql+psycopg://", 1),
        connect_args={"options": f"-csearch_path={schema}"},
    )
    connector.save(f"pg-{schema}".replace("_", "-"), overwrite=True)
    ExperimentWarehouse(sqlalchemy_connector=connector).save(f"wh-{schema}".replace("_", "-"), overwrite=True)

    state = experiment_report_flow(
        config=CONFIG,
        warehouse=f"wh-{schema}".replace("_", "-"),
        report_dir=str(tmp_path / "report"),
        fail_on=[],
        return_state=True,
    )
    assert state.is_completed(), state.message
    artifacts = run_artifacts(state.state_details.flow_run_id)
    direct_pg = _direct_report(warehouse_from_url(f"{url}?options=-csearch_path%3D{schema}"))
    assert direct_pg.dialect == "postgres"
    _check_against_core(artifacts, direct_pg)
    # and PostgreSQL agrees with DuckDB on the same data
    _check_against_core(artifacts, _direct_report(DuckDBWarehouse(sample_duckdb)))
    assert state.result()["units"] == direct_pg.summary()["units"]


def test_claude_prose_and_the_api_key_never_leaks(
    prefect_server: str,
    sample_duckdb: str,
    tmp_path: Path,
    fake_anthropic: Any,
    api_key: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With Claude configured (a local Messages API), the key reaches the API and nothing else:
    not the logs (captured here and stored by the server), the artifacts, the result or the files."""
    import logging
    import os

    from dataeng_agents.prefect_integration import AgentSettings, AnthropicCredentials, ExperimentWarehouse
    from dataeng_agents.prefect_integration.flows import experiment_report_flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    AgentSettings(
        persona="data-engineer",
        anthropic_credentials=AnthropicCredentials(
            api_key=api_key, base_url=fake_anthropic.base_url, max_retries=0
        ),
    ).save("leak-check-agent", overwrite=True)
    with caplog.at_level(logging.DEBUG):
        state = experiment_report_flow(
            config=CONFIG,
            warehouse=ExperimentWarehouse(duckdb_path=sample_duckdb),
            agent_settings="leak-check-agent",
            report_dir=str(tmp_path / "report"),
            fail_on=[],
            return_state=True,
        )
    assert state.is_completed(), state.message
    result = state.result()
    assert fake_anthropic.requests and set(fake_anthropic.api_keys) == {api_key}
    report_json = json.loads(Path(result["report_files"]["json"]).read_text())
    assert report_json["narrative"]["provenance"]["narrator"] == "claude"

    flow_run_id = state.state_details.flow_run_id
    from prefect.logging.handlers import APILogWorker

    APILogWorker.instance().drain()
    with get_client(sync_client=True) as client:
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    assert logs, "the run's logs reached the API"
    assert all(api_key not in log.message for log in logs)
    assert api_key not in caplog.text
    for artifact in run_artifacts(flow_run_id).values():
        assert api_key not in str(artifact.data)
    assert api_key not in json.dumps(result, default=str)
    for path in (tmp_path / "report").rglob("*"):
        assert path.is_dir() or api_key not in path.read_text(encoding="utf-8")
    storage = Path(os.environ["PREFECT_RESULTS_LOCAL_STORAGE_PATH"])
    assert [p for p in storage.rglob("*") if p.is_file() and api_key.encode() in p.read_bytes()] == []


def test_design_experiment_task_matches_the_core(prefect_server: str, sample_duckdb: str) -> None:
    from dataeng_agents.core.experiment import design_experiment as core_design
    from dataeng_agents.core.warehouse import DuckDBWarehouse
    from dataeng_agents.prefect_integration import ExperimentWarehouse
    from dataeng_agents.prefect_integration.tasks import design_experiment
    from prefect import flow

    @flow
    def design() -> Any:
        return design_experiment(CONFIG, ExperimentWarehouse(duckdb_path=sample_duckdb))

    report = design()
    assert report is not None
    direct = core_design(CONFIG, DuckDBWarehouse(sample_duckdb))
    assert report.per_variant is not None and report.per_variant > 0
    _close(report.summary(), direct.summary())
    assert report.narrative is not None and report.narrative.provenance.narrator == "template"


def test_sample_ratio_mismatch_fails_the_run_by_policy(
    prefect_server: str, sample_duckdb: str, tmp_path: Path
) -> None:
    """Drop a tenth of the control's exposures (broken logging): the core flags SRM, the run fails."""
    import shutil

    import duckdb
    from dataeng_agents.core.warehouse import DuckDBWarehouse
    from dataeng_agents.prefect_integration import ExperimentWarehouse
    from dataeng_agents.prefect_integration.flows import ExperimentPolicyError, experiment_report_flow

    broken = tmp_path / "broken.duckdb"
    shutil.copy(sample_duckdb, broken)
    with duckdb.connect(str(broken)) as con:
        con.execute("DELETE FROM exposures WHERE variant = 'control' AND unit_id % 10 = 0")
    direct = _direct_report(DuckDBWarehouse(str(broken)))
    assert {h.id: h.status for h in direct.health}["srm"] == "fail"

    state = experiment_report_flow(
        config=CONFIG,
        warehouse=ExperimentWarehouse(duckdb_path=str(broken)),
        report_dir=str(tmp_path / "report"),
        fail_on=["srm"],
        return_state=True,
    )
    assert state.is_failed()
    with pytest.raises(ExperimentPolicyError, match="Sample ratio"):
        state.result()
    # the same data with SRM left out of the policy completes (the verdict still says investigate)
    result = experiment_report_flow(
        config=CONFIG, warehouse=ExperimentWarehouse(duckdb_path=str(broken)), fail_on=[]
    )
    assert result["verdict"] == direct.decision.verdict == "investigate"
