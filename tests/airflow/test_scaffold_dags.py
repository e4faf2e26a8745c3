"""The scaffold's Airflow DAG, for each architecture and the two example requests: it loads in a
DagBag with no import error, its alert callbacks resolve, and ``dag.test()`` runs extract-load,
``dbt build`` and the checks against DuckDB (and PostgreSQL for the two requests).

The DAG transforms through astronomer-cosmos (one task per dbt node) where cosmos is installed,
else one ``dbt build`` task: the test environment has cosmos (the ``cosmos`` extra), so the
``dbt build`` branch is run with cosmos hidden, and the cosmos branch on its own."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pendulum
import pytest
from dagrun import load_dag, run, task_states

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from scaffold_support import ALL_KEYS, REQUESTS, build, isolated_pipeline, scalar


@pytest.fixture
def isolated() -> Iterator[None]:
    with isolated_pipeline():
        yield


@pytest.fixture
def without_cosmos(monkeypatch: pytest.MonkeyPatch) -> None:
    """The generated DAG parses as where astronomer-cosmos is not installed."""
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "cosmos" else find_spec(name, *a)
    )


def _run_dag(key: str, out: Path, write_dag: Any, **build_kw: Any) -> tuple[Any, Any]:
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk.module_loading import import_string

    built = build(key, out, **build_kw)
    name = built.project.name
    bag = DagBag(dag_folder=str(out / "dags"))
    assert bag.import_errors == {} and list(bag.dag_ids) == [name]
    dag_file = write_dag(
        f"scaffold_{key}_{uuid.uuid4().hex[:6]}.py", (out / "dags" / f"{name}.py").read_text()
    )
    dag = load_dag(dag_file.name, name)
    # the callbacks name functions that exist (the old starter DAG's did not)
    deadlines = dag.deadline if isinstance(dag.deadline, list) else [dag.deadline]
    assert deadlines and all(callable(import_string(d.callback.path)) for d in deadlines)
    assert dag.default_args["on_failure_callback"].__name__ == "notify_failure"
    end = pendulum.instance(built.end, tz="UTC")
    interval = dag.timetable.infer_manual_data_interval(run_after=end)
    assert (interval.start.replace(tzinfo=None), interval.end.replace(tzinfo=None)) == (
        built.start,
        built.end,
    )
    dr = run(dag, end)
    return built, dr


@pytest.mark.parametrize("key", ALL_KEYS)
def test_scaffold_dag_runs_on_duckdb(
    key: str, tmp_path: Path, airflow_db: Path, write_dag: Any, isolated: None, without_cosmos: None
) -> None:
    built, dr = _run_dag(key, tmp_path, write_dag)
    states = task_states(dr)
    assert str(dr.state) in {"success", "DagRunState.SUCCESS"}, states
    cfg = built.module("pipeline_config")
    assert set(states) >= {f"load_{n}" for n in cfg.SOURCES} | {f"check_{n}" for n in cfg.SINKS} | {
        "dbt_build"
    }
    assert set(states.values()) == {"success"}
    import duckdb

    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as conn:
        for sink in cfg.SINKS:
            assert scalar(conn, f"select count(*) from analytics.{sink}") > 0


@pytest.mark.postgres
@pytest.mark.parametrize("key", sorted(REQUESTS))
def test_scaffold_dag_runs_on_postgres(
    key: str, tmp_path: Path, airflow_db: Path, write_dag: Any, isolated: None, without_cosmos: None
) -> None:
    url = os.environ.get("DATAENG_TEST_POSTGRES_URL")
    assert url, "set DATAENG_TEST_POSTGRES_URL (PostgreSQL tests never skip)"
    prefix = f"scaf_{uuid.uuid4().hex[:8]}_"
    import psycopg

    try:
        built, dr = _run_dag(key, tmp_path, write_dag, warehouse_url=url, schema_prefix=prefix)
        assert set(task_states(dr).values()) == {"success"}, task_states(dr)
        with psycopg.connect(url) as conn:
            for sink in built.module("pipeline_config").SINKS:
                n = scalar(conn, f"select count(*) from {prefix}analytics.{sink}")
                assert n > 0
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            schemas = [
                r[0]
                for r in conn.execute(
                    "select schema_name from information_schema.schemata where schema_name like %s",
                    (prefix + "%",),
                )
            ]
            for s in schemas:
                conn.execute(f'drop schema "{s}" cascade')


def test_scaffold_dag_runs_dbt_through_cosmos(
    tmp_path: Path, airflow_db: Path, write_dag: Any, isolated: None
) -> None:
    import importlib.util

    assert importlib.util.find_spec("cosmos") is not None, (
        "astronomer-cosmos is missing: install the test environment with the `cosmos` extra"
    )
    built, dr = _run_dag("postgres_snowflake", tmp_path, write_dag)
    states = task_states(dr)
    assert set(states.values()) == {"success"}, states
    models = sorted(p.stem for p in (tmp_path / "dbt" / "models").rglob("*.sql"))
    assert models and "dbt_build" not in states
    # one run task and one test task per model, in the dbt task group
    for model in models:
        assert states.get(f"dbt.{model}.run") == "success", (model, sorted(states))
    assert any(t.startswith("dbt.") and t.endswith(".test") for t in states)
    cfg = built.module("pipeline_config")
    import duckdb

    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as conn:
        for sink in cfg.SINKS:
            assert scalar(conn, f"select count(*) from analytics.{sink}") > 0
