"""Shared plumbing of the lifecycle queries: units at first exposure, metric lookup, literals.

The YAML is read by the one config loader (:func:`dataeng_agents.core.experiment.load_configs`) and
the warehouse resolved by :func:`dataeng_agents.core.experiment.resolve_warehouse`. The lifecycle
builds its own small sqlglot queries over the *same* sources the experiment config declares
(:class:`~dataeng_agents.core.experiment.ExperimentConfig`): the assignment source for
units and variants, the metric sources for events. User text only enters as parsed sqlglot nodes
(``source_from``/``parse_scalar`` of the warehouse package); everything else is internal.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from dataeng_agents.core.errors import ConfigError
from dataeng_agents.core.warehouse.sql import ts_literal as ts_literal
from sqlglot import exp

if TYPE_CHECKING:
    from dataeng_agents.core.experiment.config import ExperimentConfig, Metric


def find_metric(cfg: ExperimentConfig, name: str, path: str) -> tuple[int, Metric]:
    for i, m in enumerate(cfg.metrics):
        if m.name == name:
            return i, m
    raise ConfigError(path, f"unknown metric {name!r}; the config defines {[m.name for m in cfg.metrics]}")


def minutes(hours: float) -> exp.Interval:
    return exp.Interval(this=exp.Literal.string(str(round(hours * 60))), unit=exp.var("MINUTE"))


def col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(name, table=table)


def count_if(cond: exp.Expr) -> exp.Expr:
    return exp.Sum(
        this=exp.Case(ifs=[exp.If(this=cond, true=exp.Literal.number(1))], default=exp.Literal.number(0))
    )


def units_query(
    cfg: ExperimentConfig,
    dialect: str,
    *,
    start: datetime | date | None = None,
    end: datetime | date | None = None,
    variants: list[str] | None = None,
) -> exp.Select:
    """``unit_id, variant, first_exposure`` per unit; ``variant`` is NULL for units seen in two variants."""
    from dataeng_agents.core.warehouse import parse_scalar
    from dataeng_agents.core.warehouse.sql import source_from

    a = cfg.assignment
    names = variants or [v.name for v in cfg.variants]
    exposures = exp.select(
        exp.alias_(col(a.unit), "unit_id"),
        exp.alias_(exp.cast(col(a.variant), "VARCHAR"), "variant"),
        exp.alias_(col(a.timestamp), "exposed_at"),
    ).from_(source_from(a, dialect, "assignment", cfg.base_dir))
    conds: list[exp.Expr] = [
        exp.cast(col(a.variant), "VARCHAR").isin(*[exp.Literal.string(v) for v in names])
    ]
    if a.where:
        conds.append(parse_scalar(a.where, dialect, "assignment.where"))
    if start is not None:
        conds.append(col(a.timestamp) >= ts_literal(start, dialect))
    if end is not None:
        conds.append(col(a.timestamp) < ts_literal(end, dialect))
    exposures = exposures.where(exp.and_(*conds))
    single = exp.EQ(
        this=exp.Count(this=exp.Distinct(expressions=[col("variant")])), expression=exp.Literal.number(1)
    )
    return (
        exp.select(
            col("unit_id"),
            exp.alias_(exp.Case(ifs=[exp.If(this=single, true=exp.Min(this=col("variant")))]), "variant"),
            exp.alias_(exp.Min(this=col("exposed_at")), "first_exposure"),
        )
        .from_(exposures.subquery("x"))
        .group_by(col("unit_id"))
    )


def to_datetime(value: Any) -> datetime | None:
    """A warehouse value (ISO string after the runner's normalisation, or datetime) → aware UTC datetime."""
    if value is None:
        return None
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime(value.year, value.month, value.day)
    else:
        dt = datetime.fromisoformat(str(value))
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
