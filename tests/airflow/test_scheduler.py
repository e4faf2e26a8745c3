"""A real Airflow deployment, not ``dag.test()``: ``airflow api-server``, ``scheduler``,
``dag-processor`` and ``triggerer`` run as subprocesses with the LocalExecutor on a PostgreSQL
metadata database this test creates (and drops).

A deferrable analysis narrates through the fake Messages API, served over HTTP to the Airflow
processes. The first try's task process is killed (SIGKILL) after it submitted the Message Batch
and before it deferred; the retry re-attaches to the same batch (exactly one ``batches.create``),
the task sits in ``deferred`` while the batch is pending (its worker slot free), and once the batch
ends the triggerer wakes it and it writes Claude's report.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import bundled_config
from fake_anthropic import FakeAnthropicAPI

API_KEY = "sk-ant-api03-SCHEDULER-SECRET-4d1e9a"
DAG_ID = "dataeng_test_scheduler"
#: bounds every wait: the whole test stays within a few minutes even on two busy cores
STEP_TIMEOUT = 150.0

DAG_SOURCE = """
import os
import time
from datetime import datetime, timedelta
from pathlib import Path

from airflow.sdk import DAG, get_current_context
from dataeng_agents.airflow_provider.operators.experiment import ExperimentAnalysisOperator


class CrashOnceAnalysis(ExperimentAnalysisOperator):
    # The first try that submits announces its pid and try number once the batch is submitted (and
    # recorded), then waits to be killed: the test kills it there, between submitting and deferring.
    def _defer_on(self, batch_ids, wait=None):
        marker = Path({marker!r})
        if not marker.exists():
            try_number = get_current_context()["ti"].try_number
            marker.write_text(f"{{os.getpid()}} {{try_number}}")
            time.sleep(600)
        return super()._defer_on(batch_ids, wait)


with DAG(dag_id={dag_id!r}, schedule="@once", start_date=datetime(2024, 3, 1), catchup=False,
         is_paused_upon_creation=False) as dag:
    CrashOnceAnalysis(
        task_id="analyse",
        config={config!r},
        duckdb_path={duckdb!r},
        window="all",
        anthropic_conn_id="anthropic_fake",
        deferrable=True,
        poll_interval=1.0,
        retries=2,
        retry_delay=timedelta(seconds=1),
    )
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(what: str, check: Callable[[], Any], timeout: float, logs: Callable[[], str]) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}\n{logs()}")


@pytest.fixture
def metadata_db(postgres_url: str) -> Iterator[str]:
    """A fresh PostgreSQL database for Airflow's metadata (dropped afterwards)."""
    import psycopg

    name = f"dataeng_airflow_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = postgres_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# Four Airflow processes and three task runs on two shared cores: usually 2-3 minutes, up to ~8 under
# heavy load (measured at load average 12); every wait inside is bounded by STEP_TIMEOUT.
@pytest.mark.timeout(1200)
def test_scheduler_defers_frees_the_slot_and_a_killed_worker_reattaches(
    metadata_db: str, checkout_duckdb: Path, tmp_path: Path
) -> None:
    import psycopg

    api = FakeAnthropicAPI(polls_before_end=10**9)
    fake_url, fake_server = api.serve_http()
    home = tmp_path / "airflow"
    dags = home / "dags"
    dags.mkdir(parents=True)
    marker = tmp_path / "first_try.pid"
    (dags / "scheduler_dag.py").write_text(
        DAG_SOURCE.format(
            marker=str(marker), dag_id=DAG_ID, config=bundled_config(), duckdb=str(checkout_duckdb)
        )
    )
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "2",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_db,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__SECRET_KEY": "dataeng-scheduler-test",
            "AIRFLOW__API_AUTH__JWT_SECRET": "dataeng-scheduler-test-jwt-secret-0123456789",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": "False",
            "AIRFLOW_CONN_ANTHROPIC_FAKE": json.dumps(
                {"conn_type": "anthropic", "password": API_KEY, "host": fake_url}
            ),
            "MPLBACKEND": "Agg",
        }
    )
    airflow = str(Path(sys.executable).with_name("airflow"))
    migrate = subprocess.run(
        [airflow, "db", "migrate"], env=env, capture_output=True, text=True, timeout=300
    )
    assert migrate.returncode == 0, migrate.stdout[-3000:] + migrate.stderr[-3000:]

    procs: dict[str, subprocess.Popen[bytes]] = {}
    log_files: dict[str, Path] = {}

    def logs() -> str:
        parts = []
        for name, path in log_files.items():
            text = path.read_text(errors="replace") if path.exists() else ""
            parts.append(f"--- {name} (exit {procs[name].poll()}) ---\n{text[-2500:]}")
        for task_log in sorted((home / "logs").rglob("*.log")) if (home / "logs").exists() else []:
            if "dag_id=" in str(task_log):
                parts.append(f"--- {task_log.relative_to(home)} ---\n{task_log.read_text(errors='replace')[-2500:]}")
        return "\n".join(parts)

    def db_rows(sql: str) -> list[tuple[Any, ...]]:
        url = metadata_db.replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(url) as conn:
            return list(conn.execute(sql).fetchall())

    def ti_row() -> tuple[Any, ...] | None:
        rows = db_rows(f"select state, try_number from task_instance where dag_id = '{DAG_ID}'")
        return rows[0] if rows else None

    def start(name: str, *args: str) -> None:
        log_files[name] = tmp_path / f"{name}.log"
        procs[name] = subprocess.Popen(
            [airflow, *args],
            env=env,
            stdout=log_files[name].open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # killed as a group below, children (workers) included
        )

    def api_server_answers() -> bool:
        import urllib.request

        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    try:
        # workers report to the api-server's execution API: it must answer before tasks are queued
        start("api-server", "api-server", "--port", str(port), "--host", "127.0.0.1", "--workers", "1")
        _wait_for("the api-server", api_server_answers, STEP_TIMEOUT, logs)
        for name in ("dag-processor", "triggerer", "scheduler"):
            start(name, name)

        # 1. a try submits ONE batch, records it, and is killed before it can defer
        announced = _wait_for(
            "a try to submit its batch",
            lambda: marker.exists() and marker.read_text().strip(),
            STEP_TIMEOUT,
            logs,
        )
        pid, killed_try = (int(x) for x in announced.split())
        assert len(api.batch_creates) == 1
        assert ti_row() == ("running", killed_try)
        os.kill(pid, signal.SIGKILL)

        # 2. the retry re-attaches to the same batch and defers: the slot is free while it waits
        retry = killed_try + 1
        _wait_for("the retry to defer", lambda: ti_row() == ("deferred", retry), STEP_TIMEOUT, logs)
        (batch_id,) = api.batches
        assert len(api.batch_creates) == 1, "the retry paid for a second batch"
        triggers = db_rows("select classpath, kwargs::text from trigger")
        assert [t[0] for t in triggers] == [
            "dataeng_agents.airflow_provider.triggers.narration.NarrationBatchTrigger"
        ]
        assert batch_id in triggers[0][1]
        # the triggerer (not a worker) is polling the pending batch
        polled = _wait_for(
            "the triggerer to poll the batch",
            lambda: len(api.calls("GET", f"/v1/messages/batches/{batch_id}")) >= 2,
            STEP_TIMEOUT,
            logs,
        )
        assert polled
        assert ti_row() == ("deferred", retry)
        running = db_rows("select count(*) from task_instance where state = 'running'")
        assert running == [(0,)]  # no worker slot is held while the batch is pending

        # 3. the batch ends: the task resumes and writes Claude's report
        api.polls_before_end = 0
        _wait_for("the task to succeed", lambda: ti_row() == ("success", retry), STEP_TIMEOUT, logs)
        assert len(api.batch_creates) == 1
        ((summary,),) = db_rows(
            f"select value::text from xcom where dag_id = '{DAG_ID}' and key = 'return_value'"
        )
        summary = json.loads(summary)
        if isinstance(summary, str):  # stored as a JSON string by some XCom backends
            summary = json.loads(summary)
        assert summary["narration"]["narrator"] == "claude", summary["narration"]
        from urllib.parse import unquote, urlparse

        report = json.loads(Path(unquote(urlparse(summary["report"]["json"]).path)).read_text())
        assert report["narrative"]["provenance"]["usage"]["batch"] == 1.0
        assert len(api.calls("GET", f"/v1/messages/batches/{batch_id}/results")) == 1
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        fake_server.shutdown()
