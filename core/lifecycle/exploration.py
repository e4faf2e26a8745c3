"""Exploration of candidate metrics over a pre-period, before an experiment is designed.

Two aggregate queries per metric source, both returning a handful of rows:

* **daily** — per calendar day of the pre-period: population units (from ``design.population``, or
  the metric's own source), and per metric the sum and sum of squares of each unit's daily value
  (0 for units without events that day; proportions are 0/1). From these: daily level and
  variance, traffic per day, day-of-week seasonality (weekday index and a one-way ANOVA of daily
  means by weekday).
* **windows** — per metric, the units active in the last ``W`` days (the metric's own outcome
  window, as if the experiment had run then), each unit's metric summed over that window (``Y``)
  and over the ``P`` days before (``X``, the CUPED covariate; ``P`` the metric's ``cuped.pre_window``): ``n, ΣX, ΣY, ΣX², ΣY², ΣXY`` → correlation ρ and the expected CUPED
  variance reduction ``1 − (1 − ρ²) = ρ²``; percentiles of ``Y`` and the variance left after
  capping at each candidate percentile → a suggested capping percentile.

The result feeds the design (baseline mean and variance per unit over the planned window, units per
day) and is rendered into the design document.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from dataeng_agents.core.errors import ConfigError, InputError
from dataeng_agents.core.lifecycle.config import LifecycleConfig
from dataeng_agents.core.lifecycle.sources import col, find_metric, ts_literal
from dataeng_agents.core.warehouse.sql import percentiles_select
from pydantic import BaseModel, ConfigDict, Field
from sqlglot import exp

if TYPE_CHECKING:
    from dataeng_agents.core.experiment.config import ExperimentConfig, Metric, Source
    from dataeng_agents.core.warehouse import Warehouse

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


class DailyPoint(BaseModel):
    model_config = ConfigDict(extra="forbid")

    day: date
    units: int
    mean: float | None
    variance: float | None


class TailSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    percentiles: dict[str, float] = Field(
        description="Percentile of the per-unit window value, e.g. {'0.99': 412.5}."
    )
    max: float
    variance_after_capping: dict[str, float]
    suggested_capping_percentile: float | None
    variance_reduction_from_capping: float = Field(
        description="Share of variance removed by the suggested cap."
    )
    mean_shift_from_capping: float = Field(description="Relative change of the mean under the suggested cap.")


class MetricExploration(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    metric: str
    kind: Literal["proportion", "mean"]
    daily: list[DailyPoint]
    level: float | None = Field(description="Mean of the daily means.")
    level_sd: float | None = Field(description="Standard deviation of the daily means across days.")
    daily_variance: float | None = Field(description="Mean over days of the per-unit daily variance.")
    weekday_index: dict[str, float | None] = Field(description="Weekday mean / overall mean of daily means.")
    seasonality_amplitude: float | None = Field(description="max/min weekday index - 1.")
    seasonality_p_value: float | None = Field(description="One-way ANOVA of daily means by weekday.")
    window_days: int = Field(description="Outcome window W: the metric's own `window` (whole days).")
    covariate_days: int | None = Field(
        default=None, description="CUPED covariate window: the metric's `cuped.pre_window` (default W)."
    )
    window_units: int
    window_mean: float | None = Field(description="Per-unit mean over the outcome window (design baseline).")
    window_variance: float | None = Field(description="Per-unit variance over the outcome window.")
    pre_post_correlation: float | None
    expected_cuped_variance_reduction: float | None = Field(
        description="ρ²: share of variance CUPED removes."
    )
    tails: TailSummary | None = None
    notes: list[str] = Field(default_factory=list)


class TrafficSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str
    daily: list[dict[str, Any]] = Field(description="[{day, units, new_units}]")
    mean_units_per_day: float
    mean_new_units_per_day: float
    weekday_index: dict[str, float | None]
    window_units: int = Field(
        description="Distinct units active in a window of `window_days` (experiment-sized)."
    )
    reach: dict[int, int] = Field(description="Distinct units active in the last h days, by h.")

    def units_in(self, days: int) -> float:
        """Distinct units an experiment of ``days`` days would see: measured, or extrapolated with the
        inflow of new units beyond the longest measured horizon."""
        if days in self.reach:
            return float(self.reach[days])
        hs = sorted(self.reach)
        lower = [h for h in hs if h <= days]
        upper = [h for h in hs if h >= days]
        if lower and upper:
            h0, h1 = lower[-1], upper[0]
            f = (days - h0) / (h1 - h0)
            return self.reach[h0] + f * (self.reach[h1] - self.reach[h0])
        if not lower:
            return self.reach[hs[0]] * days / hs[0]
        h = hs[-1]
        return self.reach[h] + (days - h) * self.mean_new_units_per_day


class ExplorationReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    experiment_id: str
    start: date
    end: date = Field(description="Last day, inclusive.")
    window_days: int
    traffic: TrafficSummary
    metrics: list[MetricExploration]
    skipped: dict[str, str] = Field(default_factory=dict)

    def metric(self, name: str) -> MetricExploration:
        for m in self.metrics:
            if m.metric == name:
                return m
        raise InputError("metric", f"{name!r} was not explored ({[m.metric for m in self.metrics]})")

    def design_inputs(self) -> dict[str, Any]:
        """Baselines for the power calculation: per metric mean and variance per unit, units per day."""
        return {
            "units_per_day": self.traffic.mean_new_units_per_day,
            "reach": self.traffic.reach,
            "window_units": self.traffic.window_units,
            "window_days": self.window_days,
            "metrics": {
                m.metric: {
                    "kind": m.kind,
                    "baseline_mean": m.window_mean,
                    "baseline_variance": m.window_variance,
                    "cuped_variance_reduction": m.expected_cuped_variance_reduction,
                    "suggested_capping_percentile": m.tails.suggested_capping_percentile if m.tails else None,
                }
                for m in self.metrics
            },
        }

    def summary(self) -> dict[str, Any]:
        return {
            "experiment_id": self.experiment_id,
            "period": [self.start.isoformat(), self.end.isoformat()],
            "units_per_day": round(self.traffic.mean_units_per_day, 1),
            "metrics": {
                m.metric: {
                    "level": m.level,
                    "seasonality_amplitude": m.seasonality_amplitude,
                    "cuped_variance_reduction": m.expected_cuped_variance_reduction,
                    "suggested_capping_percentile": m.tails.suggested_capping_percentile if m.tails else None,
                }
                for m in self.metrics
            },
        }

    def to_markdown(self, *, heading: str = "#") -> str:
        h2 = heading + "#"
        t = self.traffic
        lines = [
            f"{heading} Exploration — {self.experiment_id}",
            "",
            f"Pre-period {self.start} … {self.end} ({(self.end - self.start).days + 1} days); each metric "
            "over its own window (W days) after a covariate window (P days) for CUPED.",
            "",
            f"{h2} Traffic",
            "",
            f"Source `{t.source}`: {t.mean_units_per_day:,.0f} active units per day, {t.mean_new_units_per_day:,.0f} "
            f"new per day; distinct units in the last "
            + ", ".join(f"{h} d: {u:,}" for h, u in t.reach.items())
            + ".",
            "",
            "| " + " | ".join(WEEKDAYS) + " |",
            "|" + "---:|" * 7,
            "| " + " | ".join(_fmt(t.weekday_index.get(d), ".2f") for d in WEEKDAYS) + " |",
            "",
            f"{h2} Metrics",
            "",
            "| metric | daily level | sd of daily level | daily unit variance | weekday amplitude (p) "
            "| W / P days | per-unit window mean | variance | ρ pre/post | CUPED reduction | suggested cap |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for m in self.metrics:
            cap = m.tails.suggested_capping_percentile if m.tails else None
            lines.append(
                f"| {m.metric} | {_fmt(m.level)} | {_fmt(m.level_sd)} | {_fmt(m.daily_variance)} | "
                f"{_fmt(m.seasonality_amplitude, '.1%')} ({_fmt(m.seasonality_p_value, '.2g')}) | "
                f"{m.window_days} / {m.covariate_days if m.covariate_days is not None else m.window_days} | {_fmt(m.window_mean)} | "
                f"{_fmt(m.window_variance)} | {_fmt(m.pre_post_correlation, '.3f')} | "
                f"{_fmt(m.expected_cuped_variance_reduction, '.1%')} | {'p' + format(cap * 100, 'g') if cap else 'none'} |"
            )
        for m in self.metrics:
            if m.notes:
                lines += ["", f"*{m.metric}*: " + " ".join(m.notes)]
        if self.skipped:
            lines += ["", "Not explored: " + "; ".join(f"{k} ({v})" for k, v in self.skipped.items())]
        return "\n".join(lines) + "\n"


def _fmt(x: float | None, spec: str = ",.4g") -> str:
    return "—" if x is None else format(x, spec)


# --------------------------------------------------------------------------------------- the queries
def _metric_value(metric: Metric, index: int, dialect: str) -> exp.Expr:
    from dataeng_agents.core.warehouse import parse_scalar

    if metric.kind == "proportion":
        return exp.Literal.number(1)
    assert metric.value is not None
    return exp.cast(parse_scalar(metric.value, dialect, f"metrics[{index}].value"), "DOUBLE")


def _source_rows(
    cfg: ExperimentConfig,
    src: Source,
    path: str,
    dialect: str,
    lo: datetime,
    hi: datetime,
    values: dict[str, exp.Expr],
) -> exp.Select:
    from dataeng_agents.core.warehouse import parse_scalar
    from dataeng_agents.core.warehouse.sql import source_from

    q = exp.select(
        exp.alias_(col(src.unit), "unit_id"),
        exp.alias_(col(src.timestamp), "ts"),
        *[exp.alias_(v, k) for k, v in values.items()],
    ).from_(source_from(src, dialect, path, cfg.base_dir))
    conds: list[exp.Expr] = [
        col(src.timestamp) >= ts_literal(lo, dialect),
        col(src.timestamp) < ts_literal(hi, dialect),
    ]
    if src.where:
        conds.append(parse_scalar(src.where, dialect, f"{path}.where"))
    return q.where(exp.and_(*conds))


def _agg_value(metric: Metric, alias: str, cond: exp.Expr | None) -> exp.Expr:
    v: exp.Expr = col(alias, "e")
    if cond is not None:
        v = exp.Case(ifs=[exp.If(this=cond, true=v)])
    if metric.kind == "proportion":
        return exp.Coalesce(this=exp.Max(this=v), expressions=[exp.Literal.number(0)])
    return exp.Coalesce(this=exp.Sum(this=v), expressions=[exp.Literal.number(0)])


def daily_query(
    cfg: ExperimentConfig,
    metrics: list[tuple[int, Metric]],
    population: Source,
    population_path: str,
    dialect: str,
    start: date,
    end: date,
) -> exp.Select:
    """Per day: population units and, per metric, Σ value and Σ value² over the population."""
    lo, hi = _dt(start), _dt(end + timedelta(days=1))
    pop = (
        exp.select(col("unit_id"), exp.alias_(exp.cast(col("ts"), "DATE"), "day"))
        .from_(_source_rows(cfg, population, population_path, dialect, lo, hi, {}).subquery("p"))
        .distinct()
    )
    q = exp.select(col("day", "pop"), exp.alias_(exp.Count(this=exp.Star()), "units")).from_(
        pop.subquery("pop")
    )
    by_source: dict[str, list[tuple[int, Metric]]] = {}
    for i, m in metrics:
        by_source.setdefault(m.source if isinstance(m.source, str) else f"__inline{i}", []).append((i, m))
    for k, (key, members) in enumerate(by_source.items()):
        src = cfg.metric_source(members[0][1])
        spath = f"sources.{key}" if not key.startswith("__inline") else f"metrics[{members[0][0]}].source"
        values = {f"v{i}": _metric_value(m, i, dialect) for i, m in members}
        rows = _source_rows(cfg, src, spath, dialect, lo, hi, values)
        per_day = (
            exp.select(
                col("unit_id", "e"),
                exp.alias_(exp.cast(col("ts", "e"), "DATE"), "day"),
                *[exp.alias_(_agg_value(m, f"v{i}", None), f"m{i}") for i, m in members],
            )
            .from_(rows.subquery("e"))
            .group_by(col("unit_id", "e"), exp.cast(col("ts", "e"), "DATE"))
        )
        a = f"s{k}"
        q = q.join(
            per_day.subquery(a),
            on=exp.and_(
                exp.EQ(this=col("unit_id", a), expression=col("unit_id", "pop")),
                exp.EQ(this=col("day", a), expression=col("day", "pop")),
            ),
            join_type="left",
        )
        for i, _m in members:
            v = exp.Coalesce(this=col(f"m{i}", a), expressions=[exp.Literal.number(0)])
            q = q.select(
                exp.alias_(exp.Sum(this=v), f"m{i}_sum"),
                exp.alias_(exp.Sum(this=exp.Mul(this=v.copy(), expression=v.copy())), f"m{i}_ss"),
            )
    return q.group_by(col("day", "pop")).order_by(col("day", "pop"))


def new_units_query(
    population: Source, path: str, cfg: ExperimentConfig, dialect: str, start: date, end: date
) -> exp.Select:
    lo, hi = _dt(start), _dt(end + timedelta(days=1))
    first = (
        exp.select(col("unit_id"), exp.alias_(exp.cast(exp.Min(this=col("ts")), "DATE"), "day"))
        .from_(_source_rows(cfg, population, path, dialect, lo, hi, {}).subquery("p"))
        .group_by(col("unit_id"))
    )
    return (
        exp.select(col("day"), exp.alias_(exp.Count(this=exp.Star()), "new_units"))
        .from_(first.subquery("f"))
        .group_by(col("day"))
        .order_by(col("day"))
    )


def reach_query(
    population: Source,
    path: str,
    cfg: ExperimentConfig,
    dialect: str,
    start: date,
    end: date,
    horizons: list[int],
) -> exp.Select:
    """Distinct units active in the last ``h`` days of the pre-period, for each horizon ``h``."""
    lo, hi = _dt(start), _dt(end + timedelta(days=1))
    rows = _source_rows(cfg, population, path, dialect, lo, hi, {}).subquery("p")
    cols = [
        exp.alias_(
            exp.Count(
                this=exp.Distinct(
                    expressions=[
                        exp.Case(
                            ifs=[
                                exp.If(
                                    this=col("ts") >= ts_literal(_dt(end + timedelta(days=1 - h)), dialect),
                                    true=col("unit_id"),
                                )
                            ]
                        )
                    ]
                )
            ),
            f"d{h}",
        )
        for h in horizons
    ]
    return exp.select(*cols).from_(rows)


def window_query(
    cfg: ExperimentConfig,
    metric: Metric,
    index: int,
    population: Source,
    population_path: str,
    dialect: str,
    outcome_start: date,
    end: date,
    covariate_days: int,
    percentiles: list[float],
) -> exp.Select:
    """Units active in the outcome window; Y (outcome window) and X (the ``covariate_days`` before)
    per unit → moments, cross moment, percentiles of Y and capped moments of Y."""
    o_lo, hi = _dt(outcome_start), _dt(end + timedelta(days=1))
    c_lo = _dt(outcome_start - timedelta(days=covariate_days))
    pop = (
        exp.select(col("unit_id"))
        .from_(_source_rows(cfg, population, population_path, dialect, o_lo, hi, {}).subquery("p"))
        .distinct()
    )
    src = cfg.metric_source(metric)
    spath = f"sources.{metric.source}" if isinstance(metric.source, str) else f"metrics[{index}].source"
    rows = _source_rows(cfg, src, spath, dialect, c_lo, hi, {"v": _metric_value(metric, index, dialect)})
    in_outcome = col("ts", "e") >= ts_literal(o_lo, dialect)
    per_unit = (
        exp.select(
            col("unit_id", "e"),
            exp.alias_(_agg_value(metric, "v", in_outcome), "y"),
            exp.alias_(_agg_value(metric, "v", exp.Not(this=in_outcome.copy())), "x"),
        )
        .from_(rows.subquery("e"))
        .group_by(col("unit_id", "e"))
    )
    uv = (
        exp.select(
            col("unit_id", "pop"),
            exp.alias_(exp.Coalesce(this=col("y", "s"), expressions=[exp.Literal.number(0)]), "y"),
            exp.alias_(exp.Coalesce(this=col("x", "s"), expressions=[exp.Literal.number(0)]), "x"),
        )
        .from_(pop.subquery("pop"))
        .join(
            per_unit.subquery("s"),
            on=exp.EQ(this=col("unit_id", "s"), expression=col("unit_id", "pop")),
            join_type="left",
        )
    )
    y, x = exp.cast(col("y", "uv"), "DOUBLE"), exp.cast(col("x", "uv"), "DOUBLE")
    cols: list[exp.Expr] = [
        exp.alias_(exp.Count(this=exp.Star()), "n"),
        exp.alias_(exp.Sum(this=y), "sy"),
        exp.alias_(exp.Sum(this=exp.Mul(this=y.copy(), expression=y.copy())), "syy"),
        exp.alias_(exp.Sum(this=x), "sx"),
        exp.alias_(exp.Sum(this=exp.Mul(this=x.copy(), expression=x.copy())), "sxx"),
        exp.alias_(exp.Sum(this=exp.Mul(this=x.copy(), expression=y.copy())), "sxy"),
        exp.alias_(exp.Max(this=y.copy()), "ymax"),
    ]
    q = exp.select(*cols).from_(uv.subquery("uv"))
    if metric.kind == "proportion" or not percentiles:
        return q
    caps = percentiles_select(
        [(f"q{k}", col("y"), p) for k, p in enumerate(percentiles)], uv.subquery("uv"), dialect
    )
    for k in range(len(percentiles)):
        capped = exp.Least(this=y.copy(), expressions=[col(f"q{k}", "c")])
        q = q.select(
            exp.alias_(exp.Max(this=col(f"q{k}", "c")), f"q{k}"),
            exp.alias_(exp.Sum(this=capped), f"cs{k}"),
            exp.alias_(exp.Sum(this=exp.Mul(this=capped.copy(), expression=capped.copy())), f"css{k}"),
        )
    return q.join(caps.subquery("c"), join_type="cross")


def _dt(d: date) -> datetime:
    return datetime(d.year, d.month, d.day)


# -------------------------------------------------------------------------------------- the analysis
def _var(n: float, s: float, ss: float) -> float | None:
    if n < 2:
        return None
    return max((ss - s * s / n) / (n - 1), 0.0)


def explore(
    cfg: ExperimentConfig,
    life: LifecycleConfig,
    warehouse: Warehouse,
    *,
    progress: bool = False,
) -> ExplorationReport:
    """Runs the exploration queries and computes the statistics (see the module docstring)."""
    from scipy.stats import f_oneway

    spec = life.exploration
    dialect = warehouse.dialect
    end = spec.end or (cfg.design.baseline_end and _as_date(cfg.design.baseline_end) - timedelta(days=1))
    if end is None and cfg.start is not None:
        end = _as_date(cfg.start) - timedelta(days=1)
    if end is None:
        raise ConfigError(
            "exploration.end",
            "give `exploration.end` (or `start`/`design.baseline_end`) to place the pre-period",
        )
    start = (
        spec.start
        or (cfg.design.baseline_start and _as_date(cfg.design.baseline_start))
        or end - timedelta(days=spec.days - 1)
    )
    n_days = (end - start).days + 1
    if n_days < 7:
        raise ConfigError(
            "exploration.start",
            f"the pre-period has {n_days} days; at least 7 are needed for weekday seasonality",
        )
    names = spec.metrics or [m.name for m in cfg.metrics]
    chosen: list[tuple[int, Metric]] = []
    skipped: dict[str, str] = {}
    for j, name in enumerate(names):
        i, m = find_metric(cfg, name, f"exploration.metrics[{j}]")
        if m.kind == "ratio":
            skipped[name] = (
                "ratio metrics are not explored; explore numerator and denominator as mean metrics"
            )
            continue
        chosen.append((i, m))
    windows = {i: metric_windows(m, i, life, n_days) for i, m in chosen}
    if cfg.design.population is not None:
        population, pop_path = cfg.design.population, "design.population"
    elif chosen:
        population, pop_path = cfg.metric_source(chosen[0][1]), "metrics[0].source"
    else:
        raise ConfigError("exploration.metrics", "no mean or proportion metric to explore")

    steps = 3 + len(chosen)
    bar = None
    if progress:
        from rich.console import Console
        from rich.progress import Progress

        bar = Progress(console=Console(stderr=True), transient=True)
        bar.start()
        task = bar.add_task("exploring the pre-period", total=steps)

    def run(q: exp.Select) -> list[dict[str, Any]]:
        rows = warehouse.query(q.sql(dialect=dialect))
        if bar is not None:
            bar.update(task, advance=1)
        return rows

    try:
        daily_rows = run(daily_query(cfg, chosen, population, pop_path, dialect, start, end))
        new_rows = run(new_units_query(population, pop_path, cfg, dialect, start, end))
        horizons = sorted({1, 7, 14, 21, 28, n_days} & set(range(1, n_days + 1)))
        reach_row = run(reach_query(population, pop_path, cfg, dialect, start, end, horizons))[0]
        window_rows = [
            run(
                window_query(
                    cfg,
                    m,
                    i,
                    population,
                    pop_path,
                    dialect,
                    end - timedelta(days=windows[i][0] - 1),
                    end,
                    windows[i][1],
                    spec.capping_percentiles,
                )
            )[0]
            for i, m in chosen
        ]
    finally:
        if bar is not None:
            bar.stop()
    if not daily_rows:
        raise InputError("exploration", f"no population rows between {start} and {end} in {pop_path}")

    days = [_as_date(r["day"]) for r in daily_rows]
    units = [int(r["units"]) for r in daily_rows]
    new_by_day = {_as_date(r["day"]): int(r["new_units"]) for r in new_rows}
    pop_window_units = int(window_rows[0]["n"]) if window_rows else 0
    traffic = TrafficSummary(
        source=pop_path,
        daily=[
            {"day": d.isoformat(), "units": u, "new_units": new_by_day.get(d, 0)}
            for d, u in zip(days, units, strict=True)
        ],
        mean_units_per_day=sum(units) / len(units),
        # the first days count every returning unit as new; the later half is the steady inflow
        mean_new_units_per_day=_steady_new(days, new_by_day),
        weekday_index=_weekday_index(days, [float(u) for u in units]),
        window_units=pop_window_units,
        reach={h: int(reach_row[f"d{h}"] or 0) for h in horizons},
    )

    metrics: list[MetricExploration] = []
    for (i, m), w in zip(chosen, window_rows, strict=True):
        points: list[DailyPoint] = []
        for d, r in zip(days, daily_rows, strict=True):
            n, s, ss = float(r["units"]), float(r[f"m{i}_sum"] or 0.0), float(r[f"m{i}_ss"] or 0.0)
            points.append(DailyPoint(day=d, units=int(n), mean=s / n if n else None, variance=_var(n, s, ss)))
        means = [p.mean for p in points if p.mean is not None]
        level = sum(means) / len(means) if means else None
        level_sd = (
            math.sqrt(_var(len(means), sum(means), sum(x * x for x in means)) or 0.0)
            if len(means) > 1
            else None
        )
        variances = [p.variance for p in points if p.variance is not None]
        idx = _weekday_index([p.day for p in points if p.mean is not None], means)
        groups = [[p.mean for p in points if p.mean is not None and p.day.weekday() == k] for k in range(7)]
        groups = [g for g in groups if len(g) >= 1]
        p_season: float | None = None
        if len(groups) >= 2 and sum(len(g) for g in groups) > len(groups):
            res = f_oneway(*groups)
            p_season = float(res.pvalue) if math.isfinite(float(res.pvalue)) else None
        present = [v for v in idx.values() if v is not None and v > 0]
        amp = max(present) / min(present) - 1 if present else None

        n = float(w["n"] or 0)
        sy, syy = float(w["sy"] or 0), float(w["syy"] or 0)
        sx, sxx, sxy = float(w["sx"] or 0), float(w["sxx"] or 0), float(w["sxy"] or 0)
        vy, vx = _var(n, sy, syy), _var(n, sx, sxx)
        rho: float | None = None
        notes: list[str] = []
        if n >= 3 and vy and vx:
            cov = (sxy - sx * sy / n) / (n - 1)
            rho = max(-1.0, min(1.0, cov / math.sqrt(vx * vy)))
        else:
            notes.append("no variance in one of the windows: the pre/post correlation is undefined.")
        tails = None
        if m.kind == "mean" and vy and n >= 2:
            tails = _tails(
                w,
                n,
                sy,
                vy,
                spec.capping_percentiles,
                spec.min_capping_variance_reduction,
                spec.min_capping_percentile,
            )
            if tails.suggested_capping_percentile is not None:
                notes.append(
                    f"capping at p{tails.suggested_capping_percentile * 100:g} removes "
                    f"{tails.variance_reduction_from_capping:.0%} of the variance "
                    f"(mean shifts {tails.mean_shift_from_capping:+.1%})."
                )
        metrics.append(
            MetricExploration(
                id=f"exploration:{m.name}",
                metric=m.name,
                kind=m.kind,  # type: ignore[arg-type]
                daily=points,
                level=level,
                level_sd=level_sd,
                daily_variance=sum(variances) / len(variances) if variances else None,
                weekday_index=idx,
                seasonality_amplitude=amp,
                seasonality_p_value=p_season,
                window_days=windows[i][0],
                covariate_days=windows[i][1],
                window_units=int(n),
                window_mean=sy / n if n else None,
                window_variance=vy,
                pre_post_correlation=rho,
                expected_cuped_variance_reduction=rho * rho if rho is not None else None,
                tails=tails,
                notes=notes,
            )
        )
    return ExplorationReport(
        experiment_id=cfg.id,
        start=start,
        end=end,
        window_days=max((w for w, _ in windows.values()), default=0),
        traffic=traffic,
        metrics=metrics,
        skipped=skipped,
    )


def metric_windows(metric: Metric, index: int, life: LifecycleConfig, n_days: int) -> tuple[int, int]:
    """(outcome window W, CUPED covariate window P) in whole days for one metric.

    W is the metric's own ``window``; a metric counted to the end of the experiment uses the
    hypothesis' ``duration_days`` (else ``exploration.covariate_days``, else half the pre-period up
    to 14 days). P is the metric's ``cuped.pre_window``, else W. Sizing on another window misstates
    the per-unit variance relative to the mean (a 14-day sum is far less noisy, relatively, than a
    7-day one), so both must fit in the pre-period: W + P days.
    """
    spec = life.exploration
    if metric.window is not None:
        w = max(1, math.ceil(metric.window / 24.0 - 1e-9))
        w_from = f"metrics[{index}].window"
    elif life.hypothesis is not None:
        w, w_from = life.hypothesis.duration_days, "hypothesis.duration_days"
    elif spec.covariate_days is not None:
        w, w_from = spec.covariate_days, "exploration.covariate_days"
    else:
        w, w_from = min(max(n_days // 2, 1), 14), "exploration.days"
    if metric.cuped is not None:
        p = max(1, math.ceil(metric.cuped.pre_window / 24.0 - 1e-9))
        p_from = f"metrics[{index}].cuped.pre_window"
    elif spec.covariate_days is not None and metric.window is None:
        p, p_from = spec.covariate_days, "exploration.covariate_days"
    else:
        p, p_from = w, w_from
    if w + p > n_days:
        raise ConfigError(
            "exploration.days",
            f"metric {metric.name} needs {w} days of outcome window ({w_from}) and {p} days before it "
            f"({p_from}): {w + p} days of pre-period, the exploration has {n_days}; lengthen it "
            "(`exploration.days` or `exploration.start`)",
        )
    return w, p


def _steady_new(days: list[date], new_by_day: dict[date, int]) -> float:
    later = [new_by_day.get(d, 0) for d in days[len(days) // 2 :]]
    return sum(later) / len(later) if later else 0.0


def _weekday_index(days: list[date], values: list[float]) -> dict[str, float | None]:
    by: dict[int, list[float]] = {}
    for d, v in zip(days, values, strict=True):
        by.setdefault(d.weekday(), []).append(v)
    wmeans = {k: sum(v) / len(v) for k, v in by.items()}
    overall = sum(wmeans.values()) / len(wmeans) if wmeans else 0.0
    return {WEEKDAYS[k]: (wmeans[k] / overall if k in wmeans and overall else None) for k in range(7)}


def _tails(
    w: dict[str, Any], n: float, sy: float, vy: float, percentiles: list[float], min_red: float, min_p: float
) -> TailSummary:
    pct: dict[str, float] = {}
    var_after: dict[str, float] = {}
    mean_after: dict[str, float] = {}
    for k, p in enumerate(percentiles):
        key = f"{p:g}"
        if w.get(f"q{k}") is None:
            continue
        pct[key] = float(w[f"q{k}"])
        cs, css = float(w[f"cs{k}"] or 0), float(w[f"css{k}"] or 0)
        var_after[key] = _var(n, cs, css) or 0.0
        mean_after[key] = cs / n
    mean = sy / n
    # the highest percentile (>= min_p) whose cap removes at least `min_red` of the variance
    suggestion: float | None = None
    for p in sorted((q for q in percentiles if q >= min_p), reverse=True):
        key = f"{p:g}"
        if key in var_after and 1 - var_after[key] / vy >= min_red:
            suggestion = p
            break
    chosen = f"{suggestion:g}" if suggestion is not None else None
    return TailSummary(
        percentiles=pct,
        max=float(w["ymax"] or 0.0),
        variance_after_capping=var_after,
        suggested_capping_percentile=suggestion,
        variance_reduction_from_capping=(1 - var_after[chosen] / vy) if chosen else 0.0,
        mean_shift_from_capping=(mean_after[chosen] / mean - 1) if chosen and mean else 0.0,
    )


def _as_date(v: Any) -> date:
    if isinstance(v, datetime):
        return v.date()
    if isinstance(v, date):
        return v
    return date.fromisoformat(str(v)[:10])
