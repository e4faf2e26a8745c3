"""Helpers to run example DAGs with ``dag.test()`` and read what they wrote back."""

from __future__ import annotations

import importlib.util
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from conftest import DAGS


def load_dag(name: str, dag_id: str | None = None) -> Any:
    """Import ``<DAGs folder>/<name>`` (a copy of ``dags_examples/<name>``) and return its DAG."""
    from airflow.sdk import DAG

    path = DAGS / name
    module_name = f"example_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    dags = [v for v in vars(module).values() if isinstance(v, DAG)]
    if dag_id is not None:
        dags = [d for d in dags if d.dag_id == dag_id]
    assert len(dags) == 1, f"{name}: expected one DAG, found {[d.dag_id for d in dags]}"
    return dags[0]


def run(dag: Any, logical_date: datetime, **kwargs: Any) -> Any:
    """``dag.test()`` and return the finished DagRun.

    The DAG's ``deadline`` is dropped first: on Airflow 3.3.2, ``dag.test()`` of a DAG with
    ``deadline=`` crashes when the run *succeeds* (``DagRun.update_state`` looks the alerts up by id,
    but dag.test's scheduler copy of the DAG holds the serialized alert, so the query gets a dict).
    Deadlines are evaluated by the scheduler only, which dag.test() does not run, so nothing that
    is tested here changes.
    """
    if getattr(dag, "deadline", None):
        dag.deadline = None
    return dag.test(logical_date=logical_date, **kwargs)


def task_states(dr: Any) -> dict[str, str]:
    return {
        ti.task_id: str(ti.state.value if hasattr(ti.state, "value") else ti.state)
        for ti in dr.get_task_instances()
    }


def xcom(dr: Any, task_id: str, key: str = "return_value") -> Any:
    """The XCom value a task of ``dr`` pushed, read from the metadata DB."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        row = session.execute(
            select(XComModel.value).where(
                XComModel.dag_id == dr.dag_id,
                XComModel.run_id == dr.run_id,
                XComModel.task_id == task_id,
                XComModel.key == key,
            )
        ).first()
    if row is None:
        return None
    value = row[0]
    return value  # the column is JSON-typed: already decoded


def all_xcom_text(dr: Any) -> str:
    """Every XCom value of the run as one string (for secret-leak assertions)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(XComModel.key, XComModel.value).where(
                XComModel.dag_id == dr.dag_id, XComModel.run_id == dr.run_id
            )
        ).all()
    return "\n".join(f"{k}={v}" for k, v in rows)


def rendered_fields_text(dr: Any) -> str:
    """Every rendered template field of the run (what the UI shows) as one string."""
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(RenderedTaskInstanceFields.rendered_fields).where(
                RenderedTaskInstanceFields.dag_id == dr.dag_id,
                RenderedTaskInstanceFields.run_id == dr.run_id,
            )
        ).all()
    return "\n".join(json.dumps(r[0], default=str) for r in rows)


def local_path(uri: str) -> Path:
    parsed = urlparse(uri)
    assert parsed.scheme in ("file", ""), uri
    return Path(unquote(parsed.path))


def task_log_text(dr: Any, task_id: str) -> str:
    """The task's log file(s) under ``[logging] base_log_folder``."""
    import os

    base = Path(os.environ["AIRFLOW__LOGGING__BASE_LOG_FOLDER"])
    texts = [
        p.read_text(errors="replace")
        for p in base.rglob("*")
        if p.is_file() and f"task_id={task_id}" in str(p) and f"dag_id={dr.dag_id}" in str(p)
    ]
    return "\n".join(texts)
