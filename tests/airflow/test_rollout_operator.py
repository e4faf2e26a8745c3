"""GuardedRolloutOperator: scheduled runs advance the rollout from its history, record each
decision, move the flag (a callable or a flag service's HTTP API on a local stub), and end as the
decision says."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import duckdb
import pytest
from airflow.sdk.exceptions import AirflowSkipException
from dataeng_agents.airflow_provider.operators.rollout import GuardedRolloutOperator, RolloutRolledBackError
from dataeng_agents.core.lifecycle.actions import CallableFlag
from dataeng_agents.core.lifecycle.demo_data import generate_rollout_data, rollout_demo_config


@pytest.fixture
def harmful(tmp_path: Path) -> tuple[Any, dict[str, Any]]:
    path = str(tmp_path / "ro.duckdb")
    truth = generate_rollout_data(path, seed=22, conversion_lift=-0.30)
    return truth, rollout_demo_config(truth, path)


def test_scheduled_runs_advance_then_roll_back(harmful: tuple[Any, dict[str, Any]], tmp_path: Path) -> None:
    truth, cfg = harmful
    flags: dict[str, float] = {}
    op = GuardedRolloutOperator(
        task_id="rollout",
        config=cfg,
        decisions_duckdb_path=str(tmp_path / "decisions.duckdb"),
        flag=CallableFlag(lambda exp_id, pct: flags.__setitem__(exp_id, pct)),
    )
    first = op.execute({"data_interval_end": truth.start + timedelta(hours=24)})  # type: ignore[arg-type]
    assert first is not None and (first["stage"], first["decision"]) == (1, "advance")
    assert flags == {cfg["id"]: 5.0}
    # conversion is 30% worse under the feature: the next run (stage 2, from the history) rolls back
    with pytest.raises(RolloutRolledBackError, match="conversion regressed"):
        op.execute({"data_interval_end": truth.start + timedelta(hours=48)})  # type: ignore[arg-type]
    assert flags == {cfg["id"]: 0.0}
    rows = (
        duckdb.connect(str(tmp_path / "decisions.duckdb"))
        .execute("SELECT stage, decision, flag_percent FROM rollout_decisions ORDER BY checked_at")
        .fetchall()
    )
    assert rows == [(1, "advance", 5.0), (2, "roll back", 0.0)]
    with pytest.raises(AirflowSkipException, match="rolled back"):
        op.execute({"data_interval_end": truth.start + timedelta(hours=49)})  # type: ignore[arg-type]


class _Flags(BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, dict[str, Any], str | None]]] = []

    def do_PUT(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append((self.path, body, self.headers.get("Authorization")))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def flag_server() -> Iterator[int]:
    server = HTTPServer(("127.0.0.1", 0), _Flags)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def test_flag_moves_through_an_http_connection(
    harmful: tuple[Any, dict[str, Any]], tmp_path: Path, flag_server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    truth, cfg = harmful
    monkeypatch.setenv(
        "AIRFLOW_CONN_FLAG_SERVICE",
        json.dumps(
            {
                "conn_type": "http",
                "host": "127.0.0.1",
                "port": flag_server,
                "schema": "http",
                "password": "s3cret",
            }
        ),
    )
    op = GuardedRolloutOperator(
        task_id="rollout",
        config=cfg,
        decisions_duckdb_path=str(tmp_path / "decisions.duckdb"),
        flag_http_conn_id="flag_service",
        flag_endpoint="/api/admin/features/{experiment_id}/rollout",
        flag_method="PUT",
        flag_body=lambda pct, d: {"rollout": str(round(pct))},
        flag_token_prefix="Token ",
        rollback_policy="warn",
    )
    summary = op.execute({"data_interval_end": truth.start + timedelta(hours=24)})  # type: ignore[arg-type]
    assert summary is not None and summary["decision"] == "advance"
    assert _Flags.seen[-1] == (f"/api/admin/features/{cfg['id']}/rollout", {"rollout": "5"}, "Token s3cret")


def test_the_example_dag_runs_the_rollout_hour_after_hour(airflow_db: Path) -> None:
    from dagrun import load_dag, run, task_states

    dag = load_dag("airflow_guarded_rollout.py")
    module = __import__("example_airflow_guarded_rollout")
    folder = module.SAMPLE_DIR
    states = []
    for at in (
        datetime(2025, 3, 4, 1, tzinfo=UTC),
        datetime(2025, 3, 5, 1, tzinfo=UTC),
        datetime(2025, 3, 6, 1, tzinfo=UTC),
    ):
        states.append(task_states(run(dag, at))["rollout"])
    rows = (
        duckdb.connect(str(folder / "decisions.duckdb"), read_only=True)
        .execute("SELECT stage, decision, flag_percent FROM rollout_decisions ORDER BY checked_at")
        .fetchall()
    )
    flags = json.loads((folder / "flags.json").read_text())
    # every run checked the stage the previous one left live; the harmful feature ends rolled back
    assert [r[0] for r in rows] == list(range(1, len(rows) + 1))
    assert rows[-1][1] == "roll back" and list(flags.values()) == [0.0]
    assert all(r[1] == "advance" for r in rows[:-1])
    assert states[len(rows) - 1] == "failed"
    assert all(s == "success" for s in states[: len(rows) - 1])
    assert all(s == "skipped" for s in states[len(rows) :])
