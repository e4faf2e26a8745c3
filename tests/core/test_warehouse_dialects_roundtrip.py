"""The experiment query emitted for every supported dialect means what the DuckDB one means.

No Snowflake, BigQuery, Redshift or Databricks answers here, so each dialect's SQL is read back
by sqlglot into DuckDB's and run on the sample experiment: a dialect whose SQL changed the
computation (an approximate percentile, a timestamp type that does not compare) gives other
numbers than DuckDB's own query. The snapshot tests pin the text; this pins the meaning.
"""

from __future__ import annotations

import math

import pytest
import sqlglot
from dataeng_agents.core.experiment import analyze_experiment
from dataeng_agents.core.report import ExperimentReport
from dataeng_agents.core.warehouse import DuckDBWarehouse
from dataeng_agents.core.warehouse.runners import Row
from test_experiment_support import demo_config, sample


class DialectOverDuckDB:
    """A warehouse asked in ``dialect`` and answered by DuckDB."""

    def __init__(self, dialect: str, path: str) -> None:
        self.dialect = dialect
        self.duck = DuckDBWarehouse(path)
        self.seen: list[str] = []

    def query(self, sql: str) -> list[Row]:
        self.seen.append(sql)
        return self.duck.query(sqlglot.transpile(sql, read=self.dialect, write="duckdb")[0])


@pytest.fixture(scope="module")
def duckdb_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, ExperimentReport]:
    s = sample(tmp_path_factory.mktemp("roundtrip"), users=20_000, seed=7)
    return s.path, analyze_experiment(demo_config(), DuckDBWarehouse(s.path))


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


@pytest.mark.parametrize("dialect", ["postgres", "snowflake", "bigquery", "redshift", "databricks", "spark"])
def test_dialect_sql_computes_what_duckdb_computes(
    dialect: str, duckdb_report: tuple[str, ExperimentReport]
) -> None:
    path, expected = duckdb_report
    warehouse = DialectOverDuckDB(dialect, path)
    got = analyze_experiment(demo_config(), warehouse)
    assert warehouse.seen, "the analysis asked the warehouse nothing"
    assert got.total_units == expected.total_units
    assert len(got.results) == len(expected.results)
    for a, b in zip(got.results, expected.results, strict=True):
        assert (a.metric, a.variant) == (b.metric, b.variant)
        assert _close(a.estimate, b.estimate), (dialect, a.metric, a.variant, a.estimate, b.estimate)
        assert _close(a.std_error, b.std_error), (dialect, a.metric, a.variant)
        assert _close(a.p_value, b.p_value), (dialect, a.metric, a.variant)
    assert got.decision.verdict == expected.decision.verdict
