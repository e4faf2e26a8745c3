"""The experiment operators read configs through the core's one loader and take their analysis
window from the core (issue 12): a lifecycle YAML (``hypothesis:``/``tracking:``/``rollout:``
next to the experiment keys) works as a path and as YAML text, and each ``window`` reads the
interval the core's ``analysis_interval`` gives — checked against direct core calls."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import bundled_config
from dagrun import load_dag, local_path, run, task_states, xcom
from experiment_entry_support import lifecycle_demo_raw
from test_example_dags import assert_report_matches

LOGICAL_DATE = datetime(2024, 3, 9, tzinfo=UTC)

DAG_SOURCE = """
from datetime import datetime

from airflow.sdk import DAG
from dataeng_agents.airflow_provider.operators.experiment import (
    ExperimentAnalysisOperator,
    ExperimentDesignOperator,
)

common = dict(duckdb_path={duckdb!r}, srm_policy="warn", guardrail_policy="warn", formats=["json"])
with DAG(dag_id="dataeng_test_entry_points", schedule="@daily", start_date=datetime(2024, 3, 1), catchup=False) as dag:
    ExperimentAnalysisOperator(task_id="lifecycle_path", config={path!r}, **common)
    ExperimentAnalysisOperator(task_id="lifecycle_text", config={text!r}, **common)
    ExperimentAnalysisOperator(task_id="whole_period", config={path!r}, window="all", **common)
    ExperimentDesignOperator(task_id="design", config={path!r}, duckdb_path={duckdb!r}, formats=["json"])
"""


def test_operators_accept_a_lifecycle_yaml_and_use_the_cores_window(
    airflow_db: Path, checkout_duckdb: Path, write_dag: Any, tmp_path: Path
) -> None:
    from dataeng_agents.core.experiment import (
        analysis_interval,
        analyze_experiment,
        design_experiment,
        load_experiment_config,
    )
    from dataeng_agents.core.warehouse import DuckDBWarehouse

    raw = lifecycle_demo_raw()
    text = yaml.safe_dump(raw, sort_keys=False)
    path = tmp_path / "lifecycle.yaml"
    path.write_text(text, encoding="utf-8")
    write_dag(
        "test_entry_points_dag.py",
        DAG_SOURCE.format(duckdb=str(checkout_duckdb), path=str(path), text=text),
    )
    dag = load_dag("test_entry_points_dag.py")

    dr = run(dag, LOGICAL_DATE)

    assert set(task_states(dr).values()) == {"success"}, task_states(dr)
    wh = DuckDBWarehouse(str(checkout_duckdb))
    cfg = load_experiment_config(bundled_config())
    start, end = dr.data_interval_start, dr.data_interval_end
    expected_intervals = {
        # cumulative (the default): the experiment's start (2024-03-01 in the YAML) to the run's end
        "lifecycle_path": (datetime(2024, 3, 1, tzinfo=UTC), end),
        "lifecycle_text": (datetime(2024, 3, 1, tzinfo=UTC), end),
        "whole_period": None,
    }
    # (dag.test()'s manual run has an empty data interval, so the `data_interval` window reads
    # nothing here; tests/core/test_experiment_entry_points.py covers it)
    windows = {"lifecycle_path": "cumulative", "lifecycle_text": "cumulative", "whole_period": "all"}
    for task_id, interval in expected_intervals.items():
        assert analysis_interval(cfg, windows[task_id], start, end) == interval  # type: ignore[arg-type]
        summary = xcom(dr, task_id)
        report_json = json.loads(local_path(summary["report"]["json"]).read_text())
        direct = analyze_experiment(bundled_config(), wh, data_interval=interval)
        assert_report_matches(report_json, direct)
        assert report_json["hypothesis"] == "One-click checkout and recommendations"

    design = json.loads(local_path(xcom(dr, "design")["report"]["json"]).read_text())
    assert design["per_variant"] == design_experiment(bundled_config(), wh).per_variant


def test_a_bad_lifecycle_section_fails_the_task_naming_the_field(
    airflow_db: Path, checkout_duckdb: Path, tmp_path: Path
) -> None:
    from airflow.sdk.exceptions import AirflowFailException
    from dataeng_agents.airflow_provider.operators.experiment import ExperimentAnalysisOperator

    raw = lifecycle_demo_raw()
    raw["rollout"]["stages"][0]["percent"] = 0
    op = ExperimentAnalysisOperator(task_id="bad", config=raw, duckdb_path=str(checkout_duckdb))
    with pytest.raises(AirflowFailException, match=r"rollout\.stages\[0\]\.percent"):
        op.load_config()
