"""Claude never sees a secret: every shape of the secret corpus is absent from every request body,
through ``dataeng agent ask --context`` (a subprocess, as a user runs it, against a local Messages
API), through the narration path the Airflow and Prefect adapters call (facts with secrets in
names, hypotheses, docstrings, messages and configs; interactive and batch), and in the context
files orchestrators write."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from anthropic_payloads import assistant_message
from dataeng_agents.core.agents import BatchNarration, ClaudeNarrator, question_task, write_context_files
from dataeng_agents.core.narrative import ExperimentNarrative, NarrationTask, ReviewAdvice
from test_agents_narrator import NO_SLEEP
from test_llm_fakes import FakeAnthropic

CORPUS = yaml.safe_load((Path(__file__).parent / "data" / "secret_corpus.yaml").read_text(encoding="utf-8"))
SECRETS = [str(e["secret"]) for e in CORPUS["positive"]]
#: the five the issue saw leak from a DAG through `agent ask --context`
ISSUE_DAG = '''"""Orders ETL: loads orders nightly."""
import requests

DB_PASS = "Orders-Db-Pass-9"
HEADERS = {"Authorization": "Token 7c1e9a22b0d84f3f9e61aa02"}
LOAD = "mysql -u root -pMysqlRootPw77 orders < /tmp/orders.sql"
PGPASS = """
warehouse.internal:5432:analytics:etl:PgpassLinePw55
"""
r = requests.get("https://api.internal/orders", auth=("etl", "Tuple-Auth-Pw-3"))
'''
ISSUE_SECRETS = [
    "Orders-Db-Pass-9",
    "7c1e9a22b0d84f3f9e61aa02",
    "MysqlRootPw77",
    "PgpassLinePw55",
    "Tuple-Auth-Pw-3",
]
ALL_SECRETS = SECRETS + ISSUE_SECRETS
#: text after every secret: proves the whole file reached the requests (paged), not just its head
END_MARKER = "END-OF-CONTEXT-MARKER-42"


def corpus_text() -> str:
    parts = [ISSUE_DAG]
    parts += [f"# {e['id']}\n{e['text']}\n" for e in CORPUS["positive"]]
    parts.append(f"# {END_MARKER}\n")
    return "\n".join(parts)


def leaks(bodies: list[str]) -> list[str]:
    return [s for s in ALL_SECRETS if any(s in b for b in bodies)]


class LocalMessagesAPI:
    """A Messages API on a local port that reads like a diligent model (tests/anthropic_payloads.py)."""

    def __init__(self) -> None:
        self.bodies: list[str] = []
        ids = itertools.count(1)
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length", 0))).decode()
                api.bodies.append(raw)
                n = next(ids)
                payload = json.dumps(assistant_message(json.loads(raw), f"{n:04d}")).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("request-id", f"req_local_{n:04d}")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def local_api() -> Iterator[LocalMessagesAPI]:
    api = LocalMessagesAPI()
    try:
        yield api
    finally:
        api.close()


def _dataeng() -> list[str]:
    exe = shutil.which("dataeng", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "dataeng_agents.core.cli"]


def test_agent_ask_with_a_secret_laden_context_file_sends_no_secret(
    tmp_path: Path, local_api: LocalMessagesAPI
) -> None:
    context = tmp_path / "orders_etl.py"
    context.write_text(corpus_text(), encoding="utf-8")
    assert len(context.read_text()) > 4_000  # longer than one view: the rest goes through read_text pages
    env = {
        **os.environ,
        "ANTHROPIC_API_KEY": "sk-ant-api03-local-test-key-000",
        "ANTHROPIC_BASE_URL": local_api.base_url,
        "DATAENG_NARRATOR": "auto",
    }
    env.pop("DATAENG_AGENT_MAX_USD", None)
    out = subprocess.run(
        [
            *_dataeng(),
            "agent",
            "ask",
            "data-engineer",
            "Is this DAG safe to schedule?",
            "--context",
            str(context),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "claude" in out.stdout and "cached" in out.stdout  # the footer counts cached input tokens
    assert len(local_api.bodies) >= 3  # read the views, paged the rest, answered
    sent = "\n".join(local_api.bodies)
    assert END_MARKER in sent  # the whole file reached the model (so the check below means something)
    assert leaks(local_api.bodies) == []
    assert "[REDACTED]" in sent


def _planted_facts() -> dict[str, Any]:
    text = corpus_text()
    return {
        "experiment": {
            "id": "checkout",
            "name": f"checkout {SECRETS[0]}",
            "hypothesis": text,
            "config": {
                "warehouse": {
                    "password": "Config-Pw-Planted-1",
                    "url": "postgresql://u:Uri-Pw-Planted-2@h/db",
                }
            },
        },
        "decision": {"verdict": "ship"},
        "results": [
            {"id": "metric:conversion", "estimate": 0.031, "p_value": 0.002, "description": text[:3000]}
        ],
        "findings": [
            {
                "id": f"SEC001-{i}",
                "rule_id": "SEC001",
                "severity": "error",
                "message": e["text"],
                "snippet": e["text"],
            }
            for i, e in enumerate(CORPUS["positive"])
        ],
        "docstring": text,
    }


PLANTED = ["Config-Pw-Planted-1", "Uri-Pw-Planted-2"]


@pytest.mark.parametrize("output_model", [ExperimentNarrative, ReviewAdvice])
def test_the_narration_path_sends_no_secret_from_names_docstrings_messages_or_configs(
    output_model: type[Any],
) -> None:
    fake = FakeAnthropic(messages=lambda body: assistant_message(body, "n"))
    task: NarrationTask[Any] = NarrationTask(
        kind="experiment" if output_model is ExperimentNarrative else "review",
        subject_id=f"orders {SECRETS[1]}",
        facts=_planted_facts(),
        output_model=output_model,
        template=lambda: (
            output_model(headline="t", summary="t")
            if output_model is ExperimentNarrative
            else ReviewAdvice(summary="t")
        ),
        question=f"What now? The loader uses DB_PASS={ISSUE_SECRETS[0]} and {SECRETS[2]}",
    )
    out = ClaudeNarrator(fake.client(), retry=NO_SLEEP).narrate(task)
    assert out.provenance.narrator == "claude", out.provenance.fallback_reason
    bodies = [json.dumps(b) for b in fake.bodies]
    sent = "\n".join(bodies)
    assert END_MARKER in sent and "read_text" in sent
    assert leaks(bodies) == [] and not [p for p in PLANTED if p in sent]


def test_batch_requests_carry_no_secret() -> None:
    task: NarrationTask[Any] = NarrationTask(
        kind="review",
        subject_id="orders",
        facts=_planted_facts(),
        output_model=ReviewAdvice,
        template=lambda: ReviewAdvice(summary="t"),
    )
    request = json.dumps(BatchNarration.prepare(task, persona="data-engineer").request())
    assert END_MARKER in request
    assert leaks([request]) == [] and not [p for p in PLANTED if p in request]


def test_context_files_are_redacted_and_private(tmp_path: Path) -> None:
    folder = tmp_path / "ctx"
    paths = write_context_files(
        folder, {"dag.py": corpus_text(), "summary": {"password": "Json-Ctx-Pw-8", "rows": 3}}
    )
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for p in paths:
        assert stat.S_IMODE(Path(p).stat().st_mode) == 0o600
    written = "\n".join(Path(p).read_text() for p in paths)
    assert leaks([written]) == [] and "Json-Ctx-Pw-8" not in written and END_MARKER in written
    # what question_task holds is redacted too (before any request is built)
    task = (
        question_task("data-engineer", "q", [tmp_path / "raw.py"])
        if (tmp_path / "raw.py").write_text(corpus_text())
        else None
    )
    assert task is not None and leaks([json.dumps(task.facts)]) == []
