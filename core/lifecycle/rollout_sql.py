"""The warehouse side of a rollout check: per-stage, per-arm sufficient statistics of the guardrails.

One query: units at first exposure (treatment and control only; units seen in both are dropped),
each unit's stage from its first exposure time and the stage boundaries, each unit's guardrail
values inside the metric's window after first exposure and before ``now`` (the metric semantics of
the experiment analysis: a proportion is "any event", a mean is the sum of ``value``), then
``GROUP BY stage, variant`` → units, Σ, Σ² per guardrail.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
from dataeng_agents.core.errors import ConfigError, InputError
from dataeng_agents.core.lifecycle.config import RolloutPlan, as_utc
from dataeng_agents.core.lifecycle.rollout import GuardrailRule, StageStats
from dataeng_agents.core.lifecycle.sources import (
    col,
    find_metric,
    minutes,
    to_datetime,
    ts_literal,
    units_query,
)
from sqlglot import exp

if TYPE_CHECKING:
    from dataeng_agents.core.experiment.config import ExperimentConfig, Metric
    from dataeng_agents.core.warehouse import Warehouse


UNITS_CTE = "lc_rollout_units"  # prefixed: never shadows a user table
VALUES_CTE = "lc_rollout_values"


@dataclass(frozen=True)
class ResolvedRollout:
    rules: list[GuardrailRule]
    metrics: list[tuple[int, Metric]]
    treatment: str
    control: str


def resolve_rollout(cfg: ExperimentConfig, plan: RolloutPlan) -> ResolvedRollout:
    """Guardrails → their metric definitions; the treatment and control variant names."""
    rules: list[GuardrailRule] = []
    metrics: list[tuple[int, Metric]] = []
    for j, g in enumerate(plan.guardrails):
        i, m = find_metric(cfg, g.metric, f"rollout.guardrails[{j}].metric")
        if m.kind not in ("proportion", "mean", "ratio"):
            raise ConfigError(
                f"rollout.guardrails[{j}].metric",
                f"{m.name} is a {m.kind} metric; rollout guardrails support proportion, mean and ratio metrics",
            )
        hib = g.higher_is_better if g.higher_is_better is not None else not m.inverse
        rules.append(GuardrailRule(m.name, m.kind, higher_is_better=hib, tolerance=g.tolerance))  # type: ignore[arg-type]
        metrics.append((i, m))
    names = [v.name for v in cfg.variants]
    control = cfg.control_name
    treatment = plan.treatment or next(n for n in names if n != control)
    if treatment not in names or treatment == control:
        raise ConfigError("rollout.treatment", f"{treatment!r} must be a non-control variant of {names}")
    return ResolvedRollout(rules, metrics, treatment, control)


def stage_starts(
    plan: RolloutPlan,
    stage: int,
    *,
    first_exposure: datetime | None,
    current_stage_started_at: datetime | None = None,
) -> list[datetime]:
    """Start of stages 1..``stage``: configured ones, the given current one, else the minimum schedule."""
    if not 1 <= stage <= len(plan.stages):
        raise InputError("stage", f"stage must be between 1 and {len(plan.stages)}, got {stage}")
    given = [as_utc(t) for t in plan.stage_started_at]
    first = given[0] if given else (as_utc(plan.started_at) if plan.started_at else first_exposure)
    if first is None:
        raise InputError(
            "rollout.started_at", "no exposures of the treatment yet and no `rollout.started_at`"
        )
    starts = [first]
    for k in range(2, stage + 1):
        if k <= len(given):
            starts.append(given[k - 1])
        elif k == stage and current_stage_started_at is not None:
            starts.append(as_utc(current_stage_started_at))
        else:
            starts.append(starts[-1] + timedelta(hours=plan.stages[k - 2].min_duration))
    for k in range(1, len(starts)):
        if starts[k] <= starts[k - 1]:
            raise InputError("stage_started_at", f"stage {k + 1} starts before stage {k}")
    return starts


def first_treatment_exposure(cfg: ExperimentConfig, treatment: str, warehouse: Warehouse) -> datetime | None:
    q = exp.select(exp.alias_(exp.Min(this=col("first_exposure")), "t")).from_(
        units_query(cfg, warehouse.dialect, variants=[treatment]).subquery("u")
    )
    rows = warehouse.query(q.sql(dialect=warehouse.dialect))
    return to_datetime(rows[0]["t"]) if rows else None


def rollout_query(
    cfg: ExperimentConfig,
    resolved: ResolvedRollout,
    starts: list[datetime],
    now: datetime,
    dialect: str,
) -> exp.Select:
    from dataeng_agents.core.warehouse import parse_scalar
    from dataeng_agents.core.warehouse.sql import source_from

    units = units_query(
        cfg, dialect, start=starts[0], end=now, variants=[resolved.control, resolved.treatment]
    )
    stage_expr: exp.Expr = exp.Literal.number(len(starts))
    if len(starts) > 1:
        stage_expr = exp.Case(
            ifs=[
                exp.If(
                    this=col("first_exposure", "u") < ts_literal(starts[k], dialect),
                    true=exp.Literal.number(k),
                )
                for k in range(1, len(starts))
            ],
            default=exp.Literal.number(len(starts)),
        )
    uv_cols: list[exp.Expr] = [
        col("unit_id", "u"),
        col("variant", "u"),
        exp.alias_(stage_expr, "stage"),
    ]
    # one CTE read by every source scan (PostgreSQL materialises a CTE referenced more than once)
    units_ref = exp.to_table(UNITS_CTE)
    q = exp.select().from_(exp.alias_(units_ref.copy(), "u"))
    by_source: dict[str, list[tuple[int, Metric]]] = {}
    for i, m in resolved.metrics:
        by_source.setdefault(m.source if isinstance(m.source, str) else f"__inline{i}", []).append((i, m))
    for k, (key, members) in enumerate(by_source.items()):
        src = cfg.metric_source(members[0][1])
        spath = f"sources.{key}" if not key.startswith("__inline") else f"metrics[{members[0][0]}].source"
        inner_cols: list[exp.Expr] = [
            exp.alias_(col(src.unit), "unit_id"),
            exp.alias_(col(src.timestamp), "event_ts"),
        ]
        for i, m in members:
            if m.kind in ("mean", "ratio"):
                assert m.value is not None
                inner_cols.append(
                    exp.alias_(
                        exp.cast(parse_scalar(m.value, dialect, f"metrics[{i}].value"), "DOUBLE"), f"v{i}"
                    )
                )
            if m.kind == "ratio":
                assert m.denominator is not None
                inner_cols.append(
                    exp.alias_(
                        exp.cast(parse_scalar(m.denominator, dialect, f"metrics[{i}].denominator"), "DOUBLE"),
                        f"d{i}",
                    )
                )
        inner = exp.select(*inner_cols).from_(source_from(src, dialect, spath, cfg.base_dir))
        conds: list[exp.Expr] = [
            col(src.timestamp) >= ts_literal(starts[0], dialect),
            col(src.timestamp) < ts_literal(now, dialect),
        ]
        if src.where:
            conds.append(parse_scalar(src.where, dialect, f"{spath}.where"))
        inner = inner.where(exp.and_(*conds))
        ts, fe = col("event_ts", "e"), col("first_exposure", "u2")
        agg: list[exp.Expr] = [col("unit_id", "u2")]
        for i, m in members:
            cond: exp.Expr = ts >= fe
            if m.window is not None:
                cond = exp.and_(cond, ts < exp.Add(this=fe.copy(), expression=minutes(m.window)))
            if m.kind == "proportion":
                agg.append(
                    exp.alias_(
                        exp.Max(
                            this=exp.Case(
                                ifs=[exp.If(this=cond, true=exp.Literal.number(1))],
                                default=exp.Literal.number(0),
                            )
                        ),
                        f"m{i}",
                    )
                )
            else:
                agg.append(
                    exp.alias_(
                        exp.Sum(this=exp.Case(ifs=[exp.If(this=cond, true=col(f"v{i}", "e"))])), f"m{i}"
                    )
                )
            if m.kind == "ratio":
                agg.append(
                    exp.alias_(
                        exp.Sum(this=exp.Case(ifs=[exp.If(this=cond.copy(), true=col(f"d{i}", "e"))])),
                        f"d{i}",
                    )
                )
        per_unit = (
            exp.select(*agg)
            .from_(exp.alias_(units_ref.copy(), "u2"))
            .join(
                inner.subquery("e"),
                on=exp.and_(
                    exp.EQ(this=col("unit_id", "e"), expression=col("unit_id", "u2")), ts.copy() >= fe.copy()
                ),
                join_type="inner",
            )
            .group_by(col("unit_id", "u2"))
        )
        a = f"s{k}"
        q = q.join(
            per_unit.subquery(a),
            on=exp.EQ(this=col("unit_id", a), expression=col("unit_id", "u")),
            join_type="left",
        )
        for i, m in members:
            for prefix in ("m", "d") if m.kind == "ratio" else ("m",):
                uv_cols.append(
                    exp.alias_(
                        exp.Coalesce(this=col(f"{prefix}{i}", a), expressions=[exp.Literal.number(0)]),
                        f"{prefix}{i}",
                    )
                )
    uv = q.select(*uv_cols).where(exp.Not(this=exp.Is(this=col("variant", "u"), expression=exp.Null())))
    out: list[exp.Expr] = [
        exp.alias_(col("stage", "uv"), "stage"),
        exp.alias_(col("variant", "uv"), "variant"),
        exp.alias_(exp.Count(this=exp.Star()), "units"),
    ]
    # the metric's capping, as the experiment analysis applies it: an absolute cap, or a percentile
    # of the unit values pooled over both arms and all stages
    pct = [(i, m) for i, m in resolved.metrics if m.capping is not None and m.capping.percentile is not None]
    caps: dict[int, exp.Expr] = {}
    for i, m in resolved.metrics:
        if m.capping is not None and m.capping.value is not None:
            caps[i] = exp.Literal.number(m.capping.value)
    for i, _m in pct:
        caps[i] = col(f"cap{i}", "c")
    for i, m in resolved.metrics:
        raw = exp.cast(col(f"m{i}", "uv"), "DOUBLE")
        v: exp.Expr = exp.Least(this=raw, expressions=[caps[i].copy()]) if i in caps else raw
        out += [
            exp.alias_(exp.Sum(this=v), f"m{i}_sum"),
            exp.alias_(exp.Sum(this=exp.Mul(this=v.copy(), expression=v.copy())), f"m{i}_ss"),
        ]
        if m.kind == "mean":
            cube = exp.Mul(this=exp.Mul(this=v.copy(), expression=v.copy()), expression=v.copy())
            out.append(exp.alias_(exp.Sum(this=cube), f"m{i}_cube"))
        if m.kind == "ratio":
            d = exp.cast(col(f"d{i}", "uv"), "DOUBLE")
            out += [
                exp.alias_(exp.Sum(this=d), f"d{i}_sum"),
                exp.alias_(exp.Sum(this=exp.Mul(this=d.copy(), expression=d.copy())), f"d{i}_ss"),
                exp.alias_(exp.Sum(this=exp.Mul(this=v.copy(), expression=d.copy())), f"m{i}_prod"),
            ]
    final = exp.select(*out).from_(exp.alias_(exp.to_table(VALUES_CTE), "uv"))
    if pct:
        cap_cols = [
            exp.alias_(
                exp.WithinGroup(
                    this=exp.PercentileCont(this=exp.Literal.number(float(m.capping.percentile))),  # type: ignore[union-attr, arg-type]
                    expression=exp.Order(expressions=[exp.Ordered(this=col(f"m{i}"), nulls_first=False)]),
                ),
                f"cap{i}",
            )
            for i, m in pct
        ]
        final = final.join(exp.select(*cap_cols).from_(VALUES_CTE).subquery("c"), join_type="cross")
    return (
        final.group_by(col("stage", "uv"), col("variant", "uv"))
        .order_by(col("stage", "uv"), col("variant", "uv"))
        .with_(UNITS_CTE, as_=units)
        .with_(VALUES_CTE, as_=uv)
    )


def stage_stats_from_rows(
    rows: list[dict[str, object]], resolved: ResolvedRollout, stages: int
) -> StageStats:
    g = len(resolved.metrics)
    stats = StageStats.zeros((stages, g), cubes=True)
    for r in rows:
        s = int(r["stage"]) - 1  # type: ignore[call-overload]
        if not 0 <= s < stages:
            continue
        n = float(r["units"])  # type: ignore[arg-type]

        def vec(fmt: str, row: dict[str, object] = r) -> np.ndarray[Any, np.dtype[np.float64]]:
            return np.array([float(row.get(fmt.format(i)) or 0.0) for i, _ in resolved.metrics])  # type: ignore[arg-type]

        arm = "t" if r["variant"] == resolved.treatment else "c" if r["variant"] == resolved.control else None
        if arm is None:
            continue
        getattr(stats, f"n_{arm}")[s] = n
        for field, fmt in (
            ("sum", "m{}_sum"),
            ("ss", "m{}_ss"),
            ("dsum", "d{}_sum"),
            ("dss", "d{}_ss"),
            ("prod", "m{}_prod"),
            ("cube", "m{}_cube"),
        ):
            getattr(stats, f"{field}_{arm}")[s] = vec(fmt)
    return stats


def crossover_query(
    cfg: ExperimentConfig, resolved: ResolvedRollout, start: datetime, now: datetime, dialect: str
) -> exp.Select:
    """Units exposed to both the control and the treatment between ``start`` and ``now``."""
    units = units_query(cfg, dialect, start=start, end=now, variants=[resolved.control, resolved.treatment])
    return (
        exp.select(exp.alias_(exp.Count(this=exp.Star()), "units"))
        .from_(units.subquery("u"))
        .where(exp.Is(this=col("variant", "u"), expression=exp.Null()))
    )
