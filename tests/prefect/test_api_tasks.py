"""API contract tasks and the nightly drift flow against a Prefect server: the deployed spec is served
over HTTP by a local server, the repository's spec is a real newer version with breaking changes."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from prefect_api import run_artifacts

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "core" / "api_fixtures"
MUSEUM = REPO / "tests" / "core" / "api_specs" / "museum"


@pytest.fixture
def served_spec() -> Iterator[str]:
    """The deployed service's contract (museum 1.1.1), served over HTTP on a free local port."""
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(MUSEUM))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/museum-1.1.1.yaml"
    finally:
        server.shutdown()
        server.server_close()


def test_review_task_runs_the_core_review(prefect_server: str) -> None:
    from dataeng_agents.core.api import review_api_paths
    from dataeng_agents.prefect_integration import review_api_contracts
    from prefect import flow

    @flow
    def wrapper() -> object:
        return review_api_contracts([str(FIXTURES / "PB001.bad.proto"), str(MUSEUM)], profile="strict")

    result = wrapper()
    direct = review_api_paths([FIXTURES / "PB001.bad.proto", MUSEUM], profile="strict")
    assert [f.id for f in result.findings] == [f.id for f in direct.findings]  # type: ignore[attr-defined]
    assert result.exit_code("error") == 1  # type: ignore[attr-defined]


def test_drift_flow_fails_on_breaking_changes_after_publishing(
    prefect_server: str, served_spec: str, tmp_path: Path
) -> None:
    from dataeng_agents.prefect_integration.api_tasks import ApiContractDriftError, api_contract_drift_flow

    state = api_contract_drift_flow(
        repo_spec_path=str(MUSEUM / "museum-1.2.1.yaml"),
        deployed_spec_url=served_spec,
        contract_id="Museum API",
        report_dir=str(tmp_path / "drift"),
        return_state=True,
    )
    assert state.is_failed()
    with pytest.raises(ApiContractDriftError, match="6 breaking"):
        state.result()
    artifacts = run_artifacts(state.state_details.flow_run_id)
    assert {"museum-api-report", "museum-api-changes", "museum-api-html"} <= set(artifacts)
    rows = artifacts["museum-api-changes"].data
    rows = json.loads(rows) if isinstance(rows, str) else rows
    assert sum(1 for r in rows if r["level"] == "breaking") == 6
    written = json.loads((tmp_path / "drift" / "diff" / "api-diff.json").read_text())
    assert "response-property-removed" in {c["kind"] for c in written["changes"]}
    review = json.loads((tmp_path / "drift" / "review" / "api-review.json").read_text())
    assert review["advice"]["provenance"]["narrator"] == "template" and review["findings"]


def test_drift_flow_passes_when_nothing_changed(prefect_server: str, tmp_path: Path) -> None:
    from dataeng_agents.prefect_integration.api_tasks import api_contract_drift_flow

    spec = str(MUSEUM / "museum-1.2.1.yaml")
    summary = api_contract_drift_flow(
        repo_spec_path=spec, deployed_spec_path=spec, contract_id="same", report_dir=str(tmp_path / "same")
    )
    assert summary["diff"]["changes"] == {"breaking": 0, "warning": 0, "info": 0}
    assert summary["review"]["files"] == 1
