"""Cost models per warehouse product, per-source volumes, partitions, watermarks, deletes."""

from __future__ import annotations

from typing import Any

import pytest
from dataeng_agents.core.design import design_pipeline, estimate_cost, load_spec
from dataeng_agents.core.design.cost import (
    BIGQUERY_ON_DEMAND_USD_PER_TIB,
    BIGQUERY_STORAGE_WRITE_FREE_GB_MONTH,
    BIGQUERY_STORAGE_WRITE_USD_PER_GB,
    DATABRICKS_USD_PER_DBU,
    DATABRICKS_VM_USD_PER_DBU_HOUR,
    KAFKA_BROKER_USD_PER_HOUR,
    SNOWFLAKE_CREDITS_PER_HOUR,
    source_events_per_second,
)
from dataeng_agents.core.errors import ConfigError


def spec(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "p",
        "sources": [
            {
                "name": "orders",
                "kind": "database",
                "volume_gb_per_day": 20,
                "change_pattern": "upsert",
                "primary_key": ["order_id"],
                "event_time_field": "updated_at",
            }
        ],
        "sinks": [
            {"name": "fct_orders", "kind": "warehouse", "upsert_key": ["order_id"], "write_mode": "merge"}
        ],
        "freshness_slo_minutes": 2880,
    }
    base.update(over)
    return base


def item(cost: Any, id_: str) -> Any:
    return next(i for i in cost.items if i.id == id_)


def test_snowflake_credits_scale_with_size_and_runtime() -> None:
    small = estimate_cost(
        load_spec(spec(warehouse={"product": "snowflake", "snowflake_size": "XS"})), "batch_elt"
    )
    large = estimate_cost(
        load_spec(spec(warehouse={"product": "snowflake", "snowflake_size": "L"})), "batch_elt"
    )
    # XS: 20 GB at 25 GB/h = 48 min + 1 min suspend, 1 credit/h, $3/credit, 30 runs
    assert item(small, "cost.compute").usd_per_month == pytest.approx(30 * 49 / 60 * 1 * 3.0)
    # L is 8x the credits but 1/8 of the runtime: only the fixed minute per run grows
    assert item(large, "cost.compute").usd_per_month == pytest.approx(
        30 * (6 + 1) / 60 * SNOWFLAKE_CREDITS_PER_HOUR["L"] * 3.0
    )
    hourly = estimate_cost(
        load_spec(spec(warehouse={"product": "snowflake", "snowflake_size": "XS"})),
        "batch_elt",
        schedule_minutes=60,
    )
    # 24 runs of 50 min total compute + 24 suspend minutes: more runs cost more (minimum billing)
    assert item(hourly, "cost.compute").usd_per_month > item(small, "cost.compute").usd_per_month
    assert small.warehouse == "snowflake" and any("credits/h" in a for a in small.assumptions)


def test_bigquery_streaming_storage_write_and_queries() -> None:
    stream = {
        "name": "clicks",
        "kind": "event_stream",
        "volume_gb_per_day": 100,
        "replayable": True,
        "retention_days": 7,
        "event_time_field": "ts",
    }
    sp = load_spec(
        spec(
            sources=[stream],
            freshness_slo_minutes=1,
            reprocessing_horizon_days=7,
            warehouse={"product": "bigquery", "query_gb_scanned_per_day": 512},
        )
    )
    cost = estimate_cost(sp, "kappa")
    ingest = item(cost, "cost.ingest")
    assert ingest.usd_per_month == pytest.approx(
        (3000 - BIGQUERY_STORAGE_WRITE_FREE_GB_MONTH) * BIGQUERY_STORAGE_WRITE_USD_PER_GB
    )
    # Kappa has no batch transform, but consumers still query BigQuery
    assert item(cost, "cost.compute").usd_per_month == pytest.approx(
        512 * 30 / 1024 * BIGQUERY_ON_DEMAND_USD_PER_TIB
    )
    slots = estimate_cost(
        load_spec(
            spec(warehouse={"product": "bigquery", "bigquery_pricing": "slots", "bigquery_slots": 200})
        ),
        "batch_elt",
    )
    assert item(slots, "cost.compute").usd_per_month == pytest.approx(200 * 0.04 * 730)
    small = estimate_cost(
        load_spec(
            spec(sources=[{**stream, "volume_gb_per_day": 10}], freshness_slo_minutes=1, warehouse="bigquery")
        ),
        "kappa",
    )
    assert item(small, "cost.ingest").usd_per_month == 0  # inside the free 2 TiB


def test_databricks_charges_cluster_start_up_per_run() -> None:
    wh = {"product": "databricks", "databricks_dbu_per_hour": 4, "cluster_startup_minutes": 6}
    daily = estimate_cost(load_spec(spec(warehouse=wh)), "batch_elt", schedule_minutes=1440)
    hourly = estimate_cost(load_spec(spec(warehouse=wh)), "batch_elt", schedule_minutes=60)
    rate = 4 * (DATABRICKS_USD_PER_DBU + DATABRICKS_VM_USD_PER_DBU_HOUR)
    assert item(daily, "cost.cluster_startup").usd_per_month == pytest.approx(30 * 6 / 60 * rate)
    assert item(hourly, "cost.cluster_startup").usd_per_month == pytest.approx(24 * 30 * 6 / 60 * rate)
    # the same data costs the same compute; only start-ups multiply with the run count
    assert item(hourly, "cost.compute").usd_per_month == pytest.approx(
        item(daily, "cost.compute").usd_per_month
    )


def test_redshift_postgres_duckdb_items() -> None:
    red = estimate_cost(load_spec(spec(warehouse={"product": "redshift", "redshift_rpu": 16})), "batch_elt")
    assert "16 RPU" in item(red, "cost.compute").name
    pg = estimate_cost(load_spec(spec(warehouse="postgres")), "batch_elt")
    assert item(pg, "cost.compute").usd_per_month == pytest.approx(0.17 * 730)
    duck = estimate_cost(load_spec(spec(warehouse="duckdb")), "batch_elt")
    assert not any(i.id == "cost.compute" for i in duck.items) and any(
        "DuckDB" in a for a in duck.assumptions
    )


def test_each_stream_is_charged_its_own_volume() -> None:
    # 20 GB/day from a database plus a 1 GB/day stream: the stream's event rate comes from its 1 GB, not 21
    stream = {
        "name": "clicks",
        "kind": "event_stream",
        "volume_gb_per_day": 1,
        "replayable": True,
        "retention_days": 30,
        "avg_record_bytes": 1000,
    }
    sp = load_spec(
        spec(
            sources=[spec()["sources"][0], stream],
            freshness_slo_minutes=5,
            sinks=[
                {"name": "a", "kind": "warehouse", "sources": ["orders"]},
                {"name": "b", "kind": "warehouse", "sources": ["clicks"]},
            ],
        )
    )
    assert source_events_per_second(sp.sources[1]) == pytest.approx(1e9 / 1000 / 86400 * 3)
    cost = estimate_cost(sp, "lambda")
    workers = item(cost, "cost.stream_workers")
    assert "35 events/s" in workers.formula and "21" not in workers.formula
    disk = item(cost, "cost.stream_storage")
    assert "= 90 GB" in disk.formula  # 1 GB/day x 30 days x 3 replicas
    assert item(cost, "cost.stream_brokers").usd_per_month == pytest.approx(
        3 * KAFKA_BROKER_USD_PER_HOUR * 730
    )
    design = design_pipeline(sp)
    assert "(fact, 1 GB/day)" in design.storage[1].choice and "20 GB/day" in design.storage[0].choice


def test_no_invented_partition_for_a_dimension() -> None:
    dim = design_pipeline(
        spec(sinks=[{"name": "dim_customers", "kind": "warehouse", "upsert_key": ["customer_id"]}])
    )
    assert "not partitioned" in dim.storage[0].choice and "event_date" not in dim.storage[0].choice
    events = spec(
        sources=[
            {
                "name": "ev",
                "kind": "event_stream",
                "volume_gb_per_day": 50,
                "replayable": True,
                "event_time_field": "occurred_at",
            }
        ],
        sinks=[{"name": "fct_events", "kind": "warehouse"}],
        freshness_slo_minutes=60,
    )
    assert "partitioned by date(occurred_at)" in design_pipeline(events).storage[0].choice
    declared = spec(sinks=[{"name": "x", "kind": "warehouse", "partition_by": ["order_month"]}])
    assert "partitioned by order_month" in design_pipeline(declared).storage[0].choice
    nothing = spec(
        sources=[{"name": "f", "kind": "files", "volume_gb_per_day": 50}],
        sinks=[{"name": "x", "kind": "warehouse"}],
    )
    d = design_pipeline(nothing)
    assert "not partitioned" in d.storage[0].choice and "no event_time_field" in d.storage[0].why


def test_watermark_is_the_declared_event_time_and_snapshots_handle_deletes() -> None:
    d = design_pipeline(spec(sources=[{**spec()["sources"][0], "event_time_field": "modified_ts"}]))
    assert "modified_ts" in d.ingestion[0].choice and "updated_at" not in d.ingestion[0].choice
    assert any("hard_deletes" in q for q in d.open_questions)
    snap = design_pipeline(
        spec(
            sources=[
                {
                    "name": "stores",
                    "kind": "database",
                    "volume_gb_per_day": 0.1,
                    "change_pattern": "snapshot",
                    "primary_key": ["store_id"],
                }
            ]
        )
    )
    assert (
        "snapshot" in snap.ingestion[0].choice
        and "updated_at" not in snap.ingestion[0].choice + snap.ingestion[0].why
    )
    assert "invalidate" in snap.deletes[0].choice
    hard = design_pipeline(spec(sources=[{**spec()["sources"][0], "hard_deletes": True}]))
    assert "reconciliation" in hard.deletes[0].choice
    cdc = design_pipeline(
        spec(
            sources=[
                {
                    "name": "acc",
                    "kind": "cdc",
                    "volume_gb_per_day": 1,
                    "change_pattern": "cdc",
                    "primary_key": ["id"],
                }
            ]
        )
    )
    assert "soft deletes" in cdc.deletes[0].choice


def test_design_names_the_product_or_states_the_assumption() -> None:
    named = design_pipeline(spec(warehouse="bigquery"))
    assert named.warehouse.choice == "bigquery" and named.cost.warehouse == "bigquery"
    assert "on **bigquery**" in named.to_markdown()
    assumed = design_pipeline(spec(cloud="gcp"))
    assert assumed.cost.warehouse == "bigquery" and "names no warehouse" in assumed.warehouse.why
    assert any("warehouse product" in q for q in assumed.open_questions)


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"warehouse": "oracle"}, "warehouse.product"),
        ({"warehouse": {"product": "snowflake", "snowflake_size": "XXS"}}, "warehouse.snowflake_size"),
        ({"sinks": [{"name": "a", "kind": "warehouse", "sources": ["nope"]}]}, "sinks[0].sources[0]"),
        (
            {"sinks": [{"name": "a", "kind": "warehouse"}, {"name": "a", "kind": "warehouse"}]},
            "sinks[1].name",
        ),
    ],
)
def test_new_fields_are_validated(patch: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_spec(spec(**patch))
    assert exc.value.field == field


@pytest.mark.parametrize("slo", [10, 14, 15, 22, 45, 90, 125, 300, 700, 1000, 2000, 2880, 10000])
def test_schedules_have_regular_intervals(slo: float) -> None:
    from dataeng_agents.core.design.design import schedule_for, schedule_minutes

    sched = schedule_for(load_spec(spec(freshness_slo_minutes=slo)), "batch_elt")
    minutes = schedule_minutes(sched)
    # cron */N is regular only when N divides the hour / the day; the run leaves half the SLO for itself
    assert (60 % minutes == 0) if minutes < 60 else (1440 % minutes == 0)
    assert minutes <= max(5, slo / 2) or sched == "@daily"
