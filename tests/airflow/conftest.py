"""Airflow test environment: a throw-away AIRFLOW_HOME with a SQLite metadata DB, built once.

Airflow reads its configuration when ``airflow`` is first imported, so the environment is set
here, at conftest import time, before any test module imports airflow. The metadata DB is
migrated once per session (``airflow db migrate`` in a subprocess, ~7 s) by the
``airflow_db`` fixture; every DAG test depends on it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "dags_examples"

_HOME = Path(tempfile.mkdtemp(prefix="dataeng-airflow-home-"))
# dag.test() only runs DAGs that its bundle sync finds in the DAGs folder, so the folder holds copies
# of the example DAGs plus the DAG files individual tests write (see ``write_dag``).
DAGS = _HOME / "dags"
DAGS.mkdir()
for _example in sorted(EXAMPLES.glob("airflow_*.py")):
    shutil.copy2(_example, DAGS / _example.name)
os.environ["AIRFLOW_HOME"] = str(_HOME)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS)
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_HOME / 'airflow.db'}"
os.environ["AIRFLOW__LOGGING__BASE_LOG_FOLDER"] = str(_HOME / "logs")
os.environ.setdefault("MPLBACKEND", "Agg")
# The deployment default stays False; operators are tested with deferrable passed explicitly.
os.environ["AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE"] = "False"
# No key in the environment: every Claude path in these tests goes through an `anthropic` connection.
os.environ.pop("ANTHROPIC_API_KEY", None)


@pytest.fixture(scope="session")
def airflow_home() -> Iterator[Path]:
    yield _HOME


@pytest.fixture(scope="session")
def airflow_db(airflow_home: Path) -> Iterator[Path]:
    """Migrate the SQLite metadata DB of the session's AIRFLOW_HOME (once)."""
    airflow = Path(sys.executable).with_name("airflow")
    proc = subprocess.run(
        [str(airflow), "db", "migrate"], capture_output=True, text=True, env=os.environ.copy(), timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    yield airflow_home


@pytest.fixture(scope="session")
def checkout_duckdb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seeded checkout experiment (``dataeng demo`` data, 20k users) in a DuckDB file."""
    from samples import generate_checkout_sample

    return generate_checkout_sample(tmp_path_factory.mktemp("sample") / "checkout.duckdb")


def bundled_config() -> str:
    from importlib.resources import files

    return str(files("dataeng_agents.core.examples") / "experiments" / "checkout_demo.yaml")


@pytest.fixture
def write_dag() -> Iterator[Any]:
    """Write a DAG file into the DAGs folder for one test (removed afterwards); returns its path."""
    written: list[Path] = []

    def write(name: str, source: str) -> Path:
        path = DAGS / name
        path.write_text(source, encoding="utf-8")
        written.append(path)
        return path

    yield write
    for path in written:
        path.unlink(missing_ok=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_HOME, ignore_errors=True)
