"""Rough monthly cost of a design, per warehouse product, with every price and rate stated.

Each item carries the formula it was computed with; the prices below are list prices (US regions,
2025) and are assumptions the design prints, not quotes. Volumes are per source: a sink is charged
for the sources that feed it, a stream for its own event rate.
"""

from __future__ import annotations

import math
from typing import Literal

from dataeng_agents.core.pipeline_spec import PipelineSpec, Source, Warehouse
from pydantic import BaseModel, ConfigDict

Architecture = Literal["batch_elt", "micro_batch", "lambda", "kappa", "lakehouse"]

HOURS_PER_MONTH = 730.0
DAYS_PER_MONTH = 30.0
COLUMNAR_COMPRESSION = 4.0
OBJECT_STORAGE_USD_PER_GB_MONTH = {"aws": 0.023, "gcp": 0.020, "azure": 0.018}
ORCHESTRATOR_USD_PER_MONTH = {"airflow": 360.0, "prefect": 100.0}
#: a day's data a single compute unit (Snowflake XS, 1 RPU x 8, 4-DBU cluster) transforms per hour
GB_PER_COMPUTE_HOUR = 25.0
#: the busiest second is this many times the daily average when no peak rate is declared
PEAK_TO_AVERAGE = 3.0

BIGQUERY_STORAGE_WRITE_USD_PER_GB = 0.025
BIGQUERY_STORAGE_WRITE_FREE_GB_MONTH = 2048.0
BIGQUERY_ON_DEMAND_USD_PER_TIB = 6.25
BIGQUERY_SLOT_USD_PER_HOUR = 0.04  # Standard edition, pay as you go
BIGQUERY_ACTIVE_STORAGE_USD_PER_GB_MONTH = 0.02
BIGQUERY_LONG_TERM_STORAGE_USD_PER_GB_MONTH = 0.01
SNOWFLAKE_CREDITS_PER_HOUR = {"XS": 1, "S": 2, "M": 4, "L": 8, "XL": 16, "2XL": 32, "3XL": 64, "4XL": 128}
SNOWFLAKE_STORAGE_USD_PER_GB_MONTH = 0.023
SNOWFLAKE_MIN_BILLED_MINUTES = 1.0  # every resume bills at least 60 s
SNOWFLAKE_AUTO_SUSPEND_MINUTES = 1.0  # idle time billed before the warehouse suspends
SNOWPIPE_STREAMING_CREDITS_PER_GB = 0.0037
DATABRICKS_USD_PER_DBU = 0.15  # Jobs Compute, premium tier
DATABRICKS_VM_USD_PER_DBU_HOUR = 0.20  # cloud VMs under one DBU-hour of a general-purpose cluster
REDSHIFT_USD_PER_RPU_HOUR = 0.375
REDSHIFT_MIN_BILLED_MINUTES = 1.0
REDSHIFT_STORAGE_USD_PER_GB_MONTH = 0.024
POSTGRES_INSTANCE_USD_PER_HOUR = 0.17  # 2 vCPU / 8 GB managed instance
POSTGRES_STORAGE_USD_PER_GB_MONTH = 0.115
KAFKA_BROKER_USD_PER_HOUR = 0.21
KAFKA_BROKERS = 3
KAFKA_REPLICATION = 3
KAFKA_DISK_USD_PER_GB_MONTH = 0.10
STREAM_WORKER_USD_PER_HOUR = 0.25
EVENTS_PER_SECOND_PER_WORKER = 5000.0
STREAM_KINDS = {"event_stream", "cdc"}


class CostItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    name: str
    usd_per_month: float
    formula: str


class CostEstimate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    warehouse: str
    items: list[CostItem]
    total_usd_per_month: float
    assumptions: list[str]


def default_warehouse(spec: PipelineSpec, arch: Architecture) -> tuple[Warehouse, str | None]:
    """The spec's warehouse, or the one assumed for its cloud/architecture with the assumption stated."""
    if spec.warehouse is not None:
        return spec.warehouse, None
    if arch == "lakehouse":
        product = "databricks"
    else:
        product = {"gcp": "bigquery", "aws": "redshift", "azure": "snowflake"}[spec.cloud]
    return Warehouse(product=product), (
        f"the spec names no warehouse: {product} is assumed for {spec.cloud} / {arch} (set `warehouse:`)"
    )


def source_events_per_second(src: Source) -> float:
    """Peak events/s of one source: declared, else its own daily volume / record size x peak factor."""
    if src.events_per_second_peak is not None:
        return src.events_per_second_peak
    return src.volume_gb_per_day * 1e9 / src.avg_record_bytes / 86400 * PEAK_TO_AVERAGE


def runs_per_day(schedule_minutes: int) -> float:
    return 1440.0 / max(1, schedule_minutes)


def estimate_cost(spec: PipelineSpec, arch: Architecture, *, schedule_minutes: int = 1440) -> CostEstimate:
    """Monthly cost items of ``spec`` built as ``arch`` on its warehouse product."""
    wh, assumed = default_warehouse(spec, arch)
    product = wh.product
    gb = spec.total_gb_per_day
    retention = max(spec.reprocessing_horizon_days, 30.0)
    streams = [s for s in spec.sources if s.kind in STREAM_KINDS]
    streaming = arch in {"kappa", "lambda"} and bool(streams)
    batch = arch != "kappa"
    runs = runs_per_day(schedule_minutes) if batch else 0.0
    gb_per_run = gb / runs if runs else 0.0
    items: list[CostItem] = []
    notes: list[str] = [assumed] if assumed else []
    obj_price = OBJECT_STORAGE_USD_PER_GB_MONTH[spec.cloud]

    # raw landing zone: every architecture keeps 30 days of raw data for replays
    if spec.staging:
        raw = gb * 30.0
        items.append(
            CostItem(
                id="cost.staging",
                name="raw landing storage (30 days)",
                usd_per_month=raw * obj_price,
                formula=f"{gb:g} GB/day x 30 days x ${obj_price}/GB-month",
            )
        )

    # table storage, priced by the product that stores the tables
    if product in {"databricks", "duckdb"} or arch == "lakehouse":
        stored = gb * retention / COLUMNAR_COMPRESSION
        items.append(
            CostItem(
                id="cost.storage",
                name="table storage (object storage, Parquet/Iceberg/Delta)",
                usd_per_month=stored * obj_price,
                formula=f"{gb:g} GB/day x {retention:g} days / {COLUMNAR_COMPRESSION:g} x ${obj_price}/GB-month",
            )
        )
    elif product == "bigquery":
        active_days = min(retention, 90.0)
        long_days = retention - active_days
        usd = (
            gb * active_days * BIGQUERY_ACTIVE_STORAGE_USD_PER_GB_MONTH
            + gb * long_days * BIGQUERY_LONG_TERM_STORAGE_USD_PER_GB_MONTH
        )
        items.append(
            CostItem(
                id="cost.storage",
                name="BigQuery storage (logical bytes)",
                usd_per_month=usd,
                formula=f"{gb:g} GB/day x {active_days:g} days x ${BIGQUERY_ACTIVE_STORAGE_USD_PER_GB_MONTH} "
                f"+ {gb:g} x {long_days:g} days x ${BIGQUERY_LONG_TERM_STORAGE_USD_PER_GB_MONTH} (long-term)",
            )
        )
    else:
        price, compression = {
            "snowflake": (SNOWFLAKE_STORAGE_USD_PER_GB_MONTH, COLUMNAR_COMPRESSION),
            "redshift": (REDSHIFT_STORAGE_USD_PER_GB_MONTH, COLUMNAR_COMPRESSION),
            "postgres": (POSTGRES_STORAGE_USD_PER_GB_MONTH, 1.0),
        }[product]
        stored = gb * retention / compression
        items.append(
            CostItem(
                id="cost.storage",
                name=f"{product} storage",
                usd_per_month=stored * price,
                formula=f"{gb:g} GB/day x {retention:g} days / {compression:g} x ${price}/GB-month",
            )
        )

    # ingestion into the warehouse
    stream_gb_month = sum(s.volume_gb_per_day for s in streams) * DAYS_PER_MONTH
    if product == "bigquery" and streams and arch in {"kappa", "lambda", "micro_batch"}:
        billable = max(0.0, stream_gb_month - BIGQUERY_STORAGE_WRITE_FREE_GB_MONTH)
        items.append(
            CostItem(
                id="cost.ingest",
                name="BigQuery Storage Write API (streams)",
                usd_per_month=billable * BIGQUERY_STORAGE_WRITE_USD_PER_GB,
                formula=f"max(0, {stream_gb_month:g} GB/month - {BIGQUERY_STORAGE_WRITE_FREE_GB_MONTH:g} free)"
                f" x ${BIGQUERY_STORAGE_WRITE_USD_PER_GB}/GB",
            )
        )
        notes.append(
            "BigQuery batch load jobs are free; streams use the Storage Write API (2 TiB/month free)"
        )
    elif product == "snowflake" and streaming:
        credits = stream_gb_month * SNOWPIPE_STREAMING_CREDITS_PER_GB
        items.append(
            CostItem(
                id="cost.ingest",
                name="Snowpipe Streaming",
                usd_per_month=credits * wh.usd_per_credit,
                formula=f"{stream_gb_month:g} GB/month x {SNOWPIPE_STREAMING_CREDITS_PER_GB} credits/GB x "
                f"${wh.usd_per_credit}/credit",
            )
        )

    # transformation / query compute
    if batch:
        factor = 1.3 if arch == "micro_batch" else 1.0  # more, smaller runs carry fixed overhead
        if product == "bigquery":
            pass  # priced below: consumers query BigQuery whatever the architecture
        elif product == "snowflake":
            credits_h = SNOWFLAKE_CREDITS_PER_HOUR[wh.snowflake_size]
            minutes = max(
                SNOWFLAKE_MIN_BILLED_MINUTES, gb_per_run / (GB_PER_COMPUTE_HOUR * credits_h) * 60 * factor
            )
            billed = minutes + SNOWFLAKE_AUTO_SUSPEND_MINUTES
            usd = runs * DAYS_PER_MONTH * billed / 60 * credits_h * wh.usd_per_credit
            items.append(
                CostItem(
                    id="cost.compute",
                    name=f"Snowflake warehouse {wh.snowflake_size} ({credits_h} credits/h)",
                    usd_per_month=usd,
                    formula=f"{runs:.4g} runs/day x 30 x ({minutes:.1f} min run + {SNOWFLAKE_AUTO_SUSPEND_MINUTES:g} "
                    f"min auto-suspend) / 60 x {credits_h} credits/h x ${wh.usd_per_credit}/credit",
                )
            )
        elif product == "databricks" or arch == "lakehouse":
            dbu = (
                wh.databricks_dbu_per_hour
                if product == "databricks"
                else Warehouse(product="databricks").databricks_dbu_per_hour
            )
            rate = dbu * (DATABRICKS_USD_PER_DBU + DATABRICKS_VM_USD_PER_DBU_HOUR)
            minutes = gb_per_run / (GB_PER_COMPUTE_HOUR * dbu / 4) * 60 * factor
            startup = wh.cluster_startup_minutes if product == "databricks" else 5.0
            items.append(
                CostItem(
                    id="cost.compute",
                    name=f"Spark job cluster ({dbu:g} DBU/h)",
                    usd_per_month=runs * DAYS_PER_MONTH * minutes / 60 * rate,
                    formula=f"{runs:.4g} runs/day x 30 x {minutes:.1f} min / 60 x {dbu:g} DBU/h x "
                    f"(${DATABRICKS_USD_PER_DBU}/DBU + ${DATABRICKS_VM_USD_PER_DBU_HOUR} VM)",
                )
            )
            items.append(
                CostItem(
                    id="cost.cluster_startup",
                    name="cluster start-up per run",
                    usd_per_month=runs * DAYS_PER_MONTH * startup / 60 * rate,
                    formula=f"{runs:.4g} runs/day x 30 x {startup:g} min start-up / 60 x ${rate:.2f}/h",
                )
            )
        elif product == "redshift":
            minutes = max(
                REDSHIFT_MIN_BILLED_MINUTES,
                gb_per_run / (GB_PER_COMPUTE_HOUR * wh.redshift_rpu / 8) * 60 * factor,
            )
            items.append(
                CostItem(
                    id="cost.compute",
                    name=f"Redshift Serverless ({wh.redshift_rpu} RPU)",
                    usd_per_month=runs
                    * DAYS_PER_MONTH
                    * minutes
                    / 60
                    * wh.redshift_rpu
                    * REDSHIFT_USD_PER_RPU_HOUR,
                    formula=f"{runs:.4g} runs/day x 30 x {minutes:.1f} min / 60 x {wh.redshift_rpu} RPU x "
                    f"${REDSHIFT_USD_PER_RPU_HOUR}/RPU-h",
                )
            )
        elif product == "postgres":
            items.append(
                CostItem(
                    id="cost.compute",
                    name="PostgreSQL instance (always on)",
                    usd_per_month=POSTGRES_INSTANCE_USD_PER_HOUR * HOURS_PER_MONTH,
                    formula=f"${POSTGRES_INSTANCE_USD_PER_HOUR}/h x {HOURS_PER_MONTH:g} h",
                )
            )
        else:  # duckdb runs inside the orchestrator's worker
            notes.append("DuckDB runs inside the orchestrator's worker: no separate warehouse compute")

    if product == "bigquery":
        # each batch run reads its new rows and the MERGE target's slice; consumers scan on top of that
        transform_gb = gb * 2 * DAYS_PER_MONTH if batch else 0.0
        query_gb = (
            wh.query_gb_scanned_per_day if wh.query_gb_scanned_per_day is not None else gb * 10
        ) * DAYS_PER_MONTH
        if wh.bigquery_pricing == "on_demand":
            tib = (transform_gb + query_gb) / 1024
            items.append(
                CostItem(
                    id="cost.compute",
                    name="BigQuery on-demand queries (transform + consumers)",
                    usd_per_month=tib * BIGQUERY_ON_DEMAND_USD_PER_TIB,
                    formula=f"({transform_gb:g} + {query_gb:g}) GB/month / 1024 x "
                    f"${BIGQUERY_ON_DEMAND_USD_PER_TIB}/TiB scanned",
                )
            )
        else:
            items.append(
                CostItem(
                    id="cost.compute",
                    name=f"BigQuery slots ({wh.bigquery_slots} baseline)",
                    usd_per_month=wh.bigquery_slots * BIGQUERY_SLOT_USD_PER_HOUR * HOURS_PER_MONTH,
                    formula=f"{wh.bigquery_slots} slots x ${BIGQUERY_SLOT_USD_PER_HOUR}/slot-hour x "
                    f"{HOURS_PER_MONTH:g} h",
                )
            )

    # streams: brokers, their disks and the always-on processing
    if streaming:
        eps = sum(source_events_per_second(s) for s in streams)
        workers = max(2, math.ceil(eps / EVENTS_PER_SECOND_PER_WORKER))
        if spec.stream_platform in (None, "kafka"):
            items.append(
                CostItem(
                    id="cost.stream_brokers",
                    name=f"Kafka brokers ({KAFKA_BROKERS}, always on)",
                    usd_per_month=KAFKA_BROKERS * KAFKA_BROKER_USD_PER_HOUR * HOURS_PER_MONTH,
                    formula=f"{KAFKA_BROKERS} x ${KAFKA_BROKER_USD_PER_HOUR}/h x {HOURS_PER_MONTH:g} h",
                )
            )
            disk = (
                sum(
                    s.volume_gb_per_day * (s.retention_days if s.retention_days is not None else 7.0)
                    for s in streams
                    if s.kind == "event_stream"
                )
                * KAFKA_REPLICATION
            )
            if disk:
                items.append(
                    CostItem(
                        id="cost.stream_storage",
                        name="Kafka log storage (replicated)",
                        usd_per_month=disk * KAFKA_DISK_USD_PER_GB_MONTH,
                        formula=f"sum(GB/day x retention days) x {KAFKA_REPLICATION} replicas = {disk:g} GB x "
                        f"${KAFKA_DISK_USD_PER_GB_MONTH}/GB-month",
                    )
                )
        items.append(
            CostItem(
                id="cost.stream_workers",
                name=f"stream processing ({workers} workers, always on)",
                usd_per_month=workers * STREAM_WORKER_USD_PER_HOUR * HOURS_PER_MONTH,
                formula=f"ceil({eps:,.0f} events/s / {EVENTS_PER_SECOND_PER_WORKER:g}) workers x "
                f"${STREAM_WORKER_USD_PER_HOUR}/h x {HOURS_PER_MONTH:g} h",
            )
        )
        rates = ", ".join(f"{s.name} {source_events_per_second(s):,.0f}/s" for s in streams)
        notes.append(
            f"peak event rates per source ({rates}): declared, else the source's own GB/day / "
            f"{PEAK_TO_AVERAGE:g}x peak-to-average over its record size"
        )

    orch = ORCHESTRATOR_USD_PER_MONTH[spec.orchestrator]
    items.append(
        CostItem(
            id="cost.orchestrator",
            name=f"managed {spec.orchestrator}",
            usd_per_month=orch,
            formula="small managed environment",
        )
    )
    notes += [
        f"warehouse: {product}; list prices, US region: " + _price_note(product, wh),
        f"tables keep max(reprocessing horizon, 30 days) = {retention:g} days; raw landing keeps 30 days at "
        f"${obj_price}/GB-month ({spec.cloud}); columnar compression {COLUMNAR_COMPRESSION:g}x (row-store PostgreSQL 1x)",
        f"{runs:.4g} batch runs/day of {gb_per_run:.2f} GB each; one compute unit transforms {GB_PER_COMPUTE_HOUR:g} GB/hour"
        if batch
        else "no scheduled batch layer (Kappa): the stream job writes the tables",
        f"orchestrator: managed {spec.orchestrator} at ${orch}/month; egress and BI licences are excluded",
    ]
    return CostEstimate(
        warehouse=product,
        items=items,
        total_usd_per_month=sum(i.usd_per_month for i in items),
        assumptions=notes,
    )


def _price_note(product: str, wh: Warehouse) -> str:
    if product == "bigquery":
        query = (
            "on-demand $6.25/TiB scanned, consumers scan "
            + (
                f"{wh.query_gb_scanned_per_day:g} GB/day"
                if wh.query_gb_scanned_per_day is not None
                else "10x the daily volume per day"
            )
            if wh.bigquery_pricing == "on_demand"
            else f"{wh.bigquery_slots} slots at $0.04/slot-hour"
        )
        return f"storage $0.02/GB-month active, $0.01 long-term; Storage Write API $0.025/GB; {query}"
    if product == "snowflake":
        return (
            f"{wh.snowflake_size} warehouse = {SNOWFLAKE_CREDITS_PER_HOUR[wh.snowflake_size]} credits/h at "
            f"${wh.usd_per_credit}/credit, 60 s minimum per resume + 60 s auto-suspend; storage $23/TB-month"
        )
    if product == "databricks":
        return (
            f"job cluster {wh.databricks_dbu_per_hour:g} DBU/h at ${DATABRICKS_USD_PER_DBU}/DBU + "
            f"${DATABRICKS_VM_USD_PER_DBU_HOUR}/DBU-h VMs; {wh.cluster_startup_minutes:g} min start-up billed per run"
        )
    if product == "redshift":
        return (
            f"Serverless {wh.redshift_rpu} RPU at ${REDSHIFT_USD_PER_RPU_HOUR}/RPU-h, 60 s minimum per query"
        )
    if product == "postgres":
        return f"managed instance ${POSTGRES_INSTANCE_USD_PER_HOUR}/h, storage ${POSTGRES_STORAGE_USD_PER_GB_MONTH}/GB-month"
    return "DuckDB: open source, storage on object storage"
