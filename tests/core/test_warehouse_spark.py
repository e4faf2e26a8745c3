"""The generated Spark SQL on a real local Spark (pyspark, a JVM): the sufficient statistics and the
report equal DuckDB's on the sample experiment (issue 13: "the experiment query executed on a
distributed engine"). The other dialects keep their snapshot and read-back tests.

Needs Java (Debian's ``default-jre-headless``; scripts/test-all.sh installs it where it can) and
``pyspark`` (the ``spark`` extra; scripts/test-all.sh installs the core suite with it). Missing either is a failure that says so, not a skip.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from dataeng_agents.core.experiment import ExperimentConfig, analyze_experiment, build_experiment_query
from dataeng_agents.core.experiment.aggregates import parse_rows
from dataeng_agents.core.warehouse import DuckDBWarehouse
from dataeng_agents.core.warehouse.runners import SparkWarehouse
from test_experiment_support import demo_config, sample

# the sample's tables (test_experiment_support.sample)
SAMPLE_TABLES = ("users", "exposures", "orders", "sessions")


@pytest.fixture(scope="module")
def spark_and_sample(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str]]:
    if shutil.which("java") is None:
        pytest.fail(
            "no java on PATH: install Debian's default-jre-headless (scripts/test-all.sh does)", pytrace=False
        )
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        pytest.fail("pyspark is not installed: pip install -e .[dev,spark]", pytrace=False)
    import duckdb

    root = tmp_path_factory.mktemp("spark")
    s = sample(root, users=4000, seed=11)
    con = duckdb.connect(s.path, read_only=True)
    for table in SAMPLE_TABLES:
        con.execute(f"COPY {table} TO '{root / table}.parquet' (FORMAT parquet)")
    con.close()
    spark = (
        SparkSession.builder.master("local[1]")
        .appName("dataeng-tests")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.driver.memory", "512m")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    for table in SAMPLE_TABLES:
        spark.read.parquet(str(root / f"{table}.parquet")).createOrReplaceTempView(table)
    try:
        yield spark, s.path
    finally:
        spark.stop()


def _same(a: Any, b: Any, path: str = "") -> None:
    if isinstance(a, dict):
        assert set(a) == set(b), f"{path}: {set(a) ^ set(b)}"
        for k in a:
            _same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, float) or isinstance(b, float):
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9), f"{path}: {a} != {b}"
    else:
        assert a == b, path


def test_spark_sql_sufficient_statistics_equal_duckdb(spark_and_sample: tuple[Any, str]) -> None:
    spark, path = spark_and_sample
    cfg = ExperimentConfig.load(demo_config())
    stats: dict[str, dict[str, Any]] = {}
    for name, wh in (("duckdb", DuckDBWarehouse(path)), ("spark", SparkWarehouse(spark))):
        query = build_experiment_query(cfg, wh.dialect, read_dialect=cfg.dialect or "duckdb")
        agg = parse_rows(query, wh.query(query.sql()))
        stats[name] = {"units": agg.overall.units, "stats": agg.overall.stats, "days": len(agg.by_day)}
    assert stats["spark"]["units"] and sum(stats["spark"]["units"].values()) > 3000
    _same(stats["spark"], stats["duckdb"])


def test_spark_report_equals_duckdb_report(spark_and_sample: tuple[Any, str]) -> None:
    spark, path = spark_and_sample
    duck = analyze_experiment(demo_config(), DuckDBWarehouse(path))
    got = analyze_experiment(demo_config(), SparkWarehouse(spark))
    assert got.dialect == "spark" and got.total_units == duck.total_units
    assert got.decision == duck.decision
    for a, b in zip(got.results, duck.results, strict=True):
        assert (a.metric, a.variant, a.error, a.significant) == (b.metric, b.variant, b.error, b.significant)
        for field in ("estimate", "std_error", "p_value"):
            x, y = getattr(a, field), getattr(b, field)
            assert (x is None) == (y is None) and (
                x is None or math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12)
            ), (a.metric, a.variant, field, x, y)


def test_a_failing_spark_query_is_a_warehouse_error(spark_and_sample: tuple[Any, str]) -> None:
    from dataeng_agents.core.errors import WarehouseError

    spark, _ = spark_and_sample
    with pytest.raises(WarehouseError, match="spark"):
        SparkWarehouse(spark).query("SELECT * FROM no_such_table")
    assert SparkWarehouse(spark).query("SELECT 1 AS one") == [{"one": 1}]
