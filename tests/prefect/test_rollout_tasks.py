"""advance_rollout: an hourly flow advances a rollout from its decisions table and moves the flag
through a FeatureFlagService block (a local stub server; the token is a SecretStr)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest


class _Flags(BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, dict[str, Any], str | None]]] = []

    def do_PATCH(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append((self.path, body, self.headers.get("Authorization")))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def flag_server() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Flags)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_hourly_flow_advances_and_rolls_back(prefect_server: str, tmp_path: Path, flag_server: str) -> None:
    from dataeng_agents.core.lifecycle.demo_data import generate_rollout_data, rollout_demo_config
    from dataeng_agents.prefect_integration.rollout_tasks import (
        FeatureFlagService,
        RolloutDecisionsTable,
        RolloutStoppedError,
        advance_rollout,
    )
    from prefect import flow

    path = str(tmp_path / "ro.duckdb")
    truth = generate_rollout_data(path, seed=22, conversion_lift=-0.30)
    cfg = rollout_demo_config(truth, path)
    decisions = RolloutDecisionsTable(duckdb_path=str(tmp_path / "decisions.duckdb"))
    service = FeatureFlagService(
        url=flag_server + "/flags/{experiment_id}",
        token="t0ken-secret",
        body_template={"rollout": "{percent}", "note": "set by {experiment_id} to {percent}%"},
    )

    @flow
    def hourly(hours: int) -> Any:
        return advance_rollout(
            cfg, decisions, flag_service=service, checked_at=truth.start + timedelta(hours=hours)
        )

    first = hourly(24)
    assert first is not None and first["stage"] == 1 and first["decision"] == "advance"
    assert _Flags.seen[-1] == (
        f"/flags/{cfg['id']}",
        {"rollout": 5.0, "note": f"set by {cfg['id']} to 5%"},
        "Bearer t0ken-secret",
    )
    state = hourly(48, return_state=True)
    assert state.is_failed()
    with pytest.raises(RolloutStoppedError, match="rolled back"):
        state.result()
    assert _Flags.seen[-1][1]["rollout"] == 0.0
    assert hourly(49) is None  # over: nothing to check
    history = decisions.get_store().history(cfg["id"])
    assert [(r.stage, r.decision) for r in history.records] == [(1, "advance"), (2, "roll back")]
    assert "t0ken-secret" not in repr(service) and "t0ken-secret" not in json.dumps(
        service.model_dump(mode="json")
    )
