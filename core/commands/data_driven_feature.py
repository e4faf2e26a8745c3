"""The data-driven-feature command: analyse an experiment where its data lives, or design one.

Facade (called by the CLI, the Airflow operators and the Prefect tasks):

* :func:`analyze_experiment` — one warehouse query -> sufficient statistics -> the statistics engine
  -> health checks -> a decision by written rules -> :class:`ExperimentReport` (+ narrative).
* :func:`design_experiment` — baseline query -> power -> :class:`ExperimentDesignReport`.
* :func:`experiment_narration_task` — the :class:`NarrationTask` whose template is the offline prose.

The decision rules (ids referenced by ``Decision.reasons``; documented in docs/experiments.md):

Health (experiment level, checked first; any failure -> ``investigate``):
  H1 sample ratio mismatch (p < ``analysis.srm_threshold``);
  H2 share of units exposed to several variants > ``decision.max_multiple_exposure_rate``;
  H3 a CUPED covariate differs between arms before exposure (p < ``decision.balance_threshold``).
Per variant, in order:
  D1 a guardrail is significantly worse -> ``do not ship``;
  D2 a goal is significantly worse -> ``do not ship``;
  D3 a goal is significantly better and the method allows stopping now (sequential or Bayesian at any
     time; frequentist only once the planned sample is reached) -> ``ship``;
  D4 frequentist, a goal looks significant before the planned sample -> ``keep running`` (peeking);
  D5 the planned sample is reached and no goal moved -> ``do not ship`` (no effect >= the MDE);
  D6 otherwise -> ``keep running``.
Experiment: H1–H3 -> ``investigate``; else the ``ship`` variant with the largest lift on the first goal;
else ``keep running`` if any variant keeps running; else ``do not ship``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any

from dataeng_agents.core.errors import ConfigError, InputError
from dataeng_agents.core.narrative import (
    ExperimentNarrative,
    NarrationTask,
    NarrativePoint,
    Narrator,
    TemplateNarrator,
)
from dataeng_agents.core.report.model import (
    Decision,
    DecisionReason,
    DimensionRow,
    ExperimentDesignReport,
    ExperimentReport,
    HealthCheck,
    MetricPlan,
    MetricSummary,
    ResultRow,
    TimePoint,
    TimeSeries,
    VariantSummary,
    Verdict,
)
from dataeng_agents.core.warehouse.aggregates import ExperimentAggregates, GroupStats, parse_rows
from dataeng_agents.core.warehouse.config import ExperimentConfig, Metric
from dataeng_agents.core.warehouse.runners import Warehouse, warehouse_from_url
from dataeng_agents.core.warehouse.sql import build_experiment_query

ConfigLike = ExperimentConfig | dict[str, Any] | str
DataInterval = tuple[datetime | date, datetime | date]

__all__ = [
    "analyze_experiment",
    "design_experiment",
    "design_narration_task",
    "experiment_narration_task",
    "resolve_warehouse",
]


# --------------------------------------------------------------------------------------------- utils


class _Steps:
    """A rich progress bar on stderr (when enabled) plus per-step timings."""

    def __init__(self, enabled: bool | Callable[[str], None], total: int, title: str) -> None:
        self.timings: dict[str, float] = {}
        self._progress: Any = None
        self._task: Any = None
        self._callback = enabled if callable(enabled) else None
        if enabled is True:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task(title, total=total)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        if self._callback is not None:
            self._callback(name)
        if self._progress is not None:
            self._progress.update(self._task, description=name)
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = round(time.perf_counter() - t0, 4)
            if self._progress is not None:
                self._progress.advance(self._task)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()


def resolve_warehouse(config: ExperimentConfig, warehouse: Warehouse | str | None) -> Warehouse:
    """The given warehouse, a URL, or the config's ``warehouse`` URL (relative to the config file)."""
    if warehouse is None:
        if not config.warehouse:
            raise ConfigError(
                "warehouse", "no warehouse given: pass one (--warehouse URL) or set `warehouse:`"
            )
        return warehouse_from_url(config.warehouse, base_dir=config.base_dir)
    if isinstance(warehouse, str):
        return warehouse_from_url(warehouse)
    return warehouse


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def _iso(value: datetime | date | None) -> str | None:
    return None if value is None else value.isoformat()


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _metric_stats(metric: Metric, s: dict[str, float]) -> dict[str, float]:
    keys = ["n", "sum"]
    if metric.kind != "proportion":
        keys.append("sum_squares")
    if metric.kind == "ratio":
        keys += ["denominator_sum", "denominator_sum_squares", "sum_product_denominator"]
    if metric.cuped is not None:
        keys += ["covariate_sum", "covariate_sum_squares", "sum_product_covariate"]
        if metric.kind == "ratio":
            keys.append("denominator_sum_product_covariate")
    return {k: s[k] for k in keys}


def _mean(metric: Metric, s: dict[str, float] | None) -> float | None:
    if not s:
        return None
    if metric.kind == "ratio":
        return s["sum"] / s["denominator_sum"] if s["denominator_sum"] else None
    return s["sum"] / s["n"] if s["n"] else None


def _settings(
    config: ExperimentConfig, *, correction: str | None = None, method: str | None = None
) -> dict[str, Any]:
    a = config.analysis
    return {
        "method": method or a.method,
        "difference": a.difference,
        "alpha": a.alpha,
        "alternative": "two-sided",
        "sequential_tuning": a.sequential_tuning,
        "prior": None,
        "correction": correction if correction is not None else a.correction,
        "srm_threshold": a.srm_threshold,
    }


def _contract(
    config: ExperimentConfig,
    group: GroupStats,
    entries: Sequence[tuple[str, Metric]],
    settings: dict[str, Any],
    *,
    with_units: bool,
) -> dict[str, Any]:
    """The ``dataeng stats analyze`` input for ``entries`` (result name, metric) over one group."""
    variants: list[dict[str, Any]] = []
    for v in config.variants:
        item: dict[str, Any] = {"name": v.name}
        if with_units:
            item["units"] = group.units.get(v.name, 0)
            item["weight"] = v.weight
        variants.append(item)
    metrics = []
    for name, metric in entries:
        metrics.append(
            {
                "name": name,
                "kind": metric.kind,
                "inverse": metric.inverse,
                "stats": {
                    v.name: _metric_stats(metric, group.stats[v.name][metric.name]) for v in config.variants
                },
            }
        )
    return {"control": config.control_name, "variants": variants, "settings": settings, "metrics": metrics}


def _analyze_tolerant(contract: dict[str, Any]) -> dict[str, Any]:
    """Analyse, dropping metrics the engine rejects (used for days and dimension levels, where a
    thin slice can hold impossible-looking sums): returns ``{name: MetricResult}`` by variant key."""
    from dataeng_agents.core.stats import StatsInputError, analyze

    metrics = list(contract["metrics"])
    for _ in range(len(metrics) + 1):
        if not metrics:
            return {}
        try:
            out = analyze({**contract, "metrics": metrics})
        except StatsInputError as exc:
            bad = exc.metric
            kept = [m for m in metrics if m["name"] != bad]
            if bad is None or len(kept) == len(metrics):
                return {}
            metrics = kept
            continue
        return {f"{r.metric}\x00{r.variant}": r for r in out.results}
    return {}


def _is_significant(config: ExperimentConfig, r: Any) -> bool:
    if r.error is not None:
        return False
    if config.analysis.method == "bayesian":
        ctw = r.chance_to_win
        return ctw is not None and (
            ctw >= config.decision.min_chance_to_win or ctw <= 1.0 - config.decision.min_chance_to_win
        )
    p = r.adjusted_p_value if r.adjusted_p_value is not None else r.p_value
    return p is not None and p < config.analysis.alpha


# ------------------------------------------------------------------------------------------ analysis


def analyze_experiment(
    config: ConfigLike,
    warehouse: Warehouse | str | None = None,
    *,
    data_interval: DataInterval | None = None,
    narrator: Narrator | None = None,
    progress: bool | Callable[[str], None] = False,
) -> ExperimentReport:
    """Analyse an experiment in its warehouse and return the report (nothing is written to disk).

    :param config: an :class:`ExperimentConfig`, a dict, a YAML path or YAML text.
    :param warehouse: a :class:`Warehouse` (``DuckDBWarehouse``, ``DbApiWarehouse``,
        ``SqlAlchemyWarehouse``), a URL, or ``None`` for the config's ``warehouse:`` URL.
    :param data_interval: ``(start, end)``: only exposures in ``[start, end)`` and events before
        ``end`` are read (a scheduled run passes its data interval; for a cumulative daily report
        pass ``(experiment start, data_interval_end)``).
    :param narrator: who writes the prose (default :class:`TemplateNarrator`).
    :param progress: ``True`` shows a rich progress bar on stderr; a callable gets each step's name.
    :raises ConfigError: bad config (the field path is named).
    :raises WarehouseError: the query failed (missing table, connection refused, …).
    :raises InputError: no exposures, or a variant without units.
    """
    cfg = ExperimentConfig.load(config)
    steps = _Steps(progress, 5, f"analysing {cfg.id}")
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
            span = f" between {_iso(start) or '…'} and {_iso(end) or '…'}"
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
    from dataeng_agents.core.stats import StatsInputError, sample_size_per_variant

    sizes: list[int] = []
    control = agg.overall.stats[cfg.control_name]
    for m in cfg.metrics:
        if m.role != "goal" or m.mde is None:
            continue
        base = _baseline(m, control[m.name])
        if base is None:
            continue
        mean, var = base
        try:
            sizes.append(
                sample_size_per_variant(
                    kind="proportion" if m.kind == "proportion" else "mean",
                    baseline_mean=mean,
                    baseline_variance=var,
                    mde=m.mde,
                    mde_type="relative",
                    alpha=cfg.analysis.alpha,
                    power=cfg.decision.power,
                    variants=len(cfg.variants),
                )
            )
        except StatsInputError:
            continue
    return max(sizes) if sizes else None


def _baseline(m: Metric, s: dict[str, float]) -> tuple[float, float] | None:
    """Per-unit mean and variance of a metric from its sums (ratio: delta-method variance of the ratio)."""
    n = s["n"]
    if n < 2:
        return None
    if m.kind == "proportion":
        p = s["sum"] / n
        return (p, p * (1 - p)) if 0 < p < 1 else None
    var_y = (s["sum_squares"] - s["sum"] ** 2 / n) / (n - 1)
    if m.kind == "mean":
        mean = s["sum"] / n
        return (mean, var_y) if var_y > 0 and mean != 0 else None
    mean_d = s["denominator_sum"] / n
    if mean_d == 0:
        return None
    ratio = s["sum"] / s["denominator_sum"]
    var_d = (s["denominator_sum_squares"] - s["denominator_sum"] ** 2 / n) / (n - 1)
    cov = (s["sum_product_denominator"] - s["sum"] * s["denominator_sum"] / n) / (n - 1)
    var = (var_y - 2 * ratio * cov + ratio**2 * var_d) / mean_d**2
    return (ratio, var) if var > 0 and ratio != 0 else None


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
        out = analyze(_contract(cfg, agg.overall, primary, _settings(cfg), with_units=True))
        srm = out.srm
        raw.update({f"{r.metric}\x00{r.variant}": r for r in out.results})
    if guards:
        out = analyze(_contract(cfg, agg.overall, guards, _settings(cfg, correction="none"), with_units=True))
        srm = srm or out.srm
        raw.update({f"{r.metric}\x00{r.variant}": r for r in out.results})

    results: list[ResultRow] = []
    for m in cfg.metrics:
        cmean = _mean(m, agg.overall.stats[control][m.name])
        for v in treatments:
            r = raw[f"{m.name}\x00{v}"]
            sig = _is_significant(cfg, r)
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
                    control_mean=_finite(cmean),
                    variant_mean=_finite(_mean(m, agg.overall.stats[v][m.name])),
                    estimate=r.estimate,
                    std_error=r.std_error,
                    ci_lower=ci[0],
                    ci_upper=ci[1],
                    p_value=r.p_value,
                    adjusted_p_value=r.adjusted_p_value,
                    chance_to_win=r.chance_to_win,
                    significant=sig,
                    direction=direction,  # type: ignore[arg-type]
                    cuped=m.cuped is not None,
                    error=r.error,
                )
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
    health = _health_checks(cfg, agg, srm, results, variants, planned, by_name)
    decision = _decide(cfg, results, health, variants, planned)

    report = ExperimentReport(
        experiment_id=cfg.id,
        name=cfg.name,
        hypothesis=cfg.hypothesis,
        owner=cfg.owner,
        generated_at=_now(),
        data_interval=(str(_iso(interval[0])), str(_iso(interval[1]))) if interval else None,
        dialect=dialect,
        method=cfg.analysis.method,
        difference=cfg.analysis.difference,
        alpha=cfg.analysis.alpha,
        correction=cfg.analysis.correction,
        control=control,
        total_units=agg.total_units,
        excluded_units=agg.excluded_units,
        planned_units_per_variant=planned,
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


def _health_checks(
    cfg: ExperimentConfig,
    agg: ExperimentAggregates,
    srm: Any,
    results: list[ResultRow],
    variants: list[VariantSummary],
    planned: int | None,
    by_name: dict[str, Metric],
) -> list[HealthCheck]:
    checks: list[HealthCheck] = []
    shares = ", ".join(f"{v.name} {v.observed_share:.2%} (expected {v.expected_share:.2%})" for v in variants)
    if srm is not None:
        checks.append(
            HealthCheck(
                id="srm",
                name="Sample ratio",
                status="fail" if srm.mismatch else "pass",
                message=(
                    f"Sample ratio mismatch (p = {srm.p_value:.2g}): {shares}. The assignment or the exposure "
                    "logging is broken; results cannot be trusted."
                    if srm.mismatch
                    else f"Units split as configured (p = {srm.p_value:.3f}): {shares}."
                ),
                value=srm.p_value,
                threshold=cfg.analysis.srm_threshold,
            )
        )
    rate = agg.excluded_units / agg.total_units if agg.total_units else 0.0
    limit = cfg.decision.max_multiple_exposure_rate
    checks.append(
        HealthCheck(
            id="multiple_exposure",
            name="Units in several variants",
            status="fail" if rate > limit else "pass",
            message=(
                f"{agg.excluded_units:,} of {agg.total_units:,} units ({rate:.2%}) saw more than one variant "
                f"and were excluded; the limit is {limit:.2%}."
            ),
            value=rate,
            threshold=limit,
        )
    )
    smallest = min(v.units for v in variants)
    if planned is not None:
        reached = smallest >= planned
        checks.append(
            HealthCheck(
                id="sample_size",
                name="Planned sample size",
                status="pass" if reached else "warn",
                message=(
                    f"The smallest arm has {smallest:,} units of the planned {planned:,} per variant "
                    f"({smallest / planned:.0%})."
                ),
                value=float(smallest),
                threshold=float(planned),
            )
        )
    else:
        checks.append(
            HealthCheck(
                id="sample_size",
                name="Planned sample size",
                status="warn",
                message="No planned sample size: set decision.planned_units_per_variant or an mde on a goal metric.",
                value=float(smallest),
            )
        )
    cuped = [m for m in cfg.metrics if m.cuped is not None]
    if cuped:
        checks.append(_balance_check(cfg, agg, cuped))
    guard_fail = [r for r in results if r.role == "guardrail" and r.significant and r.direction == "worse"]
    if any(m.role == "guardrail" for m in by_name.values()):
        checks.append(
            HealthCheck(
                id="guardrails",
                name="Guardrail metrics",
                status="fail" if guard_fail else "pass",
                message=(
                    "Significant guardrail regressions: " + ", ".join(r.id for r in guard_fail) + "."
                    if guard_fail
                    else "No guardrail metric is significantly worse."
                ),
                refs=[r.id for r in guard_fail],
            )
        )
    return checks


def _balance_check(cfg: ExperimentConfig, agg: ExperimentAggregates, cuped: list[Metric]) -> HealthCheck:
    """Pre-period balance: the CUPED covariates must not differ between arms before exposure."""
    contract: dict[str, Any] = {
        "control": cfg.control_name,
        "variants": [{"name": v.name} for v in cfg.variants],
        "settings": {"method": "frequentist", "difference": "absolute", "alpha": cfg.analysis.alpha},
        "metrics": [
            {
                "name": m.name,
                "kind": "mean",
                "stats": {
                    v.name: {
                        "n": s["n"],
                        "sum": s["covariate_sum"],
                        "sum_squares": s["covariate_sum_squares"],
                    }
                    for v in cfg.variants
                    for s in [agg.overall.stats[v.name][m.name]]
                },
            }
            for m in cuped
        ],
    }
    out = _analyze_tolerant(contract)
    threshold = cfg.decision.balance_threshold
    bad = [r for r in out.values() if r.p_value is not None and r.p_value < threshold]
    ps = [r.p_value for r in out.values() if r.p_value is not None]
    return HealthCheck(
        id="pre_period_balance",
        name="Pre-period balance (CUPED covariates)",
        status="fail" if bad else "pass",
        message=(
            "Arms differed before exposure: "
            + ", ".join(f"{r.metric}/{r.variant} (p = {r.p_value:.2g})" for r in bad)
            if bad
            else f"CUPED covariates balanced across arms (smallest p = {min(ps):.3f})."
            if ps
            else "CUPED covariates could not be compared (no variance)."
        ),
        value=min(ps) if ps else None,
        threshold=threshold,
        refs=[f"{r.metric}/{r.variant}" for r in bad],
    )


def _decide(
    cfg: ExperimentConfig,
    results: list[ResultRow],
    health: list[HealthCheck],
    variants: list[VariantSummary],
    planned: int | None,
) -> Decision:
    reasons: list[DecisionReason] = []
    rules = {"srm": "H1", "multiple_exposure": "H2", "pre_period_balance": "H3"}
    failing = [h for h in health if h.id in rules and h.status == "fail"]
    per_variant: dict[str, Verdict] = {}
    units = {v.name: v.units for v in variants}
    method = cfg.analysis.method
    ship_candidates: list[str] = []
    for v in [x.name for x in variants if not x.is_control]:
        rs = [r for r in results if r.variant == v]
        reached = planned is not None and units[v] >= planned and units[cfg.control_name] >= planned
        guard_bad = [r for r in rs if r.role == "guardrail" and r.significant and r.direction == "worse"]
        goal_bad = [r for r in rs if r.role == "goal" and r.significant and r.direction == "worse"]
        goal_good = [r for r in rs if r.role == "goal" and r.significant and r.direction == "better"]
        verdict: Verdict
        if guard_bad:
            verdict = "do not ship"
            reasons.append(
                DecisionReason(
                    rule="D1",
                    text=f"{v}: guardrail regressed ({', '.join(r.metric for r in guard_bad)}).",
                    refs=[r.id for r in guard_bad],
                )
            )
        elif goal_bad:
            verdict = "do not ship"
            reasons.append(
                DecisionReason(
                    rule="D2",
                    text=f"{v}: goal metric worse ({', '.join(r.metric for r in goal_bad)}).",
                    refs=[r.id for r in goal_bad],
                )
            )
        elif goal_good and (method != "frequentist" or reached):
            verdict = "ship"
            ship_candidates.append(v)
            reasons.append(
                DecisionReason(
                    rule="D3",
                    text=f"{v}: goal metric better ({', '.join(r.metric for r in goal_good)}) with no guardrail regression.",
                    refs=[r.id for r in goal_good],
                )
            )
        elif goal_good:
            verdict = "keep running"
            reasons.append(
                DecisionReason(
                    rule="D4",
                    text=f"{v}: a fixed-horizon (frequentist) result before the planned sample is peeking; keep running to the plan.",
                    refs=[r.id for r in goal_good],
                )
            )
        elif reached:
            verdict = "do not ship"
            reasons.append(
                DecisionReason(
                    rule="D5",
                    text=f"{v}: planned sample reached and no goal metric moved by the minimum detectable effect.",
                    refs=[r.id for r in rs if r.role == "goal"],
                )
            )
        else:
            verdict = "keep running"
            reasons.append(
                DecisionReason(
                    rule="D6",
                    text=f"{v}: no conclusive goal result yet"
                    + (f" ({units[v]:,} of {planned:,} planned units)." if planned else "."),
                    refs=[r.id for r in rs if r.role == "goal"],
                )
            )
        per_variant[v] = verdict

    if failing:
        health_reasons = [
            DecisionReason(rule=rules[h.id], text=h.message, refs=[f"check:{h.id}", *h.refs]) for h in failing
        ]
        return Decision(
            verdict="investigate", variant=None, per_variant=per_variant, reasons=health_reasons + reasons
        )
    if ship_candidates:
        first_goal = next((m.name for m in cfg.metrics if m.role == "goal"), None)

        def lift(v: str) -> float:
            r = next((r for r in results if r.variant == v and r.metric == first_goal), None)
            if r is None or r.estimate is None:
                return -math.inf
            return -r.estimate if r.inverse else r.estimate

        best = max(ship_candidates, key=lift)
        return Decision(verdict="ship", variant=best, per_variant=per_variant, reasons=reasons)
    if any(v == "keep running" for v in per_variant.values()):
        return Decision(verdict="keep running", per_variant=per_variant, reasons=reasons)
    return Decision(verdict="do not ship", per_variant=per_variant, reasons=reasons)


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
    contract = _contract(cfg, merged, [], _settings(cfg, correction="none"), with_units=False)
    contract["metrics"] = [
        {
            "name": key,
            "kind": m.kind,
            "inverse": m.inverse,
            "stats": {v.name: _metric_stats(m, groups[key].stats[v.name][m.name]) for v in cfg.variants},
        }
        for key, m in entries
    ]
    out = _analyze_tolerant(contract)
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
    """Per dimension level (exploratory: no multiple-testing correction across slices)."""
    if not agg.by_dimension:
        return []
    control = cfg.control_name
    keyed: list[tuple[str, str, str, Metric, GroupStats]] = []
    for dim, levels in agg.by_dimension.items():
        for level, g in sorted(levels.items()):
            if not all(g.units.get(v.name, 0) >= 2 for v in cfg.variants):
                continue
            for m in cfg.metrics:
                keyed.append((f"{dim}\x01{level}\x01{m.name}", dim, level, m, g))
    if not keyed:
        return []
    contract = _contract(cfg, GroupStats(), [], _settings(cfg, correction="none"), with_units=False)
    contract["metrics"] = [
        {
            "name": key,
            "kind": m.kind,
            "inverse": m.inverse,
            "stats": {v.name: _metric_stats(m, g.stats[v.name][m.name]) for v in cfg.variants},
        }
        for key, _d, _l, m, g in keyed
    ]
    out = _analyze_tolerant(contract)
    rows: list[DimensionRow] = []
    for key, dim, level, m, g in keyed:
        for v in [x.name for x in cfg.variants if x.name != control]:
            r = out.get(f"{key}\x00{v}")
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
                    error="not analysed (the engine rejected this slice)" if r is None else r.error,
                )
            )
    return rows


# ----------------------------------------------------------------------------------------- narrative


def fmt_effect(value: float | None, difference: str) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.1%}" if difference == "relative" else f"{value:+.4g}"


def _ci_text(r: ResultRow, difference: str, alpha: float) -> str:
    if r.ci_lower is None and r.ci_upper is None:
        return ""
    level = f"{1 - alpha:.0%}"
    return f" ({level} CI {fmt_effect(r.ci_lower, difference)} to {fmt_effect(r.ci_upper, difference)})"


def _template_narrative(report: ExperimentReport) -> ExperimentNarrative:
    d = report.decision
    diff = report.difference
    goals = [r for r in report.results if r.role == "goal"]
    failing = [h for h in report.health if h.status == "fail"]

    def describe(r: ResultRow) -> str:
        state = f"significantly {r.direction}" if r.significant else "not significantly different"
        if r.error:
            return f"{r.metric} for {r.variant}: not computed ({r.error})"
        return f"{r.metric} for {r.variant}: {fmt_effect(r.estimate, diff)}{_ci_text(r, diff, report.alpha)}, {state}"

    if d.verdict == "ship" and d.variant:
        best = next((r for r in goals if r.variant == d.variant and r.significant), None)
        headline = f"Ship {d.variant}" + (
            f": {best.metric} {fmt_effect(best.estimate, diff)}{_ci_text(best, diff, report.alpha)}"
            if best
            else ""
        )
    elif d.verdict == "investigate":
        headline = (
            "Investigate before reading the results: "
            + "; ".join(h.name.lower() for h in failing)
            + " failed"
        )
    elif d.verdict == "do not ship":
        bad = [r for r in report.results if r.significant and r.direction == "worse"]
        headline = (
            "Do not ship: "
            + ", ".join(f"{r.metric} {fmt_effect(r.estimate, diff)} for {r.variant}" for r in bad[:3])
            if bad
            else "Do not ship: no goal metric moved at the planned sample size"
        )
    else:
        headline = "Keep running: no goal metric has a conclusive result yet"

    units = ", ".join(f"{v.name} {v.units:,}" for v in report.variants)
    method_text = {
        "sequential": "sequential (always-valid) confidence intervals, safe to look at every day",
        "frequentist": "fixed-horizon frequentist tests, valid once at the planned sample size",
        "bayesian": "a Bayesian model (chance to win and expected loss)",
    }.get(report.method, report.method)
    summary = (
        f"{report.total_units:,} units were exposed ({units}; {report.excluded_units:,} excluded for seeing "
        f"several variants). Results use {method_text}"
        + (
            f", with {report.correction} correction across goal and secondary metrics."
            if report.correction != "none"
            else "."
        )
    )
    key_points = [NarrativePoint(text=describe(r), refs=[r.id]) for r in goals]
    key_points += [
        NarrativePoint(text=describe(r), refs=[r.id])
        for r in report.results
        if r.role != "goal" and r.significant
    ]
    key_points += [NarrativePoint(text=f"{h.name}: {h.message}", refs=[f"check:{h.id}"]) for h in failing]
    recommendation = (
        {
            "ship": f"Ship {d.variant}.",
            "do not ship": "Do not ship the tested variants.",
            "keep running": "Keep the experiment running and look again tomorrow.",
            "investigate": "Do not act on the results; fix the data problem first.",
        }[d.verdict]
        + " "
        + " ".join(r.text for r in d.reasons[:4])
    )
    caveats = []
    if report.method == "sequential":
        caveats.append(
            "Sequential intervals are wider than fixed-horizon ones; that is the price of daily looks."
        )
    if report.method == "frequentist":
        caveats.append(
            "Frequentist p-values are valid only at the planned sample size; do not stop early on them."
        )
    if report.dimensions:
        caveats.append("Dimension slices are exploratory: they are not corrected for the number of slices.")
    if any(m.capped for m in report.metrics):
        caveats.append("Capped metrics estimate the effect on capped values, not on raw totals.")
    next_steps = {
        "ship": [
            "Roll out gradually and keep the guardrails monitored.",
            "Archive this report with the decision.",
        ],
        "do not ship": ["Record the learning; revisit the hypothesis or the MDE before re-testing."],
        "keep running": ["Let the scheduled report run until the planned sample size is reached."],
        "investigate": [
            "Check assignment and exposure logging (bucketing, bots, redirects, caching) before re-running."
        ],
    }[d.verdict]
    return ExperimentNarrative(
        headline=headline,
        summary=summary,
        key_points=key_points,
        recommendation=recommendation.strip(),
        caveats=caveats,
        next_steps=next_steps,
    )


def _facts(report: ExperimentReport) -> dict[str, Any]:
    return {
        "experiment": {
            "id": report.experiment_id,
            "name": report.name,
            "hypothesis": report.hypothesis,
            "method": report.method,
            "difference": report.difference,
            "alpha": report.alpha,
            "correction": report.correction,
            "total_units": report.total_units,
            "excluded_units": report.excluded_units,
            "planned_units_per_variant": report.planned_units_per_variant,
            "variants": [v.model_dump() for v in report.variants],
        },
        "decision": report.decision.model_dump(),
        "results": [r.model_dump() for r in report.results],
        "health": [{**h.model_dump(), "id": f"check:{h.id}"} for h in report.health],
    }


def experiment_narration_task(report: ExperimentReport) -> NarrationTask[ExperimentNarrative]:
    """The narration task of an analysis: facts with stable ids, the deterministic template."""
    return NarrationTask(
        kind="experiment",
        subject_id=report.experiment_id,
        facts=_facts(report),
        output_model=ExperimentNarrative,
        template=lambda: _template_narrative(report),
        persona="data-engineer",
    )


# -------------------------------------------------------------------------------------------- design


def design_experiment(
    config: ConfigLike,
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
    """
    from dataeng_agents.core.stats import StatsInputError, sample_size_per_variant

    cfg = ExperimentConfig.load(config)
    steps = _Steps(progress, 3, f"designing {cfg.id}")
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
        from dataeng_agents.core.warehouse.sql import _as_dt

        days = (_as_dt(d.baseline_end) - _as_dt(d.baseline_start)).total_seconds() / 86400
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
        base = _baseline(m, stats[m.name])
        per_variant: int | None = None
        note = None
        if base is None:
            note = "baseline has no variance (or a zero mean) in the pre-period"
        elif m.mde is None:
            note = "no mde set: not sized"
        else:
            try:
                per_variant = sample_size_per_variant(
                    kind="proportion" if m.kind == "proportion" else "mean",
                    baseline_mean=base[0],
                    baseline_variance=base[1],
                    mde=m.mde,
                    mde_type="relative",
                    alpha=alpha,
                    power=d.power,
                    variants=len(cfg.variants),
                )
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
        generated_at=_now(),
        dialect=wh.dialect,
        baseline_period=(_iso(d.baseline_start), _iso(d.baseline_end)),
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


def _design_template(report: ExperimentDesignReport) -> ExperimentNarrative:
    if report.per_variant is None:
        headline = "No metric could be sized: set an mde on the goal metrics"
    else:
        headline = (
            f"{report.per_variant:,} units per variant, about {math.ceil(report.duration_days or 0)} days "
            f"at {report.traffic_per_day:,.0f} units/day"
        )
    points = [
        NarrativePoint(
            text=(
                f"{p.name} ({p.role}): baseline {p.baseline_mean:.4g}"
                + (
                    f", needs {p.per_variant:,} per variant for a {p.mde:.1%} lift"
                    if p.per_variant and p.mde
                    else ""
                )
                + (f" — {p.note}" if p.note else "")
            )
            if p.baseline_mean is not None
            else f"{p.name} ({p.role}): {p.note}",
            refs=[f"metric:{p.name}"],
        )
        for p in report.metrics
    ]
    caveats = [
        "Sizes are for a fixed-horizon two-sided test (Bonferroni-split across arms); a sequential analysis "
        "reaches the same power somewhat later.",
        "The baseline period stands in for the experiment period: seasonality and novelty effects are not modelled.",
    ]
    return ExperimentNarrative(
        headline=headline,
        summary=report.hypothesis or "No hypothesis written yet.",
        key_points=points,
        recommendation="Run until every arm reaches the planned sample size; decide by the written rules.",
        caveats=caveats,
        next_steps=[
            "Review the metric plan with the team before launch.",
            "Schedule the daily analysis report.",
        ],
    )


def design_narration_task(report: ExperimentDesignReport) -> NarrationTask[ExperimentNarrative]:
    return NarrationTask(
        kind="plan",
        subject_id=report.experiment_id,
        facts={"design": report.model_dump(exclude={"sql", "narrative"})},
        output_model=ExperimentNarrative,
        template=lambda: _design_template(report),
        persona="data-engineer",
    )
