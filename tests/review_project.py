"""A small team repository with a review config, shared by the core, Airflow and Prefect suites'
entry-point tests (issue 12: every entry point must read ``[tool.dataeng.review]`` the same way)."""

from __future__ import annotations

import textwrap
from pathlib import Path

PYPROJECT = """\
[project]
name = "team-dags"

[tool.dataeng.review]
profile = "strict"

[tool.dataeng.review.severity]
REL003 = "error"
"""

DAG = """\
from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

with DAG(dag_id="etl", schedule="@daily", start_date=datetime(2024, 1, 1), catchup=False, tags=["x"]) as dag:
    BashOperator(task_id="load", bash_command="echo load")
"""


def make_project(root: Path) -> Path:
    """A repository with ``[tool.dataeng.review] profile = "strict"``; returns its DAG folder."""
    (root / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    dags = root / "dags"
    dags.mkdir()
    (dags / "etl.py").write_text(textwrap.dedent(DAG), encoding="utf-8")
    return dags
