"""The same generated experiment through DuckDB and a real PostgreSQL gives equal sufficient statistics."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from dataeng_agents.core.errors import WarehouseError
from dataeng_agents.core.experiment import (
    ExperimentConfig,
    analyze_experiment,
    build_experiment_query,
    design_experiment,
)
from dataeng_agents.core.experiment.aggregates import parse_rows
from dataeng_agents.core.warehouse import (
    DbApiWarehouse,
    DuckDBWarehouse,
    SqlAlchemyWarehouse,
    Warehouse,
    warehouse_from_url,
)
from test_experiment_support import demo_config, sample
from warehouse_copy import copy_duckdb_to_postgres

pytestmark = pytest.mark.postgres


def _assert_same(a: Any, b: Any, path: str = "") -> None:
    if isinstance(a, dict):
        assert set(a) == set(b), f"{path}: keys differ: {set(a) ^ set(b)}"
        for k in a:
            _assert_same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, int) and not isinstance(a, bool):
        assert a == b, path
    else:
        assert a == pytest.approx(b, rel=1e-9, abs=1e-9), path


@pytest.fixture
def pg_sample(tmp_path: Path, postgres_schema: tuple[str, str]) -> tuple[str, str, str]:
    url, schema = postgres_schema
    s = sample(tmp_path, users=4000, seed=11)
    copy_duckdb_to_postgres(s.path, url, schema)
    return s.path, url, schema


def test_duckdb_and_postgres_sufficient_statistics_are_equal(pg_sample: tuple[str, str, str]) -> None:
    path, url, schema = pg_sample
    import psycopg

    for interval in (None, (datetime(2024, 3, 3), datetime(2024, 3, 11, 6))):
        duck_q = build_experiment_query(
            ExperimentConfig.load(demo_config()), "duckdb", data_interval=interval
        )
        pg_q = build_experiment_query(
            ExperimentConfig.load(demo_config(schema)), "postgres", data_interval=interval
        )
        duck = parse_rows(duck_q, DuckDBWarehouse(path).query(duck_q.sql()))
        with psycopg.connect(url) as conn:
            pg = parse_rows(pg_q, DbApiWarehouse(conn, "postgres").query(pg_q.sql()))
        assert duck.total_units > 1000 and duck.excluded_units > 0
        assert len(duck.by_day) >= 8 and set(duck.by_dimension) == {"device", "country"}
        _assert_same(duck.to_dict(), pg.to_dict())


def test_every_postgres_runner_gives_the_duckdb_report(pg_sample: tuple[str, str, str]) -> None:
    path, url, schema = pg_sample
    import psycopg
    import sqlalchemy

    duck = analyze_experiment(demo_config(), DuckDBWarehouse(path))
    engine = sqlalchemy.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with psycopg.connect(url) as conn:
        runners: list[Warehouse] = [
            DbApiWarehouse(conn, "postgres"),
            DbApiWarehouse(lambda: psycopg.connect(url), "postgres"),
            SqlAlchemyWarehouse(engine),
            warehouse_from_url(url),
        ]
        for wh in runners:
            assert wh.dialect == "postgres"
            rep = analyze_experiment(demo_config(schema), wh)
            assert rep.decision == duck.decision
            for a, b in zip(duck.results, rep.results, strict=True):
                assert (a.id, a.significant, a.error) == (b.id, b.significant, b.error)
                if a.estimate is not None:  # None: "not enough data" (below min_conversions) in both
                    assert a.estimate == pytest.approx(b.estimate, rel=1e-9)
                    assert a.ci_lower == pytest.approx(b.ci_lower, rel=1e-9)
    engine.dispose()
    design_pg = design_experiment(demo_config(schema), warehouse_from_url(url))
    design_duck = design_experiment(demo_config(), DuckDBWarehouse(path))
    assert design_pg.per_variant == design_duck.per_variant
    assert design_pg.traffic_per_day == pytest.approx(design_duck.traffic_per_day)


def test_missing_table_is_a_clear_error_and_the_connection_survives(pg_sample: tuple[str, str, str]) -> None:
    _path, url, schema = pg_sample
    import psycopg

    raw = demo_config(schema)
    raw["sources"]["orders"]["table"] = f"{schema}.no_such_orders"
    with psycopg.connect(url) as conn:
        wh = DbApiWarehouse(conn, "postgres")
        with pytest.raises(WarehouseError) as info:
            analyze_experiment(raw, wh)
        assert "no_such_orders" in str(info.value) and "does not exist" in str(info.value)
        assert "\n" not in str(info.value)
        # the failed query was rolled back: the caller's connection is still usable
        assert analyze_experiment(demo_config(schema), wh).total_units > 0


def test_connection_refused_is_a_warehouse_error() -> None:
    with pytest.raises(WarehouseError) as info:
        analyze_experiment(demo_config(), warehouse_from_url("postgresql://nobody@127.0.0.1:1/none"))
    assert str(info.value).startswith("postgres: cannot connect")
