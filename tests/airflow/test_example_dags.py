"""Every example DAG runs end to end with ``dag.test()``; the reports are read back and checked
against a direct call of the core on the same warehouse and data interval."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import bundled_config
from dagrun import load_dag, local_path, run, task_states, xcom
from warehouse_copy import copy_duckdb_to_postgres

LOGICAL_DATE = datetime(2024, 3, 9, tzinfo=UTC)


def assert_close(got: Any, expected: Any, where: str = "") -> None:
    """Equal, with floats compared to 1e-9 relative (DuckDB's parallel sums are not bit-reproducible)."""
    if isinstance(expected, float) and isinstance(got, (int, float)):
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-12), where
    elif isinstance(expected, dict):
        assert isinstance(got, dict) and set(got) == set(expected), where
        for k in expected:
            assert_close(got[k], expected[k], f"{where}.{k}")
    elif isinstance(expected, (list, tuple)):
        assert isinstance(got, (list, tuple)) and len(got) == len(expected), where
        for i, (g, e) in enumerate(zip(got, expected, strict=True)):
            assert_close(g, e, f"{where}[{i}]")
    else:
        assert got == expected, where


def assert_report_matches(report_json: dict[str, Any], direct: Any) -> None:
    """The report the DAG wrote has exactly the numbers of the direct core call."""
    assert report_json["experiment_id"] == direct.experiment_id
    assert report_json["data_interval"] == (list(direct.data_interval) if direct.data_interval else None)
    assert report_json["total_units"] == direct.total_units
    assert report_json["excluded_units"] == direct.excluded_units
    assert {v["name"]: v["units"] for v in report_json["variants"]} == {
        v.name: v.units for v in direct.variants
    }
    assert report_json["decision"] == direct.decision.model_dump(mode="json")
    assert_close(
        [{k: h[k] for k in ("id", "status", "value", "threshold")} for h in report_json["health"]],
        [h.model_dump(mode="json", include={"id", "status", "value", "threshold"}) for h in direct.health],
        "health",
    )
    by_id = {r["id"]: r for r in report_json["results"]}
    assert set(by_id) == {r.id for r in direct.results}
    for r in direct.results:
        got = by_id[r.id]
        for field in (
            "estimate",
            "ci_lower",
            "ci_upper",
            "p_value",
            "adjusted_p_value",
            "control_mean",
            "variant_mean",
        ):
            expected = getattr(r, field)
            if expected is None:
                assert got[field] is None, (r.id, field)
            else:
                assert got[field] == pytest.approx(expected, rel=1e-9, abs=1e-12), (r.id, field)
        assert got["significant"] == r.significant, r.id


def test_daily_report_on_the_duckdb_sample(
    airflow_db: Path, checkout_duckdb: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATAENG_SAMPLE_DUCKDB", str(checkout_duckdb))
    dag = load_dag("airflow_experiment_report_duckdb.py")

    dr = run(dag, LOGICAL_DATE)

    assert task_states(dr) == {
        "bundled_config": "success",
        "prepare_sample": "success",
        "analyse_checkout": "success",
    }
    summary = xcom(dr, "analyse_checkout")
    report_path = local_path(summary["report"]["json"])
    report_json = json.loads(report_path.read_text())
    assert local_path(summary["report"]["html"]).read_text().lstrip().lower().startswith("<!doctype html")
    assert "##" in local_path(summary["report"]["md"]).read_text()

    from dataeng_agents.core.experiment import analyze_experiment
    from dataeng_agents.core.warehouse import DuckDBWarehouse

    # the cumulative daily view: from the experiment's start to the end of the run's data interval
    interval = (datetime(2024, 3, 1, tzinfo=UTC), dr.data_interval_end)
    direct = analyze_experiment(
        bundled_config(), DuckDBWarehouse(str(checkout_duckdb)), data_interval=interval
    )
    assert_report_matches(report_json, direct)

    # XCom holds the compact summary, the same the core computes, plus where the report is
    expected = json.loads(json.dumps(direct.summary(), default=str))
    assert_close({k: v for k, v in summary.items() if k not in ("report", "narration")}, expected, "summary")
    assert (summary["narration"]["narrator"], summary["narration"]["fell_back"]) == ("template", False)
    assert "sql" not in json.dumps(summary).lower().replace("sql_", "")
    # the extra link points at the HTML report
    assert xcom(dr, "analyse_checkout", key="_link_ReportLink") == summary["report"]["html"]


@pytest.mark.postgres
def test_daily_report_on_postgres_through_a_connection(
    airflow_db: Path,
    checkout_duckdb: Path,
    postgres_schema: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, schema = postgres_schema
    copied = copy_duckdb_to_postgres(checkout_duckdb, url, schema)
    assert copied["exposures"] > 0
    from urllib.parse import urlparse

    u = urlparse(url)
    monkeypatch.setenv(
        "AIRFLOW_CONN_DATAENG_WAREHOUSE",
        json.dumps(
            {
                "conn_type": "postgres",
                "host": u.hostname,
                "port": u.port or 5432,
                "login": u.username,
                "password": u.password,
                "schema": u.path.lstrip("/"),
                "extra": {"options": f"-c search_path={schema}"},
            }
        ),
    )
    dag = load_dag("airflow_experiment_report_postgres.py")

    dr = run(dag, LOGICAL_DATE)

    assert task_states(dr) == {"bundled_config": "success", "analyse_checkout": "success"}
    summary = xcom(dr, "analyse_checkout")
    report_json = json.loads(local_path(summary["report"]["json"]).read_text())
    assert report_json["dialect"] == "postgres"

    import psycopg
    from dataeng_agents.core.experiment import analyze_experiment
    from dataeng_agents.core.warehouse import DbApiWarehouse

    warehouse = DbApiWarehouse(lambda: psycopg.connect(url, options=f"-c search_path={schema}"), "postgres")
    interval = (datetime(2024, 3, 1, tzinfo=UTC), dr.data_interval_end)
    direct = analyze_experiment(bundled_config(), warehouse, data_interval=interval)
    assert_report_matches(report_json, direct)
