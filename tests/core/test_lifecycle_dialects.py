"""Lifecycle SQL emitted for BigQuery: timestamps compare as its TIMESTAMP, and the queries mean the
same thing as the DuckDB ones (run by transpiling them back to DuckDB)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlglot
from dataeng_agents.core.commands.lifecycle import check_tracking, explore_experiment, rollout_check
from dataeng_agents.core.lifecycle.demo_data import (
    generate_lifecycle_data,
    generate_rollout_data,
    lifecycle_demo_config,
    rollout_demo_config,
)
from dataeng_agents.core.warehouse import DuckDBWarehouse
from dataeng_agents.core.warehouse.runners import Row


class BigQueryOverDuckDB:
    """A warehouse that is asked BigQuery SQL and answers it from DuckDB."""

    dialect = "bigquery"

    def __init__(self, path: str) -> None:
        self.duck = DuckDBWarehouse(path)
        self.seen: list[str] = []

    def query(self, sql: str) -> list[Row]:
        self.seen.append(sql)
        return self.duck.query(sqlglot.transpile(sql, read="bigquery", write="duckdb")[0])


def assert_same(a: Any, b: Any, path: str = "") -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            assert_same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        # parallel aggregation may sum in another order
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12), (path, a, b)
    else:
        assert a == b, (path, a, b)


def assert_bigquery_timestamps(seen: list[str]) -> None:
    assert seen
    for sql in seen:
        # BigQuery's DATETIME does not compare with the TIMESTAMP columns event tables use
        assert "AS DATETIME)" not in sql, sql
        assert "AS TIMESTAMP)" in sql, sql


def test_exploration_and_tracking_check_in_bigquery_sql(tmp_path: Path) -> None:
    path = str(tmp_path / "lc.duckdb")
    cfg = lifecycle_demo_config(
        generate_lifecycle_data(path, users=4_000, seed=5, bug_variant="treatment"), path
    )
    bq = BigQueryOverDuckDB(path)
    assert_same(explore_experiment(cfg, bq).model_dump(), explore_experiment(cfg).model_dump())
    assert_bigquery_timestamps(bq.seen)
    bq.seen.clear()
    now = datetime.now(UTC)
    assert_same(check_tracking(cfg, bq, now=now).model_dump(), check_tracking(cfg, now=now).model_dump())
    assert_bigquery_timestamps(bq.seen)


def test_rollout_check_in_bigquery_sql(tmp_path: Path) -> None:
    path = str(tmp_path / "ro.duckdb")
    truth = generate_rollout_data(path, seed=22, conversion_lift=-0.30)
    cfg = rollout_demo_config(truth, path)
    now = truth.start + timedelta(hours=62)
    bq = BigQueryOverDuckDB(path)
    ours, theirs = rollout_check(cfg, 3, bq, now), rollout_check(cfg, 3, now=now)
    assert ours.decision == theirs.decision == "roll back"
    assert_same(ours.model_dump(exclude={"narrative"}), theirs.model_dump(exclude={"narrative"}))
    assert_bigquery_timestamps(bq.seen)
