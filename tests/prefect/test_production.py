"""Production shape of the Prefect integration:

* every exception the tasks and flows raise survives pickling, and a failed run read back from the
  API (what ``run_deployment`` returns) re-raises the policy failure with its own type;
* the decision event carries the verdict and the experiment id as resource labels, and a real
  automation (event trigger -> run-deployment action) fires on them on the test server;
* fallback to template prose is logged through the run logger (read back from the API) and said
  in the Markdown artifact; the persisted flow result holds the prose;
* transient warehouse errors are retried, permanent ones (missing table, DuckDB file, database) are
  not;
* each run writes its report below its own folder, so link artifacts never share a report;
* an unsaved block holding a password passed as a parameter is warned about;
* a connector block with the psycopg2 driver runs on psycopg 3.
"""

from __future__ import annotations

import contextlib
import json
import pickle
import time
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from uuid import UUID

import pytest
from prefect_api import run_artifacts, run_events

if TYPE_CHECKING:
    from prefect.deployments.runner import RunnerDeployment
    from prefect.states import State


def _run_id(state: State[Any]) -> UUID:
    run_id = state.state_details.flow_run_id
    assert run_id is not None
    return run_id


CONFIG = str(files("dataeng_agents.core.examples.experiments").joinpath("checkout_demo.yaml"))
EXPERIMENT_ID = "checkout-2024-03"


# ------------------------------------------------------------------------------------- pickling
def _raised_exceptions() -> list[BaseException]:
    from dataeng_agents.core.api.loader import ApiParseError
    from dataeng_agents.core.errors import BudgetExceededError, ConfigError, InputError, WarehouseError
    from dataeng_agents.core.stats.models import StatsInputError
    from dataeng_agents.prefect_integration.api_tasks import ApiContractDriftError
    from dataeng_agents.prefect_integration.flows import (
        ExperimentPolicyError,
        PipelineReviewError,
        RolloutStoppedError,
    )

    return [
        ExperimentPolicyError("checkout", ["srm: p < 0.001", "guardrails: page_latency worse"]),
        PipelineReviewError("pipeline review 'x': findings at or above 'error'"),
        RolloutStoppedError("checkout: rollout decision: roll back"),
        ApiContractDriftError("breaking change"),
        ConfigError("metrics[2].window", "expected a duration like '7d'"),
        InputError("variants", "no exposures"),
        StatsInputError("must be positive", metric="conversion", variant="b", field="n"),
        ApiParseError("openapi.yaml", "not YAML"),
        WarehouseError("duckdb: Catalog Error: Table with name exposures does not exist!"),
        BudgetExceededError("max_usd 0.01 would be exceeded"),
    ]


@pytest.mark.parametrize("exc", _raised_exceptions(), ids=lambda e: type(e).__name__)
def test_every_raised_exception_survives_pickling(exc: BaseException) -> None:
    import cloudpickle  # what Prefect's default result serializer uses

    for dumps, loads in ((pickle.dumps, pickle.loads), (cloudpickle.dumps, pickle.loads)):
        back = loads(dumps(exc))
        assert type(back) is type(exc)
        assert str(back) == str(exc)
        assert vars(back) == vars(exc)


def test_policy_failure_read_back_from_the_api_raises_the_original_type(
    prefect_server: str, sample_duckdb: str, tmp_path: Path
) -> None:
    from dataeng_agents.prefect_integration import ExperimentWarehouse
    from dataeng_agents.prefect_integration.flows import ExperimentPolicyError, experiment_report_flow
    from prefect.client.orchestration import get_client

    state = experiment_report_flow(
        config=CONFIG,
        warehouse=ExperimentWarehouse(duckdb_path=sample_duckdb),
        report_dir=str(tmp_path),
        fail_on=["srm", "guardrail"],  # the sample's recommendations variant harms page latency
        return_state=True,
    )
    assert state.is_failed()
    # what run_deployment hands back: the flow run as the API stores it
    with get_client(sync_client=True) as client:
        api_state = client.read_flow_run(_run_id(state)).state
    assert api_state is not None and api_state.is_failed()
    with pytest.raises(ExperimentPolicyError) as raised:
        api_state.result()
    assert raised.value.experiment_id == EXPERIMENT_ID
    assert any("guardrail" in reason.lower() for reason in raised.value.reasons)


# ------------------------------------------------------------------------------ automations
def page_on_call(experiment_id: str = "", verdict: str = "") -> str:
    """What the automation runs (a pager call in production); never executed here."""
    return f"paged about {experiment_id}: {verdict}"


def test_automation_fires_on_the_verdict_label_and_the_result_holds_the_prose(
    prefect_server: str, sample_duckdb: str, tmp_path: Path
) -> None:
    from dataeng_agents.core.experiment import analyze_experiment
    from dataeng_agents.core.warehouse import DuckDBWarehouse
    from dataeng_agents.prefect_integration import ExperimentWarehouse
    from dataeng_agents.prefect_integration.flows import EXPERIMENT_ANALYZED_EVENT, experiment_report_flow
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId, FlowRunFilter
    from prefect.events.actions import RunDeployment
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    verdict = analyze_experiment(CONFIG, DuckDBWarehouse(sample_duckdb)).decision.verdict
    other = "ship" if verdict != "ship" else "do not ship"

    pager = flow(name="page-on-call")(page_on_call)
    deployment_id = cast("RunnerDeployment", pager.to_deployment(name="pager")).apply()

    def automation(name: str, on_verdict: str) -> Any:
        return AutomationCore(
            name=name,
            trigger=EventTrigger(
                expect={EXPERIMENT_ANALYZED_EVENT},
                match={"prefect.resource.id": "dataeng.experiment.*", "dataeng.verdict": on_verdict},
                posture=Posture.Reactive,
                threshold=1,
            ),
            actions=[
                RunDeployment(
                    source="selected",
                    deployment_id=deployment_id,
                    parameters={
                        # filled from the event that fired the trigger (docs/prefect.md recipe)
                        "experiment_id": {
                            "__prefect_kind": "jinja",
                            "template": "{{ event.resource['dataeng.experiment_id'] }}",
                        },
                        "verdict": on_verdict,
                    },
                )
            ],
        )

    with get_client(sync_client=True) as client:
        client.create_automation(automation("page on this verdict", verdict))
        client.create_automation(automation("page on another verdict", other))

    state = experiment_report_flow(
        config=CONFIG,
        warehouse=ExperimentWarehouse(duckdb_path=sample_duckdb),
        report_dir=str(tmp_path),
        fail_on=[],
        return_state=True,
    )
    assert state.is_completed(), state.message
    flow_run_id = _run_id(state)

    # the event's resource carries the labels the automation matched
    (event,) = run_events(EXPERIMENT_ANALYZED_EVENT, f"dataeng.experiment.{EXPERIMENT_ID}", flow_run_id)
    assert event.resource["dataeng.verdict"] == verdict
    assert event.resource["dataeng.experiment_id"] == EXPERIMENT_ID
    assert event.resource["dataeng.stopped_by_policy"] == "false"

    # the automation ran the pager deployment, with the parameters of the matching verdict only
    deadline = time.monotonic() + 90
    paged: list[Any] = []
    while time.monotonic() < deadline and not paged:
        with get_client(sync_client=True) as client:
            paged = client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
                flow_run_filter=FlowRunFilter(),
            )
        time.sleep(1)
    assert [r.parameters for r in paged] == [{"experiment_id": EXPERIMENT_ID, "verdict": verdict}]

    # the persisted result, read back from the API, holds the prose and who wrote it
    with get_client(sync_client=True) as client:
        api_state = client.read_flow_run(flow_run_id).state
    assert api_state is not None
    summary = api_state.result()
    assert summary["verdict"] == verdict
    assert summary["narrative"]["headline"] and summary["narrative"]["summary"]
    assert summary["narrative"]["narrator"] == "template"
    # this run's report lives below its own folder
    html = Path(summary["report_files"]["html"])
    assert html.parent == tmp_path / EXPERIMENT_ID / str(flow_run_id)


# ------------------------------------------------------------------------------- fallback prose
def test_fallback_prose_is_logged_to_the_api_and_said_in_the_artifact(
    prefect_server: str, sample_duckdb: str, tmp_path: Path, api_key: str
) -> None:
    from dataeng_agents.prefect_integration import AgentSettings, AnthropicCredentials, ExperimentWarehouse
    from dataeng_agents.prefect_integration.flows import experiment_report_flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    # nothing listens on this port: every Claude call fails, the template writes the prose
    agent = AgentSettings(
        anthropic_credentials=AnthropicCredentials(
            api_key=api_key, base_url="http://127.0.0.1:9", max_retries=0, timeout=2
        )
    )
    state = experiment_report_flow(
        config=CONFIG,
        warehouse=ExperimentWarehouse(duckdb_path=sample_duckdb),
        agent_settings=agent,
        report_dir=str(tmp_path),
        fail_on=[],
        return_state=True,
    )
    assert state.is_completed(), state.message
    flow_run_id = _run_id(state)
    summary = state.result()
    assert summary["narrative"]["narrator"] == "template" and summary["narrative"]["fallback_reason"]

    artifacts = run_artifacts(flow_run_id)
    markdown = str(artifacts[f"{EXPERIMENT_ID}-report"].data)
    assert markdown.startswith("_Prose: written by the template because Claude failed")

    from prefect.logging.handlers import APILogWorker

    APILogWorker.instance().drain()
    deadline = time.monotonic() + 30
    texts: list[str] = []
    while time.monotonic() < deadline:
        with get_client(sync_client=True) as client:
            logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
        texts = [log.message for log in logs]
        if any("the template" in t for t in texts):
            break
        time.sleep(0.5)
    assert any("the template wrote the prose because Claude failed" in t for t in texts), texts
    assert all(api_key not in t for t in texts)


# ------------------------------------------------------------------------------------- retries
@pytest.mark.parametrize(
    ("message", "transient"),
    [
        ("duckdb: Catalog Error: Table with name exposures does not exist!", False),
        ("duckdb: database file not found: /data/missing.duckdb", False),
        ('postgresql: cannot connect: connection failed: FATAL:  database "nope" does not exist', False),
        ('postgresql: relation "exposures" does not exist', False),
        ("postgresql: cannot connect: connection refused", True),
        ("postgresql: server closed the connection unexpectedly", True),
        ("duckdb: IO Error: Could not set lock on file", True),
    ],
)
def test_only_transient_warehouse_errors_are_retried(message: str, transient: bool) -> None:
    from dataeng_agents.core.errors import WarehouseError
    from dataeng_agents.prefect_integration.tasks import _transient

    assert _transient(WarehouseError(message)) is transient


def test_a_missing_table_is_not_retried(prefect_server: str, sample_duckdb: str, tmp_path: Path) -> None:
    import yaml
    from dataeng_agents.core.errors import WarehouseError
    from dataeng_agents.prefect_integration import ExperimentWarehouse
    from dataeng_agents.prefect_integration.tasks import analyze_experiment
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    config = yaml.safe_load(Path(CONFIG).read_text())
    config["assignment"]["table"] = "no_such_exposures"
    missing_file = ExperimentWarehouse(duckdb_path=str(tmp_path / "missing.duckdb"))

    @flow
    def analyse_twice() -> None:
        for warehouse in (ExperimentWarehouse(duckdb_path=sample_duckdb), missing_file):
            with contextlib.suppress(WarehouseError):
                analyze_experiment(config if warehouse is not missing_file else CONFIG, warehouse)

    started = time.monotonic()
    state = analyse_twice(return_state=True)
    assert state.is_completed()
    assert time.monotonic() - started < 10  # the retry schedule (10 s, then 60 s) was not used
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id]))
        )
    assert len(runs) == 2
    assert all(r.run_count == 1 and r.state is not None and r.state.is_failed() for r in runs), [
        (r.run_count, r.state) for r in runs
    ]


# ---------------------------------------------------------------------- parameters and blocks
def test_flows_deploy_by_module_path() -> None:
    from dataeng_agents.prefect_integration.flows import experiment_report_flow
    from prefect.types.entrypoint import EntrypointType

    deployment = cast(
        "RunnerDeployment",
        experiment_report_flow.to_deployment(
            name="checkout-daily-report", entrypoint_type=EntrypointType.MODULE_PATH
        ),
    )
    # importable wherever the package is installed, unlike a site-packages file path
    assert deployment.entrypoint == "dataeng_agents.prefect_integration.flows.experiment_report_flow"


def test_unsaved_block_with_a_password_is_warned_about(
    prefect_server: str, sample_postgres: tuple[str, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from dataeng_agents.prefect_integration import ExperimentWarehouse
    from dataeng_agents.prefect_integration.flows import experiment_report_flow
    from prefect_sqlalchemy import ConnectionComponents, SqlAlchemyConnector, SyncDriver
    from sqlalchemy.engine import make_url

    url, schema = sample_postgres
    parsed = make_url(url)
    connector = SqlAlchemyConnector(
        connection_info=ConnectionComponents(
            # the form's PostgreSQL choice; the postgres extra installs psycopg 3, not psycopg2
            driver=SyncDriver.POSTGRESQL_PSYCOPG2,
            host=parsed.host,
            port=parsed.port,
            database=parsed.database,
            username=parsed.username or "postgres",
            password="not-a-real-password",  # trust auth ignores it; the warning must not
        ),
        connect_args={"options": f"-csearch_path={schema}"},
    )
    caplog.set_level("WARNING")
    state = experiment_report_flow(
        config=CONFIG,
        warehouse=ExperimentWarehouse(sqlalchemy_connector=connector),
        report_dir=str(tmp_path),
        fail_on=[],
        return_state=True,
    )
    assert state.is_completed(), state.message
    warnings = [r.getMessage() for r in caplog.records if "unsaved" in r.getMessage()]
    assert len(warnings) == 1 and "'warehouse'" in warnings[0]
    assert "sqlalchemy_connector.connection_info.password" in warnings[0]
    assert "not-a-real-password" not in caplog.text
    assert json.dumps(state.result()["verdict"])
