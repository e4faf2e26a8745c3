"""Analyse a running experiment where its data lives.

One warehouse query -> sufficient statistics -> the statistics engine -> health checks -> a decision
by the written rules (:mod:`~dataeng_agents.core.experiment.decision`) -> :class:`ExperimentReport`
with its narrative. Nothing is written to disk here (see :func:`dataeng_agents.core.report.write_report`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from dataeng_agents.core.errors import InputError
from dataeng_agents.core.experiment.aggregates import ExperimentAggregates, GroupStats, parse_rows
from dataeng_agents.core.experiment.config import (
    ConfigSource,
    ExperimentConfig,
    Metric,
    load_experiment_config,
    resolve_warehouse,
)
from dataeng_agents.core.experiment.contract import (
    analyze_tolerant,
    baseline_moments,
    engine_settings,
    finite,
    is_significant,
    metric_mean,
    metric_stats,
    stats_contract,
)
from dataeng_agents.core.experiment.decision import decide
from dataeng_agents.core.experiment.health import health_checks
from dataeng_agents.core.experiment.narrative import experiment_narration_task
from dataeng_agents.core.experiment.query import build_experiment_query
from dataeng_agents.core.experiment.steps import Steps, iso, now_iso
from dataeng_agents.core.experiment.window import DataInterval
from dataeng_agents.core.narrative import Narrator, TemplateNarrator
from dataeng_agents.core.report.model import (
    DimensionRow,
    ExperimentReport,
    MetricSummary,
    ResultRow,
    TimePoint,
    TimeSeries,
    VariantSummary,
)
from dataeng_agents.core.warehouse.runners import Warehouse

__all__ = ["analyze_experiment"]


def analyze_experiment(
    config: ConfigSource,
    warehouse: Warehouse | str | None = None,
    *,
    data_interval: DataInterval | None = None,
    narrator: Narrator | None = None,
    progress: bool | Callable[[str], None] = False,
) -> ExperimentReport:
    """Analyse an experiment in its warehouse and return the report (nothing is written to disk).

    :param config: an :class:`ExperimentConfig`, a dict, a YAML path or YAML text; a lifecycle YAML
        (with ``exploration:``/``tracking:``/``rollout:`` sections) is read the same way
        (:func:`~dataeng_agents.core.experiment.config.load_configs`).
    :param warehouse: a :class:`Warehouse` (``DuckDBWarehouse``, ``DbApiWarehouse``,
        ``SqlAlchemyWarehouse``), a URL (a relative DuckDB path is relative to the working
        directory), or ``None`` for the config's ``warehouse:`` URL (relative to the config file);
        see :func:`~dataeng_agents.core.experiment.config.resolve_warehouse`.
    :param data_interval: ``(start, end)``: only exposures in ``[start, end)`` and events before
        ``end`` are read (a scheduled run passes its data interval; for a cumulative daily report
        pass ``(experiment start, data_interval_end)``).
    :param narrator: who writes the prose (default :class:`TemplateNarrator`).
    :param progress: ``True`` shows a rich progress bar on stderr; a callable gets each step's name.
    :raises ConfigError: bad config (the field path is named).
    :raises WarehouseError: the query failed (missing table, connection refused, …).
    :raises InputError: no exposures, or a variant without units.
    """
    cfg = load_experiment_config(config)
    steps = Steps(progress, 5, f"analysing {cfg.id}")
    try:
        wh = resolve_warehouse(cfg, warehouse)
        with steps.step("building the query"):
            query = build_experiment_query(
                cfg, wh.dialect, data_interval=data_interval, read_dialect=cfg.dialect or wh.dialect
            )
            sql = query.sql()
        with steps.step("running the query"):
            rows = wh.query(sql)
        with steps.step("analysing"):
            agg = parse_rows(query, rows)
            _check_units(cfg, agg, data_interval)
            report = _build_report(cfg, agg, wh.dialect, data_interval, sql)
        with steps.step("writing the narrative"):
            report.narrative = (narrator or TemplateNarrator()).narrate(experiment_narration_task(report))
        with steps.step("done"):
            pass
        report.timings = {k: v for k, v in steps.timings.items() if k != "done"}
        return report
    finally:
        steps.close()


def _check_units(cfg: ExperimentConfig, agg: ExperimentAggregates, interval: DataInterval | None) -> None:
    src = cfg.assignment.table or cfg.assignment.file or "the assignment SELECT"
    if agg.total_units == 0:
        span = ""
        start = interval[0] if interval else cfg.start
        end = interval[1] if interval else cfg.end
        if start or end:
            span = f" between {iso(start) or '…'} and {iso(end) or '…'}"
        raise InputError(
            "assignment",
            f"experiment {cfg.id!r} has no exposures in {src}{span} for variants "
            f"{[v.name for v in cfg.variants]}",
        )
    for i, v in enumerate(cfg.variants):
        if agg.overall.units.get(v.name, 0) == 0:
            raise InputError(
                f"variants[{i}]",
                f"variant {v.name!r} has no exposed units in {src} (check the variant values and the dates)",
            )
    too_small = [v.name for v in cfg.variants if agg.overall.units.get(v.name, 0) < 2]
    if too_small:
        raise InputError(
            "variants", f"variants {too_small} have fewer than 2 units; nothing can be tested yet"
        )


def _planned_units(cfg: ExperimentConfig, agg: ExperimentAggregates) -> int | None:
    if cfg.decision.planned_units_per_variant is not None:
        return cfg.decision.planned_units_per_variant
    from dataeng_agents.core.experiment.plan import size_metric
    from dataeng_agents.core.stats import StatsInputError

    sizes: list[int] = []
    control = agg.overall.stats[cfg.control_name]
    for m in cfg.metrics:
        if m.role != "goal" or m.mde is None:
            continue
        base = baseline_moments(m, control[m.name])
        if base is None:
            continue
        mean, var = base
        try:
            # sized for the analysis the report runs (method, Holm family, log-ratio lift, minimum
            # counts): the fixed-horizon formula's size gives this analysis ~20-65% power, not 80%
            sizes.append(
                size_metric(cfg, m, mean, var, power=cfg.decision.power, alpha=cfg.analysis.alpha).per_variant
            )
        except StatsInputError:
            continue
    return max(sizes) if sizes else None


def _build_report(
    cfg: ExperimentConfig,
    agg: ExperimentAggregates,
    dialect: str,
    interval: DataInterval | None,
    sql: str,
) -> ExperimentReport:
    from dataeng_agents.core.stats import analyze

    control = cfg.control_name
    treatments = [v.name for v in cfg.variants if v.name != control]
    by_name = {m.name: m for m in cfg.metrics}

    # main results: goals + secondary with the configured correction; guardrails uncorrected (a
    # safety alarm should not get less sensitive because more metrics were added)
    primary = [(m.name, m) for m in cfg.metrics if m.role != "guardrail"]
    guards = [(m.name, m) for m in cfg.metrics if m.role == "guardrail"]
    raw: dict[str, Any] = {}
    srm = None
    if primary:
        out = analyze(stats_contract(cfg, agg.overall, primary, engine_settings(cfg), with_units=True))
        srm = out.srm
        raw.update({f"{r.metric}\x00{r.variant}": r for r in out.results})
    if guards:
        out = analyze(
            stats_contract(cfg, agg.overall, guards, engine_settings(cfg, correction="none"), with_units=True)
        )
        srm = srm or out.srm
        raw.update({f"{r.metric}\x00{r.variant}": r for r in out.results})

    units_per_day = _units_per_day(agg)
    results: list[ResultRow] = []
    for m in cfg.metrics:
        cmean = metric_mean(m, agg.overall.stats[control][m.name])
        for v in treatments:
            r = raw[f"{m.name}\x00{v}"]
            sig = is_significant(cfg, r)
            direction = "flat"
            if sig and r.estimate is not None:
                if cfg.analysis.method == "bayesian":
                    direction = "better" if (r.chance_to_win or 0) >= 0.5 else "worse"
                else:
                    up = r.estimate > 0
                    direction = "better" if up != m.inverse else "worse"
            ci = r.ci or (None, None)
            results.append(
                ResultRow(
                    id=f"{m.name}/{v}",
                    metric=m.name,
                    variant=v,
                    role=m.role,
                    kind=m.kind,
                    inverse=m.inverse,
                    # the means the lift compares (CUPED-adjusted when CUPED applies), so the shown
                    # means and the lift agree
                    control_mean=finite(r.control_mean if r.control_mean is not None else cmean),
                    variant_mean=finite(
                        r.variant_mean
                        if r.variant_mean is not None
                        else metric_mean(m, agg.overall.stats[v][m.name])
                    ),
                    estimate=r.estimate,
                    std_error=r.std_error,
                    ci_lower=ci[0],
                    ci_upper=ci[1],
                    p_value=r.p_value,
                    adjusted_p_value=r.adjusted_p_value,
                    adjusted_ci_lower=r.adjusted_ci[0] if r.adjusted_ci else None,
                    adjusted_ci_upper=r.adjusted_ci[1] if r.adjusted_ci else None,
                    chance_to_win=r.chance_to_win,
                    significant=sig,
                    direction=direction,  # type: ignore[arg-type]
                    cuped=m.cuped is not None,
                    error=r.error,
                )
            )
            results[-1] = _with_impact(
                results[-1], units_per_day, relative=cfg.analysis.difference == "relative"
            )

    total_assigned = sum(agg.overall.units.values())
    weight_sum = sum(v.weight for v in cfg.variants)
    variants = [
        VariantSummary(
            name=v.name,
            is_control=v.name == control,
            weight=v.weight,
            units=agg.overall.units.get(v.name, 0),
            expected_share=v.weight / weight_sum,
            observed_share=agg.overall.units.get(v.name, 0) / total_assigned if total_assigned else 0.0,
        )
        for v in cfg.variants
    ]
    planned = _planned_units(cfg, agg)
    health = health_checks(cfg, agg, srm, results, variants, planned, by_name)
    decision = decide(cfg, results, health, variants, planned)

    report = ExperimentReport(
        experiment_id=cfg.id,
        name=cfg.name,
        hypothesis=cfg.hypothesis,
        owner=cfg.owner,
        generated_at=now_iso(),
        data_interval=(str(iso(interval[0])), str(iso(interval[1]))) if interval else None,
        dialect=dialect,
        method=cfg.analysis.method,
        difference=cfg.analysis.difference,
        alpha=cfg.analysis.alpha,
        correction=cfg.analysis.correction,
        control=control,
        total_units=agg.total_units,
        excluded_units=agg.excluded_units,
        planned_units_per_variant=planned,
        units_per_day=units_per_day,
        variants=variants,
        metrics=[
            MetricSummary(
                name=m.name,
                kind=m.kind,
                role=m.role,
                inverse=m.inverse,
                description=m.description,
                mde=m.mde,
                cuped=m.cuped is not None,
                capped=(
                    None
                    if m.capping is None
                    else (
                        f"p{m.capping.percentile * 100:g}" if m.capping.percentile else f"{m.capping.value:g}"
                    )
                ),
                window_hours=m.window,
            )
            for m in cfg.metrics
        ],
        results=results,
        health=health,
        decision=decision,
        timeseries=_timeseries(cfg, agg),
        dimensions=_dimension_rows(cfg, agg),
        sql=sql,
    )
    return report


def _units_per_day(agg: ExperimentAggregates) -> float | None:
    """Units first exposed per day (all variants): the traffic an absolute impact is scaled by."""
    days = [d for d, g in agg.by_day.items() if sum(g.units.values()) > 0]
    if not days:
        return None
    return sum(agg.overall.units.values()) / len(days)


def _with_impact(row: ResultRow, units_per_day: float | None, *, relative: bool) -> ResultRow:
    """``row`` with its absolute impact per day: what a stakeholder plans with (orders per day, not %).

    Per-unit metrics only: a ratio metric's denominator moves with the variant too, so its
    difference times a unit count is no daily total.
    """
    if row.kind == "ratio" or units_per_day is None or row.error or row.estimate is None:
        return row
    if relative:
        if row.control_mean is None:
            return row
        scale = abs(row.control_mean) * units_per_day  # relative lift is (t - c) / |c|
    else:
        scale = units_per_day
    adjusted = row.adjusted_ci_lower is not None and row.adjusted_ci_upper is not None
    low, high = (row.adjusted_ci_lower, row.adjusted_ci_upper) if adjusted else (row.ci_lower, row.ci_upper)
    bounds = sorted(x * scale for x in (low, high) if x is not None) if None not in (low, high) else []
    return row.model_copy(
        update={
            "impact_per_day": finite(row.estimate * scale),
            "impact_ci_lower": finite(bounds[0]) if bounds else None,
            "impact_ci_upper": finite(bounds[1]) if bounds else None,
        }
    )


def _timeseries(cfg: ExperimentConfig, agg: ExperimentAggregates) -> list[TimeSeries]:
    """Cumulative lift by exposure day, with the method's intervals (sequential: confidence sequences)."""
    days = [(d, g) for d, g in agg.cumulative() if all(g.units.get(v.name, 0) >= 2 for v in cfg.variants)]
    if not days:
        return []
    control = cfg.control_name
    entries: list[tuple[str, Metric]] = []
    groups: dict[str, GroupStats] = {}
    # one vectorised call for every (metric, day): the day's group is folded into the metric name
    merged = GroupStats(units=dict(days[-1][1].units))
    for m in cfg.metrics:
        for d, g in days:
            key = f"{m.name}\x00{d}"
            entries.append((key, m))
            groups[key] = g
    for v in cfg.variants:
        merged.stats[v.name] = {}
    contract = stats_contract(cfg, merged, [], engine_settings(cfg, correction="none"), with_units=False)
    contract["metrics"] = [
        {
            "name": key,
            "kind": m.kind,
            "inverse": m.inverse,
            "stats": {v.name: metric_stats(m, groups[key].stats[v.name][m.name]) for v in cfg.variants},
        }
        for key, m in entries
    ]
    out = analyze_tolerant(contract)
    series: list[TimeSeries] = []
    for m in cfg.metrics:
        for name in [x.name for x in cfg.variants if x.name != control]:
            points: list[TimePoint] = []
            for d, g in days:
                r = out.get(f"{m.name}\x00{d}\x00{name}")
                ci = (r.ci if r is not None and r.ci else None) or (None, None)
                points.append(
                    TimePoint(
                        day=d,
                        units=sum(g.units.values()),
                        estimate=None if r is None else r.estimate,
                        ci_lower=ci[0],
                        ci_upper=ci[1],
                    )
                )
            series.append(TimeSeries(metric=m.name, variant=name, points=points))
    return series


def _dimension_rows(cfg: ExperimentConfig, agg: ExperimentAggregates) -> list[DimensionRow]:
    """Per dimension level (exploratory, never a verdict): each slice with its own sample ratio test,
    and Benjamini-Hochberg adjusted p-values over all slice comparisons."""
    if not agg.by_dimension:
        return []
    control = cfg.control_name
    keyed: list[tuple[str, str, str, Metric, GroupStats]] = []
    srm: dict[tuple[str, str], float | None] = {}
    for dim, levels in agg.by_dimension.items():
        for level, g in sorted(levels.items()):
            if not all(g.units.get(v.name, 0) >= 2 for v in cfg.variants):
                continue
            srm[(dim, level)] = _slice_srm(cfg, g)
            for m in cfg.metrics:
                keyed.append((f"{dim}\x01{level}\x01{m.name}", dim, level, m, g))
    if not keyed:
        return []
    contract = stats_contract(
        cfg, GroupStats(), [], engine_settings(cfg, correction="none"), with_units=False
    )
    contract["metrics"] = [
        {
            "name": key,
            "kind": m.kind,
            "inverse": m.inverse,
            "stats": {v.name: metric_stats(m, g.stats[v.name][m.name]) for v in cfg.variants},
        }
        for key, _d, _l, m, g in keyed
    ]
    out = analyze_tolerant(contract)
    rows: list[DimensionRow] = []
    for key, dim, level, m, g in keyed:
        for v in [x.name for x in cfg.variants if x.name != control]:
            r = out.get(f"{key}\x00{v}")
            srm_p = srm[(dim, level)]
            ci = (r.ci if r is not None and r.ci else None) or (None, None)
            rows.append(
                DimensionRow(
                    dimension=dim,
                    level=level,
                    metric=m.name,
                    variant=v,
                    units=g.units.get(v, 0) + g.units.get(control, 0),
                    estimate=None if r is None else r.estimate,
                    ci_lower=ci[0],
                    ci_upper=ci[1],
                    p_value=None if r is None else r.p_value,
                    srm_p_value=srm_p,
                    srm_mismatch=srm_p is not None and srm_p < cfg.analysis.srm_threshold,
                    error="not analysed (the engine rejected this slice)" if r is None else r.error,
                )
            )
    return _with_slice_adjustment(rows)


def _slice_srm(cfg: ExperimentConfig, g: GroupStats) -> float | None:
    from dataeng_agents.core.stats import StatsInputError
    from dataeng_agents.core.stats.srm import srm_test

    try:
        return srm_test(
            [g.units.get(v.name, 0) for v in cfg.variants],
            [v.weight for v in cfg.variants],
            cfg.analysis.srm_threshold,
        ).p_value
    except StatsInputError:
        return None


def _with_slice_adjustment(rows: list[DimensionRow]) -> list[DimensionRow]:
    from dataeng_agents.core.stats.multiple import adjust_pvalues

    raw = [np.nan if r.p_value is None else r.p_value for r in rows]
    adjusted = adjust_pvalues(np.asarray(raw, dtype=np.float64), "bh")
    return [
        r.model_copy(update={"adjusted_p_value": None if np.isnan(a) else float(a)})
        for r, a in zip(rows, adjusted, strict=True)
    ]
