"""``design_pipeline``: from a spec to a recommended architecture, components, checks and a cost estimate."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from dataeng_agents.core.design.recommend import (
    LABELS,
    STREAM_KINDS,
    Architecture,
    ArchitectureScore,
    score_architectures,
)
from dataeng_agents.core.pipeline_spec import PipelineSpec, Sink, Source, load_spec
from pydantic import BaseModel, ConfigDict, Field

STORAGE_USD_PER_GB_MONTH = {"aws": 0.023, "gcp": 0.020, "azure": 0.018}
WAREHOUSE_USD_PER_HOUR = 3.0
GB_PER_COMPUTE_HOUR = 25.0
COLUMNAR_COMPRESSION = 4.0
STREAM_BROKER_USD_PER_HOUR = 0.21
STREAM_WORKER_USD_PER_HOUR = 0.25
EVENTS_PER_SECOND_PER_WORKER = 5000.0
HOURS_PER_MONTH = 730.0
ORCHESTRATOR_USD_PER_MONTH = {"airflow": 360.0, "prefect": 100.0}


class Choice(BaseModel):
    """One design decision (ingestion of a source, the orchestrator, ...), with why."""

    model_config = ConfigDict(extra="forbid")

    id: str
    area: str
    choice: str
    why: str


class CostItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    name: str
    usd_per_month: float
    formula: str


class CostEstimate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[CostItem]
    total_usd_per_month: float
    assumptions: list[str]


class PipelineDesign(BaseModel):
    """The deterministic design of a pipeline (``dataeng pipeline design``)."""

    model_config = ConfigDict(extra="forbid")

    spec_name: str
    recommendation: Architecture
    recommendation_label: str
    comparison: list[ArchitectureScore]
    schedule: str
    ingestion: list[Choice]
    orchestration: Choice
    transformation: Choice
    storage: list[Choice]
    quality_checks: list[Choice]
    monitoring: list[Choice]
    cost: CostEstimate
    spec_findings: list[dict[str, Any]] = Field(default_factory=list, description="Findings of the spec review.")

    def summary(self) -> dict[str, Any]:
        return {
            "spec": self.spec_name,
            "recommendation": self.recommendation,
            "scores": {s.architecture: s.score for s in self.comparison},
            "schedule": self.schedule,
            "monthly_cost_usd": round(self.cost.total_usd_per_month, 2),
            "spec_findings": len(self.spec_findings),
        }

    def to_markdown(self) -> str:
        lines = [f"# Pipeline design: {self.spec_name}", "",
                 f"**Recommendation: {self.recommendation_label}** (schedule `{self.schedule}`)", "",
                 "## Architecture comparison", "", "| Architecture | Score | Reasons |", "|---|---|---|"]
        for s in self.comparison:
            reasons = "<br>".join(f"{r.points:+d} {r.text}" for r in s.reasons)
            lines.append(f"| {s.label} | {s.score} | {reasons} |")
        for title, items in (("Ingestion", self.ingestion), ("Orchestration", [self.orchestration]),
                             ("Transformation", [self.transformation]), ("Storage and partitioning", self.storage),
                             ("Data-quality checks", self.quality_checks), ("Monitoring", self.monitoring)):
            lines += ["", f"## {title}", ""]
            lines += [f"- **{c.choice}** ({c.area}): {c.why}" for c in items]
        lines += ["", "## Rough monthly cost", "", "| Item | USD/month | Formula |", "|---|---|---|"]
        lines += [f"| {i.name} | {i.usd_per_month:,.2f} | {i.formula} |" for i in self.cost.items]
        lines += [f"| **Total** | **{self.cost.total_usd_per_month:,.2f}** | |", "", "Assumptions:", ""]
        lines += [f"- {a}" for a in self.cost.assumptions]
        if self.spec_findings:
            lines += ["", "## Spec review findings", ""]
            lines += [f"- {f['severity']} {f['rule_id']} {f['message']}" for f in self.spec_findings]
        return "\n".join(lines) + "\n"


def schedule_for(spec: PipelineSpec, arch: Architecture) -> str:
    """A schedule that leaves half the SLO for runtime and retries; streams get a maintenance schedule."""
    if arch in {"kappa", "lambda"}:
        return "@hourly" if arch == "kappa" else "@daily"  # compaction / batch layer
    budget = spec.freshness_slo_minutes / 2
    if budget >= 1440:
        return "@daily"
    if budget >= 60:
        hours = max(1, min(12, int(budget // 60)))
        return "@hourly" if hours == 1 else f"0 */{hours} * * *"
    minutes = max(5, min(30, int(budget)))
    return f"*/{minutes} * * * *"


def _ingestion(src: Source, spec: PipelineSpec, arch: Architecture) -> Choice:
    sid = f"ingestion.{src.name}"
    if src.kind == "event_stream":
        if arch in {"kappa", "lambda"}:
            return Choice(id=sid, area="ingestion", choice="streaming consumer (Flink / Spark Structured Streaming)",
                          why="events are processed continuously from the log with checkpointed offsets")
        return Choice(id=sid, area="ingestion", choice="stream-to-storage sink (Kafka Connect / Firehose) + micro-batch",
                      why="events land in object storage in small files; scheduled runs pick up each interval")
    if src.kind == "cdc" or src.change_pattern == "cdc" or (src.change_pattern == "upsert" and spec.freshness_slo_minutes < 60):
        return Choice(id=sid, area="ingestion", choice="CDC (Debezium / managed CDC) into a change table",
                      why="updates and deletes are captured from the log; MERGE on the primary key applies them")
    if src.kind == "api":
        return Choice(id=sid, area="ingestion", choice="incremental API extract with pagination and rate limits",
                      why="fetch only the run's interval and land raw JSON in staging before loading")
    if src.kind == "files":
        return Choice(id=sid, area="ingestion", choice="deferrable file sensor / object-storage events + COPY",
                      why="the arrival of files triggers the load without holding a worker slot")
    if src.kind == "saas":
        return Choice(id=sid, area="ingestion", choice="managed connector (Airbyte / Fivetran) or incremental API",
                      why="SaaS APIs change often; a maintained connector absorbs that")
    return Choice(id=sid, area="ingestion", choice="incremental batch extract on an updated_at watermark",
                  why=f"{src.change_pattern} data of {src.volume_gb_per_day:g} GB/day is read per interval")


def _storage(sink: Sink, spec: PipelineSpec, arch: Architecture) -> Choice:
    fmt = sink.format
    if arch == "lakehouse" or (sink.kind == "lakehouse" and fmt == "table"):
        fmt = "delta" if spec.cloud == "azure" else "iceberg"
    part = sink.partition_by or (["event_date"] if spec.total_gb_per_day >= 1 else ["event_month"])
    write = sink.write_mode if sink.write_mode != "append" else ("merge" if sink.upsert_key else "overwrite_partition")
    return Choice(id=f"storage.{sink.name}", area="storage",
                  choice=f"{sink.kind} / {fmt}, partitioned by {', '.join(part)}, written by {write}",
                  why=f"partitions align with the schedule grain so reruns and backfills rewrite only their slice; "
                      f"{write} keeps reruns idempotent")


def _checks(spec: PipelineSpec) -> list[Choice]:
    out: list[Choice] = []
    for sink in spec.sinks:
        keys = sink.upsert_key or next((s.primary_key for s in spec.sources if s.primary_key), [])
        base = f"dq.{sink.name}"
        out.append(Choice(id=f"{base}.row_count", area="data quality", choice="row count > 0 for the run's partition",
                          why="an empty load is the most common silent failure"))
        if keys:
            out.append(Choice(id=f"{base}.unique_key", area="data quality",
                              choice=f"unique + not null on {', '.join(keys)}", why="the grain of the table"))
        out.append(Choice(id=f"{base}.freshness", area="data quality",
                          choice=f"max(event time) within {spec.freshness_slo_minutes:g} min",
                          why="measures the freshness SLO consumers rely on"))
        for i, e in enumerate(sink.expectations):
            out.append(Choice(id=f"{base}.expectation{i}", area="data quality",
                              choice=f"{e.check}{' on ' + e.column if e.column else ''} (action: {e.action})",
                              why="declared in the spec"))
    return out


def _monitoring(spec: PipelineSpec, arch: Architecture) -> list[Choice]:
    out = [
        Choice(id="monitoring.failures", area="monitoring", choice="failure notifications (on_failure_callback / hooks)",
               why="failures reach the owning team immediately"),
        Choice(id="monitoring.freshness", area="monitoring", choice=f"freshness alert at {spec.freshness_slo_minutes:g} min",
               why="a late pipeline is detected before consumers notice (Airflow 3: DeadlineAlert)"),
    ]
    if arch in {"kappa", "lambda", "micro_batch"} and any(s.kind in STREAM_KINDS for s in spec.sources):
        out.append(Choice(id="monitoring.lag", area="monitoring", choice="consumer lag and checkpoint age",
                          why="stream lag is the leading indicator of missing the SLO"))
    out.append(Choice(id="monitoring.cost", area="monitoring", choice="cost per run / per GB dashboard",
                      why="catches full reprocessing and runaway backfills early"))
    return out


def estimate_cost(spec: PipelineSpec, arch: Architecture) -> CostEstimate:
    gb = spec.total_gb_per_day
    price = STORAGE_USD_PER_GB_MONTH[spec.cloud]
    retention = max(spec.reprocessing_horizon_days, 30.0)
    stored_gb = gb * retention / COLUMNAR_COMPRESSION
    raw_gb = gb * min(retention, 30.0)
    items = [
        CostItem(id="cost.storage", name="table storage", usd_per_month=stored_gb * price,
                 formula=f"{gb:g} GB/day x {retention:g} days / {COLUMNAR_COMPRESSION:g} x ${price}/GB-month"),
        CostItem(id="cost.staging", name="raw/staging storage (30 days)", usd_per_month=raw_gb * price,
                 formula=f"{gb:g} GB/day x {min(retention, 30.0):g} days x ${price}/GB-month"),
    ]
    batch_hours = gb * 30 / GB_PER_COMPUTE_HOUR
    if arch != "kappa":
        factor = 1.3 if arch == "micro_batch" else 1.0  # more, smaller runs carry fixed overhead
        items.append(CostItem(id="cost.batch_compute", name="batch transformation compute",
                              usd_per_month=batch_hours * factor * WAREHOUSE_USD_PER_HOUR,
                              formula=f"{gb:g} GB/day x 30 / {GB_PER_COMPUTE_HOUR:g} GB per hour x {factor:g} x "
                                      f"${WAREHOUSE_USD_PER_HOUR}/h"))
    if arch in {"kappa", "lambda"}:
        eps = max((s.events_per_second_peak or gb * 1e6 / 86400 / 1.0) for s in spec.sources)
        workers = max(2, math.ceil(eps / EVENTS_PER_SECOND_PER_WORKER))
        items.append(CostItem(id="cost.stream_brokers", name="stream brokers (3, always on)",
                              usd_per_month=3 * STREAM_BROKER_USD_PER_HOUR * HOURS_PER_MONTH,
                              formula=f"3 x ${STREAM_BROKER_USD_PER_HOUR}/h x {HOURS_PER_MONTH:g} h"))
        items.append(CostItem(id="cost.stream_workers", name=f"stream processing ({workers} workers, always on)",
                              usd_per_month=workers * STREAM_WORKER_USD_PER_HOUR * HOURS_PER_MONTH,
                              formula=f"ceil({eps:,.0f} events/s / {EVENTS_PER_SECOND_PER_WORKER:g}) workers x "
                                      f"${STREAM_WORKER_USD_PER_HOUR}/h x {HOURS_PER_MONTH:g} h"))
    orch = ORCHESTRATOR_USD_PER_MONTH[spec.orchestrator]
    items.append(CostItem(id="cost.orchestrator", name=f"managed {spec.orchestrator}", usd_per_month=orch,
                          formula="small managed environment"))
    assumptions = [
        f"object storage ${price}/GB-month ({spec.cloud} standard tier), columnar compression {COLUMNAR_COMPRESSION:g}x",
        f"tables keep max(reprocessing horizon, 30 days) = {retention:g} days; raw staging keeps 30 days",
        f"batch compute processes {GB_PER_COMPUTE_HOUR:g} GB per node-hour at ${WAREHOUSE_USD_PER_HOUR}/h",
        f"streaming: 3 brokers at ${STREAM_BROKER_USD_PER_HOUR}/h, one worker per "
        f"{EVENTS_PER_SECOND_PER_WORKER:g} events/s at ${STREAM_WORKER_USD_PER_HOUR}/h (min 2), 730 h/month",
        f"orchestrator: managed {spec.orchestrator} at ${orch}/month; egress, BI and query costs are excluded",
    ]
    return CostEstimate(items=items, total_usd_per_month=sum(i.usd_per_month for i in items), assumptions=assumptions)


def design_pipeline(spec: PipelineSpec | str | Path | dict[str, Any]) -> PipelineDesign:
    """Recommend an architecture and its components for ``spec`` (a spec, path, YAML text or dict)."""
    from dataeng_agents.core.review.config import load_config
    from dataeng_agents.core.review.context import CheckContext
    from dataeng_agents.core.review.models import Finding
    from dataeng_agents.core.review.rules import RULES
    from dataeng_agents.core.review.spec_checks import review_spec

    sp = load_spec(spec)
    comparison = score_architectures(sp)
    arch = comparison[0].architecture
    tr = sp.transformations
    engine = tr.engine or ("flink" if arch == "kappa" else "spark" if arch == "lakehouse" or sp.total_gb_per_day >= 500
                           or tr.complexity == "complex" else "dbt")
    ctx = CheckContext(path=f"spec:{sp.name}", config=load_config(profile="default"), airflow_version="3.3")
    review_spec(ctx, sp, {})
    findings = [{"id": Finding.make_id(f.rule_id, f"spec:{sp.name}", f.subject, f.message), "rule_id": f.rule_id, "severity": ctx.config.severity_of(f.rule_id).value, "subject": f.subject,
                 "message": f.message, "fix": RULES[f.rule_id].fix} for f in ctx.findings]
    schedule = schedule_for(sp, arch)
    return PipelineDesign(
        spec_name=sp.name,
        recommendation=arch,
        recommendation_label=LABELS[arch],
        comparison=comparison,
        schedule=schedule,
        ingestion=[_ingestion(s, sp, arch) for s in sp.sources],
        orchestration=Choice(
            id="orchestration", area="orchestration", choice=f"{sp.orchestrator} ({schedule})",
            why="schedules loads, checks and backfills; streams are supervised, not scheduled"
            if arch in {"kappa", "lambda"} else "one run per interval, keyed to the run's data interval",
        ),
        transformation=Choice(id="transformation", area="transformation", choice=engine,
                              why=f"{tr.complexity} transformations over {sp.total_gb_per_day:g} GB/day"),
        storage=[_storage(s, sp, arch) for s in sp.sinks],
        quality_checks=_checks(sp),
        monitoring=_monitoring(sp, arch),
        cost=estimate_cost(sp, arch),
        spec_findings=findings,
    )
