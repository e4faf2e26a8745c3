"""The experiment query: user SQL is parsed (never pasted), one SELECT only, pinned per dialect."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import duckdb
import pytest
import sqlglot
from dataeng_agents.core.errors import ConfigError, InputError
from dataeng_agents.core.experiment import ExperimentConfig, analyze_experiment, build_experiment_query
from dataeng_agents.core.warehouse import DIALECTS, DuckDBWarehouse
from dataeng_agents.core.warehouse.sql import parse_scalar, parse_select
from test_experiment_support import demo_config, sample

SNAPSHOTS = Path(__file__).parent / "snapshots"
UPDATE = os.environ.get("DATAENG_UPDATE_SNAPSHOTS") == "1"


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT unit_id, ts FROM orders WHERE status = 'paid'",
        "WITH x AS (SELECT * FROM orders) SELECT * FROM x",
        "SELECT a FROM t UNION ALL SELECT a FROM u",
        "select unit_id, ts from orders -- trailing comment",
    ],
)
def test_single_select_is_accepted(sql: str) -> None:
    node = parse_select(sql, "postgres", "metrics[0].source.sql")
    assert "--" not in node.sql() and "/*" not in node.sql()  # comments are dropped


@pytest.mark.parametrize(
    ("sql", "fragment"),
    [
        ("SELECT 1; DROP TABLE users", "2 statements"),
        ("DELETE FROM users", "got DELETE"),
        ("INSERT INTO users SELECT * FROM orders", "got INSERT"),
        ("UPDATE users SET country = 'x'", "got UPDATE"),
        ("CREATE TABLE x AS SELECT 1", "got CREATE"),
        ("DROP TABLE users", "got DROP"),
        ("SELECT * INTO copy_of_users FROM users", "read-only"),
        ("WITH d AS (DELETE FROM users RETURNING *) SELECT * FROM d", "read-only"),
        ("", "0 statements"),
        ("SELEC unit_id FROM t", "does not parse"),
    ],
)
def test_non_single_select_is_rejected(sql: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_select(sql, "postgres", "sources.orders.sql")
    assert info.value.field == "sources.orders.sql"
    assert fragment in info.value.message, info.value.message


@pytest.mark.parametrize(
    "expr",
    [
        "revenue); DROP TABLE users; --",
        "(SELECT max(revenue) FROM orders)",
        "*",
        "revenue FROM users",
        "DROP TABLE users",
    ],
)
def test_injected_expressions_are_rejected(expr: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_scalar(expr, "duckdb", "metrics[1].value")
    assert info.value.field == "metrics[1].value"


def test_expression_comments_are_dropped() -> None:
    # a comment cannot smuggle a statement: closing it early leaves unparseable text
    with pytest.raises(ConfigError):
        parse_scalar("revenue /* */ DROP TABLE users */ * 2", "duckdb", "v")
    assert parse_scalar("amount /* why */ * 2", "duckdb", "v").sql() == "amount * 2"
    assert parse_scalar("amount -- x\n * 2", "duckdb", "v").sql() == "amount * 2"


def test_injection_through_config_fails_cleanly_and_harms_nothing(tmp_path: Path) -> None:
    s = sample(tmp_path, users=3000, seed=3)
    wh = DuckDBWarehouse(s.path)
    raw = demo_config()
    raw["metrics"][1]["value"] = "revenue); DROP TABLE users; --"
    with pytest.raises(ConfigError) as info:
        analyze_experiment(raw, wh)
    assert info.value.field == "metrics[1].value"
    # variant names are string literals: quotes in them are escaped, not executed
    raw = demo_config()
    raw["variants"][2]["name"] = "x'); DROP TABLE users; --"
    with pytest.raises(InputError) as err:
        analyze_experiment(raw, wh)
    assert err.value.field == "variants[2]" and "no exposed units" in err.value.message
    con = duckdb.connect(s.path, read_only=True)
    assert con.execute("SELECT count(*) FROM users").fetchone() == (3000,)
    con.close()


def test_sql_source_and_expression_dimension_run(tmp_path: Path) -> None:
    s = sample(tmp_path, users=3000, seed=3)
    raw = demo_config()
    raw["sources"]["orders"] = {
        "sql": "SELECT unit_id, ordered_at, revenue FROM orders WHERE revenue > 0 -- paid only",
        "unit": "unit_id",
        "timestamp": "ordered_at",
    }
    raw["dimensions"] = [{"name": "segment", "column": "device || '/' || country"}]
    report = analyze_experiment(raw, DuckDBWarehouse(s.path))
    assert "paid only" not in report.sql
    levels = {d.level for d in report.dimensions}
    assert "mobile/US" in levels and all("/" in lvl for lvl in levels)


def _snapshot_config() -> ExperimentConfig:
    raw = demo_config()
    raw["sources"]["refunds"] = {
        "sql": "SELECT unit_id, refunded_at, amount FROM refunds WHERE amount > 0",
        "unit": "unit_id",
        "timestamp": "refunded_at",
    }
    raw["metrics"].append(
        {
            "name": "refund_amount",
            "kind": "mean",
            "source": "refunds",
            "value": "amount",
            "window": "14d",
            "capping": {"value": 500},
            "inverse": True,
            "role": "guardrail",
        }
    )
    return ExperimentConfig.load(raw)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_dialect_sql_snapshot(dialect: str) -> None:
    """Pins the SQL of every dialect. Regenerate: DATAENG_UPDATE_SNAPSHOTS=1 pytest tests/core/test_warehouse_sql.py"""
    query = build_experiment_query(
        _snapshot_config(),
        dialect,
        data_interval=(datetime(2024, 3, 2), datetime(2024, 3, 10, 12, 30)),
        read_dialect="duckdb",
    )
    sql = query.sql() + "\n"
    # the emitted SQL is valid in its own dialect and is one SELECT
    parsed = sqlglot.parse(sql, read=dialect)
    assert len(parsed) == 1 and isinstance(parsed[0], sqlglot.exp.Select)
    assert "GROUPING SETS" in sql and "refunds" in sql
    path = SNAPSHOTS / f"experiment_query.{dialect}.sql"
    if UPDATE or not path.exists():
        if not UPDATE:
            pytest.fail(f"missing snapshot {path.name}: run with DATAENG_UPDATE_SNAPSHOTS=1 to create it")
        path.write_text(sql, encoding="utf-8")
    assert sql == path.read_text(encoding="utf-8"), (
        f"{dialect} SQL changed; review and regenerate the snapshot"
    )


def test_dialect_specific_constructs() -> None:
    cfg = _snapshot_config()
    sqls = {d: build_experiment_query(cfg, d).sql() for d in DIALECTS}
    assert "QUANTILE_CONT" in sqls["duckdb"]
    assert "PERCENTILE_CONT(0.99) WITHIN GROUP" in sqls["postgres"]
    assert "PERCENTILE_CONT(v2, 0.99) OVER ()" in sqls["bigquery"] and "FLOAT64" in sqls["bigquery"]
    for d in ("databricks", "spark"):
        assert "PERCENTILE_CONT(0.99) WITHIN GROUP" in sqls[d], d
    for d, sql in sqls.items():
        assert "APPROX" not in sql.upper(), d  # a cap must not depend on the warehouse
    assert "DOUBLE PRECISION" in sqls["postgres"]
    for d, sql in sqls.items():
        assert sql.count("FROM exposures") == 1, d  # one scan of the exposures
        assert sql.count("FROM orders") == 1, d  # metrics sharing a source share its scan


def test_file_sources_need_duckdb(tmp_path: Path) -> None:
    raw = demo_config()
    raw["assignment"] = {
        "file": "exposures.parquet",
        "unit": "unit_id",
        "variant": "variant",
        "timestamp": "exposed_at",
    }
    cfg = ExperimentConfig.load(raw)
    sql = build_experiment_query(cfg, "duckdb").sql()
    assert "READ_PARQUET('exposures.parquet')" in sql
    with pytest.raises(ConfigError) as info:
        build_experiment_query(cfg, "postgres")
    assert info.value.field == "assignment.file"


def test_parquet_and_csv_files_are_read(tmp_path: Path) -> None:
    s = sample(tmp_path, users=3000, seed=3)
    con = duckdb.connect(s.path, read_only=True)
    con.execute(f"COPY exposures TO '{tmp_path / 'exposures.parquet'}' (FORMAT parquet)")
    con.execute(f"COPY orders TO '{tmp_path / 'orders.csv'}' (HEADER)")
    con.close()
    raw = demo_config(base_dir=str(tmp_path))
    raw["assignment"] = {
        "file": "exposures.parquet",
        "unit": "unit_id",
        "variant": "variant",
        "timestamp": "exposed_at",
    }
    raw["sources"]["orders"] = {"file": "orders.csv", "unit": "unit_id", "timestamp": "ordered_at"}
    from_files = analyze_experiment(raw, DuckDBWarehouse(s.path))
    from_tables = analyze_experiment(demo_config(), DuckDBWarehouse(s.path))
    a = from_files.result("revenue", "one_click")
    b = from_tables.result("revenue", "one_click")
    assert a.estimate == pytest.approx(b.estimate, rel=1e-9)
    assert [v.units for v in from_files.variants] == [v.units for v in from_tables.variants]
