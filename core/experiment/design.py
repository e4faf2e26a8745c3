"""Design an experiment: measure baselines in a pre-period, then size it (per-variant sample, duration)."""

from __future__ import annotations

from collections.abc import Callable

from dataeng_agents.core.errors import ConfigError, InputError
from dataeng_agents.core.experiment.aggregates import parse_rows
from dataeng_agents.core.experiment.config import ConfigSource, load_experiment_config, resolve_warehouse
from dataeng_agents.core.experiment.contract import baseline_moments
from dataeng_agents.core.experiment.narrative import design_narration_task
from dataeng_agents.core.experiment.query import build_experiment_query
from dataeng_agents.core.experiment.steps import Steps, iso, now_iso
from dataeng_agents.core.narrative import Narrator, TemplateNarrator
from dataeng_agents.core.report.model import ExperimentDesignReport, MetricPlan, VariantSummary
from dataeng_agents.core.warehouse.runners import Warehouse
from dataeng_agents.core.warehouse.sql import naive_utc

__all__ = ["design_experiment"]


def design_experiment(
    config: ConfigSource,
    warehouse: Warehouse | str | None = None,
    *,
    narrator: Narrator | None = None,
    progress: bool | Callable[[str], None] = False,
) -> ExperimentDesignReport:
    """Measure baselines in a pre-period and size the experiment.

    The design population (``design.population``, default the assignment source ignoring variants)
    restricted to ``[design.baseline_start, design.baseline_end)`` stands in for the future
    exposures: each unit's first appearance plays the first exposure, so every metric is measured
    exactly as the analysis will measure it (same windows, capping, sources).

    :param config: as for :func:`~dataeng_agents.core.experiment.analysis.analyze_experiment`
        (a config, a dict, a YAML path or text, a lifecycle YAML).
    :param warehouse: a :class:`Warehouse`, a URL (relative DuckDB paths: the working directory) or
        ``None`` for the config's ``warehouse:`` URL (relative to the config file).
    :param narrator: who writes the prose (default :class:`TemplateNarrator`).
    :param progress: ``True`` shows a rich progress bar on stderr; a callable gets each step's name.
    :raises ConfigError: bad config, or ``design.baseline_end`` not after ``design.baseline_start``.
    :raises InputError: no units in the baseline period.
    """
    from dataeng_agents.core.experiment.plan import describe, size_metric
    from dataeng_agents.core.stats import StatsInputError

    cfg = load_experiment_config(config)
    steps = Steps(progress, 3, f"designing {cfg.id}")
    try:
        wh = resolve_warehouse(cfg, warehouse)
        with steps.step("building the query"):
            query = build_experiment_query(
                cfg, wh.dialect, baseline=True, read_dialect=cfg.dialect or wh.dialect
            )
            sql = query.sql()
        with steps.step("running the baseline query"):
            rows = wh.query(sql)
        with steps.step("sizing"):
            agg = parse_rows(query, rows)
    finally:
        steps.close()
    units = agg.overall.units.get("baseline", 0)
    if units < 2:
        src = "design.population" if cfg.design.population else "assignment"
        raise InputError(src, "no units in the baseline period: check design.baseline_start/baseline_end")
    d = cfg.design
    if d.baseline_start is not None and d.baseline_end is not None:
        days = (naive_utc(d.baseline_end) - naive_utc(d.baseline_start)).total_seconds() / 86400
    else:
        days = float(max(len(agg.by_day), 1))
    if days <= 0:
        raise ConfigError("design.baseline_end", "must be after design.baseline_start")
    traffic = units / days
    alpha = d.alpha or cfg.analysis.alpha
    weight_sum = sum(v.weight for v in cfg.variants)
    min_share = min(v.weight for v in cfg.variants) / weight_sum
    stats = agg.overall.stats["baseline"]
    plans: list[MetricPlan] = []
    for m in cfg.metrics:
        base = baseline_moments(m, stats[m.name])
        per_variant: int | None = None
        achieved: float | None = None
        note = None
        if base is None:
            note = "baseline has no variance (or a zero mean) in the pre-period"
        elif m.mde is None:
            note = "no mde set: not sized"
        else:
            try:
                sizing = size_metric(cfg, m, base[0], base[1], power=d.power, alpha=alpha)
                per_variant = sizing.per_variant
                achieved = sizing.power
                note = f"{sizing.power:.0%} power at the MDE for the report's analysis: {describe(cfg, sizing)}"
            except StatsInputError as exc:
                note = str(exc)
        plans.append(
            MetricPlan(
                name=m.name,
                kind=m.kind,
                role=m.role,
                inverse=m.inverse,
                description=m.description,
                baseline_mean=None if base is None else base[0],
                baseline_variance=None if base is None else base[1],
                mde=m.mde,
                per_variant=per_variant,
                power=achieved,
                total=None if per_variant is None else per_variant * len(cfg.variants),
                days=None
                if per_variant is None
                else per_variant / (traffic * d.traffic_fraction * min_share),
                note=note,
            )
        )
    sized_goals = [p.per_variant for p in plans if p.role == "goal" and p.per_variant is not None]
    sized_any = [p.per_variant for p in plans if p.per_variant is not None]
    need = max(sized_goals or sized_any) if (sized_goals or sized_any) else None
    report = ExperimentDesignReport(
        experiment_id=cfg.id,
        name=cfg.name,
        hypothesis=cfg.hypothesis,
        owner=cfg.owner,
        generated_at=now_iso(),
        dialect=wh.dialect,
        baseline_period=(iso(d.baseline_start), iso(d.baseline_end)),
        baseline_units=units,
        baseline_days=days,
        traffic_per_day=traffic,
        traffic_fraction=d.traffic_fraction,
        alpha=alpha,
        power=d.power,
        method=cfg.analysis.method,
        variants=[
            VariantSummary(
                name=v.name,
                is_control=v.name == cfg.control_name,
                weight=v.weight,
                units=0,
                expected_share=v.weight / weight_sum,
                observed_share=0.0,
            )
            for v in cfg.variants
        ],
        metrics=plans,
        per_variant=need,
        duration_days=None if need is None else need / (traffic * d.traffic_fraction * min_share),
        sql=sql,
    )
    report.narrative = (narrator or TemplateNarrator()).narrate(design_narration_task(report))
    return report
