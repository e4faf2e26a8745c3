"""Analyses run read-only: user SQL (``sql:`` sources, ``value:`` expressions) cannot write (issue 13).

On PostgreSQL a sequence advanced by ``nextval`` stays advanced after a rollback, so "we roll back"
is not enough: the query runs in a READ ONLY transaction and the write fails.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from dataeng_agents.core.errors import WarehouseError
from dataeng_agents.core.warehouse import DbApiWarehouse, SqlAlchemyWarehouse, warehouse_from_url

pytestmark = pytest.mark.postgres


def _sequence_state(url: str, schema: str) -> tuple[int, bool]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(f'SELECT last_value, is_called FROM "{schema}".seq').fetchone()
    assert row is not None
    return int(row[0]), bool(row[1])


def _runners(url: str) -> list[tuple[str, Callable[[], Any]]]:
    import psycopg
    import sqlalchemy

    def factory() -> Any:
        return psycopg.connect(url)

    def autocommit_conn() -> Any:
        return psycopg.connect(url, autocommit=True)

    return [
        ("url", lambda: warehouse_from_url(url)),
        ("factory", lambda: DbApiWarehouse(factory, "postgres")),
        ("caller connection", lambda: DbApiWarehouse(factory(), "postgres")),
        ("caller autocommit connection", lambda: DbApiWarehouse(autocommit_conn(), "postgres")),
        ("sqlalchemy", lambda: SqlAlchemyWarehouse(
            sqlalchemy.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1)))),
    ]


def test_user_sql_cannot_write_through_any_postgres_runner(postgres_schema: tuple[str, str]) -> None:
    import psycopg

    url, schema = postgres_schema
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SEQUENCE "{schema}".seq')
        conn.execute(f'CREATE TABLE "{schema}".t (x int)')
    before = _sequence_state(url, schema)
    for name, make in _runners(url):
        wh = make()
        assert wh.query("SELECT 1 AS one") == [{"one": 1}], name  # reading works
        with pytest.raises(WarehouseError, match="read-only"):
            wh.query(f"SELECT nextval('\"{schema}\".seq') AS v FROM generate_series(1, 100)")
        with pytest.raises(WarehouseError, match="read-only"):
            wh.query(f'WITH w AS (INSERT INTO "{schema}".t VALUES (1) RETURNING x) SELECT count(*) AS n FROM w')
        assert wh.query("SELECT 2 AS two") == [{"two": 2}], name  # the connection is usable afterwards
    assert _sequence_state(url, schema) == before  # never advanced
    with psycopg.connect(url, autocommit=True) as conn:
        count = conn.execute(f'SELECT count(*) FROM "{schema}".t').fetchone()
    assert count == (0,)


def test_an_experiment_config_with_nextval_cannot_advance_a_sequence(
    tmp_path: Any, postgres_schema: tuple[str, str]
) -> None:
    # Issue 13: nextval('seq') in a `sql:` source advanced a sequence by 25,938 and stayed after rollback.
    import psycopg
    from dataeng_agents.core.experiment import analyze_experiment
    from test_experiment_support import demo_config, sample
    from warehouse_copy import copy_duckdb_to_postgres

    url, schema = postgres_schema
    s = sample(tmp_path, users=2000, seed=5)
    copy_duckdb_to_postgres(s.path, url, schema)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SEQUENCE "{schema}".seq')
    before = _sequence_state(url, schema)
    cfg = demo_config(schema)
    cfg["sources"]["orders"] = {
        "sql": f"SELECT unit_id, ordered_at, revenue, nextval('{schema}.seq') AS n FROM {schema}.orders",
        "unit": "unit_id", "timestamp": "ordered_at"}
    with pytest.raises(WarehouseError, match="read-only"):
        analyze_experiment(cfg, warehouse_from_url(url))
    assert _sequence_state(url, schema) == before
