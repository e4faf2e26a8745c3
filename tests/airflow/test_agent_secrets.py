"""The Airflow entry points of the LLM path (issue 15): a narrated experiment analysis whose config
plants secrets in the experiment's name and hypothesis, and an ``AgentOperator`` whose context holds
every shape of the secret corpus, run in one ``dag.test()`` through the official ``anthropic``
connection against the fake Messages API: no secret reaches any recorded request body, the context
files on disk are ``0600`` and redacted, and the provenance says Claude wrote the prose."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import bundled_config
from dagrun import load_dag, run, task_states, xcom
from fake_anthropic import FakeAnthropicAPI

API_KEY = "sk-ant-api03-AGENT-SECRETS-TEST-0badc0de"
CORPUS = yaml.safe_load(
    (Path(__file__).resolve().parents[1] / "core" / "data" / "secret_corpus.yaml").read_text(encoding="utf-8")
)
SECRETS = [str(e["secret"]) for e in CORPUS["positive"]]
PLANTED = ["Airflow-Name-Uri-Pw-7", "Airflow-Hypothesis-Pw-8"]

DAG_SOURCE = """
from datetime import datetime

from airflow.sdk import DAG
from dataeng_agents.airflow_provider.operators.agent import AgentOperator
from dataeng_agents.airflow_provider.operators.experiment import ExperimentAnalysisOperator

with DAG(dag_id="dataeng_test_agent_secrets", schedule=None, start_date=datetime(2024, 3, 1)) as dag:
    analysis = ExperimentAnalysisOperator(
        task_id="analysis",
        config={config!r},
        duckdb_path={duckdb!r},
        anthropic_conn_id="anthropic_secrets",
        deferrable=False,
    )
    AgentOperator(
        task_id="ask",
        question="Is the orders DAG safe to schedule?",
        context={context!r},
        context_task_ids=["analysis"],
        anthropic_conn_id="anthropic_secrets",
    ).set_upstream(analysis)
"""


def _planted_config(tmp_path: Path) -> str:
    raw = yaml.safe_load(Path(bundled_config()).read_text(encoding="utf-8"))
    raw["name"] = f"checkout via postgresql://etl:{PLANTED[0]}@db/wh"
    raw["hypothesis"] = f'One-click checkout lifts conversion. password = "{PLANTED[1]}"\n' + "\n".join(
        e["text"] for e in CORPUS["positive"][:15]
    )
    path = tmp_path / "planted.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return str(path)


def test_no_secret_reaches_the_api_from_airflow(
    airflow_db: Path, checkout_duckdb: Path, write_dag: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_ANTHROPIC_SECRETS", json.dumps({"conn_type": "anthropic", "password": API_KEY})
    )
    api = FakeAnthropicAPI().install(monkeypatch)
    context = {"dag_source": "\n".join(e["text"] for e in CORPUS["positive"]) + "\n# END-MARKER-AIRFLOW\n"}
    write_dag(
        "test_agent_secrets_dag.py",
        DAG_SOURCE.format(config=_planted_config(tmp_path), duckdb=str(checkout_duckdb), context=context),
    )
    dr = run(load_dag("test_agent_secrets_dag.py"), datetime(2024, 3, 9, tzinfo=UTC))
    assert task_states(dr) == {"analysis": "success", "ask": "success"}

    analysis = xcom(dr, "analysis")
    answer = xcom(dr, "ask")
    assert answer["provenance"]["narrator"] == "claude", answer["provenance"].get("fallback_reason")
    assert analysis["headline"] == "Claude wrote this headline."

    bodies = [r.content.decode() for r in api.calls("POST", "/v1/messages")]
    sent = "\n".join(bodies)
    assert "END-MARKER-AIRFLOW" in sent  # the whole context reached the model through read_text pages
    assert [s for s in [*SECRETS, *PLANTED, API_KEY] if s in sent] == []

    # the context files the operator wrote for the core are private and hold redacted text only
    import tempfile

    folder = next(
        Path(tempfile.gettempdir(), "dataeng-agent-context").glob("dataeng_test_agent_secrets.ask.*")
    )
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    files = list(folder.iterdir())
    assert files and all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    on_disk = "\n".join(f.read_text() for f in files)
    assert [s for s in [*SECRETS, *PLANTED] if s in on_disk] == []
