"""The API contract operators in one ``dag.test()`` run: a strict review that fails after writing its
report, a clean review, a contract-drift diff on two real published versions that fails on the
breaking changes, and the same diff with ``fail_on="never"``; plus argument validation."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO
from dagrun import load_dag, local_path, run, task_states, xcom

FIXTURES = REPO / "tests" / "core" / "api_fixtures"
MUSEUM = REPO / "tests" / "core" / "api_specs" / "museum"

DAG_SOURCE = """
from datetime import datetime

from airflow.sdk import DAG
from dataeng_agents.airflow_provider.operators.api_contract import (
    ApiContractDiffOperator,
    ApiContractReviewOperator,
)

with DAG(dag_id="dataeng_test_api_operators", schedule=None, start_date=datetime(2024, 3, 1)) as dag:
    ApiContractReviewOperator(task_id="review_fails", paths={bad!r}, profile="strict", fail_on="error")
    ApiContractReviewOperator(task_id="review_clean", paths=[{good!r}], profile="strict", fail_on="warn",
                              formats=["json", "sarif"])
    ApiContractDiffOperator(task_id="drift_fails", old_path={old!r}, new_path={new!r})
    ApiContractDiffOperator(task_id="drift_report", old_path={old!r}, new_path={new!r}, fail_on="never",
                            output_path="memory://api/{{{{ run_id }}}}")
"""


def test_api_operators_in_a_dag_run(airflow_db: Path, write_dag: Any, tmp_path: Path) -> None:
    contracts = tmp_path / "contracts"
    contracts.mkdir()
    for name in ("PB001.bad.proto", "GQL003.bad.graphql"):
        (contracts / name).write_text((FIXTURES / name).read_text())
    write_dag(
        "test_api_operators_dag.py",
        DAG_SOURCE.format(
            bad=str(contracts),
            good=str(FIXTURES / "OAS002.good.yaml"),
            old=str(MUSEUM / "museum-1.1.1.yaml"),
            new=str(MUSEUM / "museum-1.2.1.yaml"),
        ),
    )
    dag = load_dag("test_api_operators_dag.py")

    dr = run(dag, datetime(2024, 3, 9, tzinfo=UTC))

    assert task_states(dr) == {
        "review_fails": "failed",
        "review_clean": "success",
        "drift_fails": "failed",
        "drift_report": "success",
    }
    # the failing review was written before the task failed, and it is the core's review
    summary = xcom(dr, "review_fails", key="summary")
    assert summary["findings"]["error"] >= 1 and summary["rules"]["PB001"] == 1
    review = json.loads(local_path(summary["report"]["json"]).read_text())
    from dataeng_agents.core.api import review_api_paths

    direct = review_api_paths([contracts], profile="strict")
    assert sorted(f["id"] for f in review["findings"]) == sorted(f.id for f in direct.findings)
    assert review["advice"]["provenance"]["narrator"] == "template"
    assert json.loads(local_path(summary["report"]["sarif"]).read_text())["version"] == "2.1.0"
    assert xcom(dr, "review_fails", key="_link_ReportLink") == summary["report"]["html"]

    clean = xcom(dr, "review_clean")
    assert clean["findings"] == {"error": 0, "warn": 0, "info": 0} and set(clean["report"]) == {
        "json",
        "sarif",
    }

    drift = xcom(dr, "drift_fails", key="summary")
    assert drift["changes"]["breaking"] == 6
    written = json.loads(local_path(drift["report"]["json"]).read_text())
    assert "response-property-removed" in {c["kind"] for c in written["changes"]}

    report = xcom(dr, "drift_report")
    assert report["changes"]["breaking"] == 6 and report["report"]["md"].startswith("memory://api/")


def test_api_operator_arguments_are_validated() -> None:
    from dataeng_agents.airflow_provider.operators.api_contract import (
        ApiContractDiffOperator,
        ApiContractReviewOperator,
    )

    with pytest.raises(ValueError, match="fail_on"):
        ApiContractReviewOperator(task_id="a", paths="x", fail_on="critical")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="formats"):
        ApiContractReviewOperator(task_id="b", paths="x", formats=["pdf"])
    with pytest.raises(ValueError, match="exactly one"):
        ApiContractDiffOperator(task_id="c", new_path="n.yaml")
    with pytest.raises(ValueError, match="exactly one"):
        ApiContractDiffOperator(task_id="d", new_path="n.yaml", old_path="o.yaml", base_ref="main")
    op = ApiContractDiffOperator(task_id="e", new_path="n.yaml", base_ref="main")
    assert set(op.template_fields) == {"old_path", "new_path", "base_ref", "output_path"}


def test_example_nightly_contract_dag_gates_on_the_release_tag(
    airflow_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dags_examples/airflow_api_contract_drift.py on a git repository whose `production` tag holds the
    museum API 1.1.1 while the working copy is 1.2.1: the gate fails on the real breaking changes
    (after writing its report), the strict review of the new contract passes (no error-level finding)."""
    import shutil
    import subprocess

    repo = tmp_path / "repo"
    (repo / "api").mkdir(parents=True)
    spec = repo / "api" / "openapi.yaml"
    shutil.copy(MUSEUM / "museum-1.1.1.yaml", spec)
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@x",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@x",
        "PATH": "/usr/bin:/bin:/usr/local/bin",
        "HOME": str(tmp_path),
    }
    for args in (
        ["init", "-q", "-b", "main"],
        ["add", "."],
        ["commit", "-qm", "1.1.1"],
        ["tag", "production"],
    ):
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, env=env)
    shutil.copy(MUSEUM / "museum-1.2.1.yaml", spec)
    monkeypatch.setenv("API_SPEC_PATH", str(spec))
    monkeypatch.setenv("API_DEPLOYED_REF", "production")
    dag = load_dag("airflow_api_contract_drift.py")

    dr = run(dag, datetime(2024, 3, 9, tzinfo=UTC))

    assert task_states(dr) == {"breaking_changes_since_release": "failed", "review_contract": "success"}
    gate = xcom(dr, "breaking_changes_since_release", key="summary")
    assert gate["changes"]["breaking"] == 6 and gate["old"] == f"production:{spec}"
    assert "response-property-removed" in local_path(gate["report"]["md"]).read_text()
    review = xcom(dr, "review_contract")
    assert review["findings"]["error"] == 0 and review["files"] == 1
