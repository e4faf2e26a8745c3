"""Prefect suite fixtures: one throw-away Prefect server for the whole session.

Prefect reads its settings when it is first imported, so the isolated ``PREFECT_HOME``, the result
storage and the analytics switch are set here, at conftest import time, before any test module
imports prefect. The server (``prefect_test_harness``) is session-scoped and *not* autouse: block
schema tests do not need it.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from anthropic_payloads import assistant_message, batch_object
from warehouse_copy import copy_duckdb_to_postgres

if "prefect" in sys.modules:  # pragma: no cover - would silently use the developer's ~/.prefect
    raise RuntimeError("prefect was imported before tests/prefect/conftest.py could isolate its settings")

_RUN_DIR = Path(tempfile.mkdtemp(prefix="dataeng-prefect-tests-"))
for _name in list(os.environ):
    # A developer's profile (API URL/key of a real server) must never receive test runs.
    if _name.startswith("PREFECT_"):
        del os.environ[_name]
os.environ.update(
    {
        "PREFECT_HOME": str(_RUN_DIR / "home"),
        "PREFECT_RESULTS_LOCAL_STORAGE_PATH": str(_RUN_DIR / "results"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "INFO",
        "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
        "PREFECT_UI_ENABLED": "false",
    }
)
os.environ.setdefault("MPLBACKEND", "Agg")

# A realistic-looking key: the tests assert it never shows up in logs, artifacts or results.
FAKE_API_KEY = "sk-ant-api03-TESTKEY-never-log-me-5f1c2d3e4a5b6c7d8e9f"


@pytest.fixture(scope="session")
def api_key() -> str:
    return FAKE_API_KEY


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_RUN_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def prefect_run_dir() -> Path:
    """The per-run temp directory that holds PREFECT_HOME and the result storage."""
    return _RUN_DIR


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[str]:
    """A temporary Prefect server (SQLite) for the session; yields its API URL."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield str(PREFECT_API_URL.value())


# ------------------------------------------------------------------------------------ sample data
SAMPLE_USERS = 20_000


@pytest.fixture(scope="session")
def sample_duckdb(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The bundled seeded e-commerce experiment (planted effects), written into a DuckDB file."""
    from dataeng_agents.core.warehouse.sample_data import generate

    path = tmp_path_factory.mktemp("sample") / "demo.duckdb"
    generate(path, users=SAMPLE_USERS, seed=7)
    return str(path)


@pytest.fixture
def sample_postgres(sample_duckdb: str, postgres_schema: tuple[str, str]) -> tuple[str, str]:
    """The same sample experiment in a fresh PostgreSQL schema: ``(url, schema)``."""
    url, schema = postgres_schema
    copy_duckdb_to_postgres(sample_duckdb, url, schema)
    return url, schema


# ------------------------------------------------------------------------------ fake Messages API
class FakeAnthropic:
    """A local HTTP server speaking the Messages API: answers each request by calling the
    ``final_answer`` tool with a minimal valid, number-free input built from the tool's schema."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.requests: list[dict[str, object]] = []
        self.api_keys: list[str] = []
        #: answer every request with this HTTP error status (e.g. 400) instead of a message
        self.fail_with: int | None = None
        #: Message Batches: created batches, and how many polls a batch stays "in_progress"
        self.batches: dict[str, dict[str, Any]] = {}
        self.batch_requests: list[dict[str, Any]] = []
        self.polls_before_end = 1
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep pytest output clean
                pass

            def do_POST(self) -> None:
                import json

                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
                # SDK 2.x sends the key as a bearer token; older SDKs as x-api-key
                bearer = self.headers.get("authorization", "").removeprefix("Bearer ")
                fake.api_keys.append(self.headers.get("x-api-key") or bearer)
                if not self.path.startswith("/v1/messages"):
                    self.send_response(404)
                    self.end_headers()
                    return
                if self.path.startswith("/v1/messages/batches"):
                    fake.batch_requests.append(body)
                    batch_id = f"msgbatch_{len(fake.batches) + 1:04d}"
                    fake.batches[batch_id] = {"requests": body["requests"], "polls": 0}
                    self._json(200, fake.batch_json(batch_id))
                    return
                fake.requests.append(body)
                if fake.fail_with is not None:
                    error = {"type": "invalid_request_error", "message": "prompt is too long"}
                    payload = json.dumps({"type": "error", "error": error}).encode()
                    self.send_response(fake.fail_with)
                else:
                    payload = json.dumps(fake.answer(body)).encode()
                    self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("request-id", f"req_{len(fake.requests):04d}")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _json(self, status: int, obj: object, content_type: str = "application/json") -> None:
                import json

                payload = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                import json

                bearer = self.headers.get("authorization", "").removeprefix("Bearer ")
                fake.api_keys.append(self.headers.get("x-api-key") or bearer)
                parts = self.path.split("?")[0].split("/")
                if len(parts) < 5 or parts[4] not in fake.batches:
                    self._json(
                        404, {"type": "error", "error": {"type": "not_found_error", "message": self.path}}
                    )
                    return
                batch_id = parts[4]
                if len(parts) == 5:
                    fake.batches[batch_id]["polls"] += 1
                    self._json(200, fake.batch_json(batch_id))
                    return
                lines = [
                    json.dumps(
                        {
                            "custom_id": r["custom_id"],
                            "result": {"type": "succeeded", "message": fake.answer(r["params"])},
                        }
                    )
                    for r in fake.batches[batch_id]["requests"]
                ]
                self._json(200, "\n".join(lines).encode(), "application/binary")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, body: dict[str, Any]) -> dict[str, Any]:
        return assistant_message(body, f"{len(self.requests):04d}", input_tokens=1800, output_tokens=220)

    def batch_json(self, batch_id: str) -> dict[str, Any]:
        batch = self.batches[batch_id]
        return batch_object(
            batch_id,
            len(batch["requests"]),
            ended=batch["polls"] > self.polls_before_end,
            results_url=f"{self.base_url}/v1/messages/batches/{batch_id}/results",
        )

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_anthropic() -> Iterator[FakeAnthropic]:
    fake = FakeAnthropic()
    try:
        yield fake
    finally:
        fake.close()
