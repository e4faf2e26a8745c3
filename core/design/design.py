"""``design_pipeline``: from a spec to a recommended architecture, components, checks and a cost estimate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dataeng_agents.core.design.cost import CostEstimate, CostItem, default_warehouse, estimate_cost
from dataeng_agents.core.design.recommend import (
    LABELS,
    STREAM_KINDS,
    Architecture,
    ArchitectureScore,
    score_architectures,
)
from dataeng_agents.core.pipeline_spec import PipelineSpec, Sink, Source, load_spec
from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Choice",
    "CostEstimate",
    "CostItem",
    "PipelineDesign",
    "design_pipeline",
    "estimate_cost",
    "partition_columns",
    "schedule_for",
    "table_type",
]


class Choice(BaseModel):
    """One design decision (ingestion of a source, the orchestrator, ...), with why."""

    model_config = ConfigDict(extra="forbid")

    id: str
    area: str
    choice: str
    why: str


class PipelineDesign(BaseModel):
    """The deterministic design of a pipeline (``dataeng pipeline design``)."""

    model_config = ConfigDict(extra="forbid")

    spec_name: str
    recommendation: Architecture
    recommendation_label: str
    comparison: list[ArchitectureScore]
    schedule: str
    warehouse: Choice
    ingestion: list[Choice]
    deletes: list[Choice] = Field(
        default_factory=list, description="How each source's deletes reach the tables."
    )
    orchestration: Choice
    transformation: Choice
    storage: list[Choice]
    quality_checks: list[Choice]
    monitoring: list[Choice]
    cost: CostEstimate
    spec_findings: list[dict[str, Any]] = Field(
        default_factory=list, description="Findings of the spec review."
    )
    open_questions: list[str] = Field(
        default_factory=list, description="Answers that would change the design."
    )

    def components(self) -> list[Choice]:
        return [
            self.warehouse,
            *self.ingestion,
            *self.deletes,
            self.orchestration,
            self.transformation,
            *self.storage,
            *self.quality_checks,
            *self.monitoring,
        ]

    def summary(self) -> dict[str, Any]:
        return {
            "spec": self.spec_name,
            "recommendation": self.recommendation,
            "scores": {s.architecture: s.score for s in self.comparison},
            "schedule": self.schedule,
            "warehouse": self.cost.warehouse,
            "monthly_cost_usd": round(self.cost.total_usd_per_month, 2),
            "spec_findings": len(self.spec_findings),
        }

    def to_markdown(self) -> str:
        lines = [
            f"# Pipeline design: {self.spec_name}",
            "",
            f"**Recommendation: {self.recommendation_label}** on **{self.cost.warehouse}** "
            f"(schedule `{self.schedule}`)",
            "",
            "## Architecture comparison",
            "",
            "| Architecture | Score | Reasons |",
            "|---|---|---|",
        ]
        for s in self.comparison:
            reasons = "<br>".join(f"{r.points:+d} {r.text}" for r in s.reasons)
            lines.append(f"| {s.label} | {s.score} | {reasons} |")
        for title, items in (
            ("Warehouse", [self.warehouse]),
            ("Ingestion", self.ingestion),
            ("Deletes and snapshots", self.deletes),
            ("Orchestration", [self.orchestration]),
            ("Transformation", [self.transformation]),
            ("Storage and partitioning", self.storage),
            ("Data-quality checks", self.quality_checks),
            ("Monitoring", self.monitoring),
        ):
            if not items:
                continue
            lines += ["", f"## {title}", ""]
            lines += [f"- **{c.choice}** ({c.area}): {c.why}" for c in items]
        lines += ["", "## Rough monthly cost", "", "| Item | USD/month | Formula |", "|---|---|---|"]
        lines += [f"| {i.name} | {i.usd_per_month:,.2f} | {i.formula} |" for i in self.cost.items]
        lines += [f"| **Total** | **{self.cost.total_usd_per_month:,.2f}** | |", "", "Assumptions:", ""]
        lines += [f"- {a}" for a in self.cost.assumptions]
        if self.spec_findings:
            lines += ["", "## Spec review findings", ""]
            lines += [f"- {f['severity']} {f['rule_id']} {f['message']}" for f in self.spec_findings]
        if self.open_questions:
            lines += ["", "## Open questions", ""]
            lines += [f"- {q}" for q in self.open_questions]
        return "\n".join(lines) + "\n"


def schedule_for(spec: PipelineSpec, arch: Architecture) -> str:
    """A schedule that leaves half the SLO for runtime and retries; streams get a maintenance schedule."""
    if arch in {"kappa", "lambda"}:
        return "@hourly" if arch == "kappa" else "@daily"  # compaction / batch layer
    budget = spec.freshness_slo_minutes / 2
    if budget >= 1440:
        return "@daily"
    # */N is only a regular interval when N divides the hour (or the day): */7 runs at :56 and :00
    if budget >= 60:
        hours = max(h for h in (1, 2, 3, 4, 6, 8, 12) if h <= budget / 60)
        return "@hourly" if hours == 1 else f"0 */{hours} * * *"
    minutes = max(m for m in (5, 6, 10, 12, 15, 20, 30) if m <= max(5.0, budget))
    return f"*/{minutes} * * * *"


def watermark_of(src: Source) -> str | None:
    """The incremental watermark of a source: its declared event_time_field, never a guessed column."""
    return src.event_time_field


def _ingestion(src: Source, spec: PipelineSpec, arch: Architecture) -> Choice:
    sid = f"ingestion.{src.name}"
    wm = watermark_of(src)
    if src.kind == "event_stream":
        platform = spec.stream_platform or "kafka"
        product = default_warehouse(spec, arch)[0].product
        if arch in {"kappa", "lambda"}:
            sink = (
                "BigQuery Storage Write API"
                if product == "bigquery"
                else "Snowpipe Streaming"
                if product == "snowflake"
                else "the table format's streaming writer"
            )
            return Choice(
                id=sid,
                area="ingestion",
                choice=f"Spark Structured Streaming consumer of {platform} -> {sink}, dead-letter topic",
                why="events are processed continuously with checkpointed offsets; records that fail "
                "to parse go to the dead-letter topic instead of stopping the stream"
                + (f"; event time {wm} drives the watermark" if wm else ""),
            )
        return Choice(
            id=sid,
            area="ingestion",
            choice=f"{platform} -> Kafka Connect sink to the landing zone (errors.tolerance=all, DLQ topic) "
            "+ scheduled load",
            why="events land in object storage in small files; each scheduled run loads its interval"
            + (f" by {wm}" if wm else " by landing time (no event_time_field declared)"),
        )
    if src.kind == "cdc" or src.change_pattern == "cdc":
        return Choice(
            id=sid,
            area="ingestion",
            choice="CDC (Debezium / managed CDC) into a change table",
            why="updates and deletes are captured from the log; MERGE on the primary key applies them",
        )
    if src.kind in {"api", "saas"}:
        return Choice(
            id=sid,
            area="ingestion",
            choice="dlt source (REST API / verified SaaS source), incremental",
            why="dlt handles pagination, retries, schema inference and incremental cursors"
            + (f" on {wm}" if wm else "")
            + " instead of a hand-written HTTP loop",
        )
    if src.kind == "files":
        return Choice(
            id=sid,
            area="ingestion",
            choice="deferrable file sensor / object-storage events + COPY",
            why="the arrival of files triggers the load without holding a worker slot",
        )
    if src.change_pattern == "snapshot":
        return Choice(
            id=sid,
            area="ingestion",
            choice="full snapshot extract per run, diffed on the primary key",
            why="a snapshot source has no reliable change column: each run reads the whole table "
            f"({src.volume_gb_per_day:g} GB/day) and the diff yields inserts, updates and deletes",
        )
    if wm:
        return Choice(
            id=sid,
            area="ingestion",
            choice=f"incremental SQL extract on {wm} (the run's data interval)",
            why=f"{src.change_pattern} data of {src.volume_gb_per_day:g} GB/day is read per interval "
            f"with {wm} >= interval start and < interval end, so reruns read the same rows",
        )
    return Choice(
        id=sid,
        area="ingestion",
        choice="full extract per run (no watermark column declared)",
        why="the spec declares no event_time_field, so an incremental extract cannot be keyed; "
        "declare it to read only each interval",
    )


def _deletes(src: Source) -> Choice | None:
    sid = f"deletes.{src.name}"
    if (
        src.change_pattern == "append"
        and src.kind in {"event_stream", "files", "api"}
        and not src.hard_deletes
    ):
        return None
    if src.kind == "cdc" or src.change_pattern == "cdc":
        return Choice(
            id=sid,
            area="deletes",
            choice="delete events become soft deletes (_is_deleted, _deleted_at)",
            why="CDC carries deletes as op='d' / tombstones; the MERGE flags the row instead of losing history",
        )
    if src.change_pattern == "snapshot":
        return Choice(
            id=sid,
            area="deletes",
            choice="keys missing from the new snapshot are closed (dbt snapshot, hard_deletes: invalidate)",
            why="a snapshot is the only place a delete is visible: absent keys get dbt_valid_to set",
        )
    if src.hard_deletes:
        return Choice(
            id=sid,
            area="deletes",
            choice="daily primary-key reconciliation (anti-join of source keys)",
            why="an incremental extract never sees deleted rows; a keys-only extract once a day marks "
            "rows missing at the source as deleted",
        )
    if src.hard_deletes is None and src.change_pattern == "upsert":
        return Choice(
            id=sid,
            area="deletes",
            choice="assumed no hard deletes (open question)",
            why="an incremental extract misses DELETEs; if rows can be deleted, add a daily key "
            "reconciliation or switch to CDC",
        )
    return None


def table_type(sink: Sink, spec: PipelineSpec) -> str:
    """fact / dimension / aggregate: declared, else derived from the sources' change patterns."""
    if sink.table_type:
        return sink.table_type
    srcs = spec.sources_of(sink)
    if srcs and all(s.change_pattern in {"upsert", "snapshot", "cdc"} for s in srcs):
        return "dimension"
    if spec.transformations.windowed_aggregations and any(
        k for k in sink.upsert_key if "minute" in k or "hour" in k
    ):
        return "aggregate"
    return "fact"


def partition_columns(sink: Sink, spec: PipelineSpec) -> tuple[list[str], str]:
    """Partition columns of a sink and why: declared, derived from an event time, or none (dimensions)."""
    if sink.partition_by:
        return list(sink.partition_by), "declared in the spec"
    kind = table_type(sink, spec)
    if kind == "dimension":
        return [], "a dimension table is rewritten by key, not by date: clustered on its key instead"
    srcs = spec.sources_of(sink)
    times = [s.event_time_field for s in srcs if s.event_time_field and s.change_pattern == "append"]
    if times:
        return [f"date({times[0]})"], f"derived from the event time {times[0]} of its append-only source"
    if any(s.event_time_field for s in srcs):
        return [], (
            "its sources update rows in place, so a partition on their change time would move rows "
            "between partitions: clustered on the key instead (declare partition_by for a creation date)"
        )
    return [], "no event_time_field declared on its sources, so no time partition can be derived"


def _storage(sink: Sink, spec: PipelineSpec, arch: Architecture) -> Choice:
    fmt = sink.format
    if fmt not in {"iceberg", "delta", "hudi"} and (arch == "lakehouse" or sink.kind == "lakehouse"):
        fmt = (
            "delta"
            if spec.cloud == "azure" or default_warehouse(spec, arch)[0].product == "databricks"
            else "iceberg"
        )
    part, why_part = partition_columns(sink, spec)
    write = (
        sink.write_mode
        if sink.write_mode != "append"
        else ("merge" if sink.upsert_key else "overwrite_partition" if part else "append")
    )
    layout = (
        f"partitioned by {', '.join(part)}"
        if part
        else (
            f"not partitioned, clustered by {', '.join(sink.upsert_key)}"
            if sink.upsert_key
            else "not partitioned"
        )
    )
    gb = spec.sink_gb_per_day(sink)
    return Choice(
        id=f"storage.{sink.name}",
        area="storage",
        choice=f"{sink.kind} / {fmt} ({table_type(sink, spec)}, {gb:g} GB/day), {layout}, written by {write}",
        why=f"partitioning: {why_part}; {write} keeps reruns idempotent",
    )


def schedule_minutes(schedule: str) -> int:
    """Interval of the schedules :func:`schedule_for` produces."""
    presets = {"@hourly": 60, "@daily": 1440, "@weekly": 10080}
    if schedule in presets:
        return presets[schedule]
    minute, hour = schedule.split()[:2]
    if minute.startswith("*/"):
        return int(minute[2:])
    if hour.startswith("*/"):
        return int(hour[2:]) * 60
    return 1440


def open_questions(spec: PipelineSpec, arch: Architecture) -> list[str]:
    """Questions whose answers would change the design (asked, not assumed silently)."""
    out: list[str] = []
    if spec.warehouse is None:
        out.append(
            "Which warehouse product holds the tables (snowflake, bigquery, redshift, databricks, postgres, "
            "duckdb)? The cost model and the generated SQL depend on it."
        )
    for s in spec.sources:
        if (
            s.kind in {"database", "api", "saas"}
            and s.change_pattern in {"append", "upsert"}
            and not s.event_time_field
        ):
            out.append(
                f"Which column of '{s.name}' records when a row was created or changed (event_time_field)? "
                "Without it each run extracts everything."
            )
        if s.hard_deletes is None and s.change_pattern in {"upsert", "snapshot"}:
            out.append(
                f"Can rows be deleted from '{s.name}' (hard_deletes)? Deletes need CDC, snapshots or a key "
                "reconciliation."
            )
        if s.change_pattern in {"upsert", "cdc", "snapshot"} and not s.primary_key:
            out.append(f"What is the primary key of '{s.name}'? MERGE and the uniqueness test need it.")
        if s.kind == "event_stream" and s.retention_days is None:
            out.append(
                f"How long does the log of '{s.name}' retain events? Kappa replays need the whole "
                f"{spec.reprocessing_horizon_days:g}-day horizon."
            )
    if not spec.consumers:
        out.append("Who reads the output, and how stale may it be? The freshness SLO sets the architecture.")
    return out


def _checks(spec: PipelineSpec) -> list[Choice]:
    out: list[Choice] = []
    for sink in spec.sinks:
        keys = sink.upsert_key or next((s.primary_key for s in spec.sources_of(sink) if s.primary_key), [])
        base = f"dq.{sink.name}"
        out.append(
            Choice(
                id=f"{base}.row_count",
                area="data quality",
                choice="row count > 0 for the run's partition",
                why="an empty load is the most common silent failure",
            )
        )
        if keys:
            out.append(
                Choice(
                    id=f"{base}.unique_key",
                    area="data quality",
                    choice=f"unique + not null on {', '.join(keys)}",
                    why="the grain of the table",
                )
            )
        times = [s.event_time_field for s in spec.sources_of(sink) if s.event_time_field]
        out.append(
            Choice(
                id=f"{base}.freshness",
                area="data quality",
                choice=f"max({times[0] if times else 'load time'}) within {spec.freshness_slo_minutes:g} min",
                why="measures the freshness SLO consumers rely on",
            )
        )
        for i, e in enumerate(sink.expectations):
            out.append(
                Choice(
                    id=f"{base}.expectation{i}",
                    area="data quality",
                    choice=f"{e.check}{' on ' + e.column if e.column else ''} (action: {e.action})",
                    why="declared in the spec",
                )
            )
    return out


def _monitoring(spec: PipelineSpec, arch: Architecture) -> list[Choice]:
    out = [
        Choice(
            id="monitoring.failures",
            area="monitoring",
            choice="failure notifications (on_failure_callback / hooks)",
            why="failures reach the owning team immediately",
        ),
        Choice(
            id="monitoring.freshness",
            area="monitoring",
            choice=f"freshness alert at {spec.freshness_slo_minutes:g} min",
            why="a late pipeline is detected before consumers notice (Airflow 3: DeadlineAlert)",
        ),
    ]
    if arch in {"kappa", "lambda", "micro_batch"} and any(s.kind in STREAM_KINDS for s in spec.sources):
        out.append(
            Choice(
                id="monitoring.lag",
                area="monitoring",
                choice="consumer lag and checkpoint age",
                why="stream lag is the leading indicator of missing the SLO",
            )
        )
    out.append(
        Choice(
            id="monitoring.cost",
            area="monitoring",
            choice="cost per run / per GB dashboard",
            why="catches full reprocessing and runaway backfills early",
        )
    )
    return out


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
    engine = tr.engine or (
        "spark"
        if arch in {"kappa", "lambda"}
        else "spark"
        if arch == "lakehouse" or sp.total_gb_per_day >= 500 or tr.complexity == "complex"
        else "dbt"
    )
    ctx = CheckContext(path=f"spec:{sp.name}", config=load_config(profile="default"), airflow_version="3.3")
    review_spec(ctx, sp, {})
    findings = [
        {
            "id": Finding.make_id(f.rule_id, f"spec:{sp.name}", f.subject, f.message),
            "rule_id": f.rule_id,
            "severity": ctx.config.severity_of(f.rule_id).value,
            "subject": f.subject,
            "message": f.message,
            "fix": RULES[f.rule_id].fix,
        }
        for f in ctx.findings
    ]
    schedule = schedule_for(sp, arch)
    wh, assumed = default_warehouse(sp, arch)
    deletes = [c for c in (_deletes(s) for s in sp.sources) if c is not None]
    return PipelineDesign(
        spec_name=sp.name,
        recommendation=arch,
        recommendation_label=LABELS[arch],
        comparison=comparison,
        schedule=schedule,
        warehouse=Choice(
            id="warehouse",
            area="warehouse",
            choice=wh.product,
            why=assumed or "declared in the spec (warehouse.product)",
        ),
        ingestion=[_ingestion(s, sp, arch) for s in sp.sources],
        deletes=deletes,
        orchestration=Choice(
            id="orchestration",
            area="orchestration",
            choice=f"{sp.orchestrator} ({schedule})",
            why="schedules loads, checks and backfills; streams are supervised, not scheduled"
            if arch in {"kappa", "lambda"}
            else "one run per interval, keyed to the run's data interval",
        ),
        transformation=Choice(
            id="transformation",
            area="transformation",
            choice=engine,
            why=f"{tr.complexity} transformations over {sp.total_gb_per_day:g} GB/day",
        ),
        storage=[_storage(s, sp, arch) for s in sp.sinks],
        quality_checks=_checks(sp),
        monitoring=_monitoring(sp, arch),
        cost=estimate_cost(sp, arch, schedule_minutes=schedule_minutes(schedule)),
        spec_findings=findings,
        open_questions=open_questions(sp, arch),
    )
