"""The declarative-spec rules (architecture, data quality, PII), evaluated on a validated PipelineSpec."""

from __future__ import annotations

from typing import Any

from dataeng_agents.core.pipeline_spec import PipelineSpec
from dataeng_agents.core.review.context import CheckContext

STREAM_SOURCES = {"event_stream", "cdc"}
RAW_FORMATS = {"csv", "json", "parquet", "avro"}


def yaml_line_index(text: str) -> dict[str, int]:
    """Field path (``sinks[0].expectations``) -> 1-based line, from the YAML node tree."""
    import yaml

    out: dict[str, int] = {}
    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return out

    def walk(node: Any, path: str) -> None:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                key = f"{path}.{k.value}" if path else str(k.value)
                out[key] = k.start_mark.line + 1
                walk(v, key)
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                key = f"{path}[{i}]"
                out[key] = v.start_mark.line + 1
                walk(v, key)

    if root is not None:
        walk(root, "")
    return out


def review_spec(ctx: CheckContext, spec: PipelineSpec, lines: dict[str, int]) -> None:
    def at(path: str) -> int:
        while path:
            if path in lines:
                return lines[path]
            path = path.rsplit(".", 1)[0] if "." in path else path.rsplit("[", 1)[0] if "[" in path else ""
        return 1

    horizon = spec.reprocessing_horizon_days
    for i, src in enumerate(spec.sources):
        p = f"sources[{i}]"
        if src.change_pattern in {"upsert", "cdc"} and not src.primary_key:
            ctx.emit("DQ002", at(p), p, f"source '{src.name}' ({src.change_pattern}) declares no primary_key")
        if (
            src.kind in STREAM_SOURCES
            and src.retention_days is not None
            and src.retention_days < horizon
            and (spec.planned_mode == "streaming" or not spec.staging)
        ):
            ctx.emit(
                "ARC002",
                at(f"{p}.retention_days"),
                p,
                f"source '{src.name}' keeps {src.retention_days:g} days but the reprocessing horizon is "
                f"{horizon:g} days and there is no other replay path",
            )
    external = {c.name for c in spec.consumers if c.external}
    for i, sink in enumerate(spec.sinks):
        p = f"sinks[{i}]"
        readers = set(sink.consumers) if sink.consumers else {c.name for c in spec.consumers}
        if readers & external and not sink.contract:
            ctx.emit(
                "DQ003",
                at(p),
                p,
                f"sink '{sink.name}' is read by external consumers ({', '.join(sorted(readers & external))}) "
                "without a contract",
            )
        if not sink.expectations:
            ctx.emit("DQ005", at(p), p, f"sink '{sink.name}' declares no expectations")
        elif any(e.check in {"unique", "not_null"} and e.action == "warn" for e in sink.expectations):
            ctx.emit(
                "DQ005",
                at(f"{p}.expectations"),
                p,
                f"sink '{sink.name}' only warns on key (unique/not_null) expectations",
            )
        if horizon > 0 and sink.write_mode == "append" and not sink.upsert_key and sink.kind != "stream":
            ctx.emit(
                "ARC006",
                at(p),
                p,
                f"sink '{sink.name}' appends without upsert_key or partition overwrite: backfills over the "
                f"{horizon:g}-day horizon duplicate rows",
            )
        # the sink's own daily volume (the sources feeding it), not the whole pipeline's
        sink_gb = spec.sink_gb_per_day(sink)
        if (
            sink.kind in {"warehouse", "lakehouse", "object_storage"}
            and sink_gb >= 10
            and not sink.partition_by
        ):
            ctx.emit(
                "ARC007",
                at(p),
                p,
                f"sink '{sink.name}' grows {sink_gb:g} GB/day with no partition_by",
            )
        elif sink.format in RAW_FORMATS and (
            spec.transformations.needs_acid_upserts or spec.transformations.needs_time_travel
        ):
            ctx.emit(
                "ARC007",
                at(f"{p}.format"),
                p,
                f"sink '{sink.name}' is raw {sink.format} files but the pipeline needs ACID upserts/time "
                "travel: use Iceberg or Delta",
            )
    if spec.delivery_guarantee == "exactly_once":
        bad_src = [s.name for s in spec.sources if not s.replayable]
        bad_sink = [s.name for s in spec.sinks if not s.upsert_key and not s.transactional]
        if bad_src or bad_sink:
            detail = "; ".join(
                x
                for x in (
                    f"sources not replayable: {', '.join(bad_src)}" if bad_src else "",
                    f"sinks neither transactional nor upsert-keyed: {', '.join(bad_sink)}"
                    if bad_sink
                    else "",
                )
                if x
            )
            ctx.emit(
                "ARC003",
                at("delivery_guarantee"),
                "delivery_guarantee",
                f"exactly_once is claimed but {detail}",
            )
    tr = spec.transformations
    if tr.windowed_aggregations and tr.watermark_minutes is None:
        ctx.emit(
            "ARC004",
            at("transformations.windowed_aggregations"),
            "transformations",
            "event-time windowed aggregations without watermark_minutes (allowed lateness)",
        )
    se = spec.schema_evolution
    if se.expected != "none":
        raw = [s.name for s in spec.sinks if s.format in RAW_FORMATS]
        if se.compatibility in {None, "none"}:
            ctx.emit(
                "ARC005",
                at("schema_evolution"),
                "schema_evolution",
                f"schema changes are expected ({se.expected}) but no compatibility mode is set",
            )
        elif raw:
            ctx.emit(
                "ARC005",
                at("schema_evolution"),
                "schema_evolution",
                f"schema changes are expected but sinks {', '.join(raw)} are raw files without in-place evolution",
            )
    if spec.pii.present and spec.pii.handling in {None, "none"}:
        ctx.emit(
            "SEC005",
            at("pii"),
            "pii",
            "the pipeline carries PII but declares no handling (mask/hash/tokenize/drop)",
        )
    if spec.planned_mode in {"batch", "micro_batch"}:
        interval = spec.batch_interval_minutes or (1440.0 if spec.planned_mode == "batch" else 15.0)
        runtime = spec.expected_runtime_minutes or 0.0
        if interval + runtime > spec.freshness_slo_minutes:
            ctx.emit(
                "ARC001",
                at("planned_mode"),
                "planned_mode",
                f"{spec.planned_mode} every {interval:g} min + {runtime:g} min runtime exceeds the "
                f"freshness SLO of {spec.freshness_slo_minutes:g} min",
            )
    if spec.planned_mode == "streaming" and spec.freshness_slo_minutes >= 1440:
        ctx.emit(
            "COST003",
            at("planned_mode"),
            "planned_mode",
            f"streaming is planned for a freshness SLO of {spec.freshness_slo_minutes:g} min (a day or more)",
        )
    if not spec.staging:
        ctx.emit(
            "ARC008", at("staging"), "staging", "sources load straight into the sinks without a staging layer"
        )
