"""Scored comparison of the five architectures for a pipeline spec.

Each candidate starts at 0 and collects signed, explained points from the spec's requirements; the
highest total wins, ties go to the simpler architecture. Every reason has a stable id
(``<architecture>.<signal>``) that the narrative refers to.
"""

from __future__ import annotations

from typing import Literal

from dataeng_agents.core.pipeline_spec import PipelineSpec
from pydantic import BaseModel, ConfigDict

Architecture = Literal["batch_elt", "micro_batch", "lambda", "kappa", "lakehouse"]
LABELS: dict[str, str] = {
    "batch_elt": "Batch ETL/ELT",
    "micro_batch": "Micro-batch",
    "lambda": "Lambda (batch + speed layer)",
    "kappa": "Kappa (single streaming path, replay from the log)",
    "lakehouse": "Lakehouse (Iceberg/Delta tables, batch + incremental)",
}
#: tie-break: simpler first
SIMPLICITY: tuple[Architecture, ...] = ("batch_elt", "micro_batch", "lakehouse", "kappa", "lambda")
STREAM_KINDS = {"event_stream", "cdc"}
DEFAULT_STREAM_RETENTION_DAYS = 7.0


class Reason(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    points: int
    text: str


class ArchitectureScore(BaseModel):
    model_config = ConfigDict(extra="forbid")

    architecture: Architecture
    label: str
    score: int
    reasons: list[Reason]


def log_covers_horizon(spec: PipelineSpec) -> bool:
    """True when every streaming source can replay the whole reprocessing horizon from its log."""
    streams = [s for s in spec.sources if s.kind in STREAM_KINDS]
    if not streams:
        return False
    return all(
        s.replayable
        and (s.retention_days if s.retention_days is not None else DEFAULT_STREAM_RETENTION_DAYS)
        >= spec.reprocessing_horizon_days
        for s in streams
    )


def score_architectures(spec: PipelineSpec) -> list[ArchitectureScore]:
    slo = spec.freshness_slo_minutes
    gb = spec.total_gb_per_day
    tr = spec.transformations
    has_stream = any(s.kind in STREAM_KINDS for s in spec.sources)
    replay_ok = log_covers_horizon(spec)
    lake_needs = [
        n
        for n, on in (
            ("ACID upserts", tr.needs_acid_upserts),
            ("time travel", tr.needs_time_travel),
            ("several engines on the same tables", tr.multiple_engines),
        )
        if on
    ]
    out: dict[Architecture, list[Reason]] = {a: [] for a in SIMPLICITY}

    def add(arch: Architecture, signal: str, points: int, text: str) -> None:
        out[arch].append(Reason(id=f"{arch}.{signal}", points=points, text=text))

    # batch ETL/ELT
    if slo >= 1440:
        add("batch_elt", "freshness", 3, f"a {slo:g}-minute freshness SLO is met by a daily batch")
    elif slo >= 60:
        add("batch_elt", "freshness", 2, f"a {slo:g}-minute SLO is met by an hourly or more frequent batch")
    elif slo >= 15:
        add(
            "batch_elt", "freshness", -3, f"a {slo:g}-minute SLO leaves no room for batch runtime and retries"
        )
    else:
        add("batch_elt", "freshness", -5, f"a {slo:g}-minute SLO is out of reach for scheduled batches")
    if gb <= 100:
        add("batch_elt", "volume", 1, f"{gb:g} GB/day fits warehouse ELT comfortably")
    elif gb > 1000:
        add("batch_elt", "volume", -1, f"{gb:g} GB/day makes full warehouse loads expensive")
    if not has_stream:
        add("batch_elt", "sources", 1, "all sources are batch-readable (no event streams or CDC)")
    if lake_needs:
        add("batch_elt", "table_features", -1, f"needs {', '.join(lake_needs)} beyond plain warehouse tables")

    # micro-batch
    if 5 <= slo < 60:
        add(
            "micro_batch",
            "freshness",
            3,
            f"a {slo:g}-minute SLO is the sweet spot of 1-15 minute micro-batches",
        )
    elif 60 <= slo < 1440:
        add("micro_batch", "freshness", 1, "micro-batches also meet an hourly SLO, at a higher run count")
    elif slo < 5:
        add("micro_batch", "freshness", -2, f"a {slo:g}-minute SLO is below micro-batch scheduling overhead")
    else:
        add("micro_batch", "freshness", -1, "micro-batching a daily SLO only adds runs")
    if has_stream:
        add("micro_batch", "sources", 1, "streaming/CDC sources can be drained in micro-batches")

    # Lambda
    if slo < 15 and not tr.same_logic_batch_and_stream:
        add("lambda", "logic", 3, "the real-time view and the corrected history need different logic")
    if slo < 15 and has_stream and not replay_ok:
        add(
            "lambda",
            "replay",
            2,
            "the log cannot replay the reprocessing horizon, so history needs a batch path",
        )
    if slo >= 15 or tr.same_logic_batch_and_stream:
        add(
            "lambda",
            "two_paths",
            -2,
            "two code paths (batch and speed) would compute the same output and drift",
        )
    add("lambda", "complexity", -1, "Lambda is the most expensive architecture to build and operate")

    # Kappa
    if slo < 15:
        add("kappa", "freshness", 3, f"a {slo:g}-minute SLO needs continuous processing")
    elif slo < 60:
        add("kappa", "freshness", 1, "streaming also meets a sub-hour SLO")
    elif slo >= 1440:
        add("kappa", "freshness", -3, "a daily SLO does not justify an always-on streaming stack")
    if has_stream and replay_ok:
        add(
            "kappa",
            "replay",
            2,
            f"the log retains the whole {spec.reprocessing_horizon_days:g}-day reprocessing horizon",
        )
    else:
        add(
            "kappa",
            "replay",
            -3,
            "history cannot be rebuilt by replaying the log (not replayable or retention too short)",
        )
    if tr.same_logic_batch_and_stream:
        add("kappa", "logic", 1, "one streaming code path serves both live and reprocessed results")
    else:
        add("kappa", "logic", -1, "live and historical results need different logic")

    # Lakehouse
    for signal, on, pts, text in (
        ("acid", tr.needs_acid_upserts, 1, "needs ACID upserts/merges on large tables"),
        ("time_travel", tr.needs_time_travel, 1, "needs time travel / snapshot reads"),
        ("engines", tr.multiple_engines, 2, "several engines (SQL, Spark, ML) read the same tables"),
        (
            "schema",
            spec.schema_evolution.expected != "none",
            1,
            "schema evolves: Iceberg/Delta evolve in place",
        ),
    ):
        if on:
            add("lakehouse", signal, pts, text)
    if gb >= 500:
        add("lakehouse", "volume", 2, f"{gb:g} GB/day is cheaper on object storage than in warehouse storage")
    elif gb >= 100:
        add("lakehouse", "volume", 1, f"{gb:g} GB/day benefits from open table formats on object storage")
    if slo >= 15:
        add("lakehouse", "freshness", 1, "batch/incremental commits to table formats meet the SLO")
    elif slo < 5:
        add("lakehouse", "freshness", -2, "table-format commits every few seconds create small-file overhead")

    scores = [
        ArchitectureScore(
            architecture=a, label=LABELS[a], score=sum(r.points for r in out[a]), reasons=out[a]
        )
        for a in SIMPLICITY
    ]
    return sorted(scores, key=lambda s: (-s.score, SIMPLICITY.index(s.architecture)))
