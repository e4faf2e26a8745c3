"""The experiment query's result, parsed into per-variant sufficient statistics.

Size: variants x metrics x (1 + days + dimension levels) numbers — never anything per row or unit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from dataeng_agents.core.errors import WarehouseError
from dataeng_agents.core.experiment.query import ExperimentQuery

#: variant -> metric name -> stat name (``n``, ``sum``, ``sum_squares``, …) -> value
ArmStats = dict[str, dict[str, dict[str, float]]]


@dataclass
class GroupStats:
    """Units and per-metric sums of every variant, for one group (overall, a day, a dimension level)."""

    units: dict[str, int] = field(default_factory=dict)
    stats: ArmStats = field(default_factory=dict)

    def add(self, other: GroupStats) -> GroupStats:
        out = GroupStats(
            dict(self.units), {v: {m: dict(s) for m, s in ms.items()} for v, ms in self.stats.items()}
        )
        for v, n in other.units.items():
            out.units[v] = out.units.get(v, 0) + n
        for v, metrics in other.stats.items():
            target = out.stats.setdefault(v, {})
            for m, s in metrics.items():
                t = target.setdefault(m, {})
                for k, x in s.items():
                    t[k] = t.get(k, 0.0) + x
        return out


@dataclass
class ExperimentAggregates:
    """Everything the analysis reads from the warehouse."""

    overall: GroupStats
    excluded_units: int
    by_day: dict[str, GroupStats]
    by_dimension: dict[str, dict[str, GroupStats]]

    @property
    def total_units(self) -> int:
        return sum(self.overall.units.values()) + self.excluded_units

    def cumulative(self) -> list[tuple[str, GroupStats]]:
        """Per exposure day, the statistics of all units first exposed up to and including that day."""
        out: list[tuple[str, GroupStats]] = []
        running = GroupStats()
        for day in sorted(self.by_day):
            running = running.add(self.by_day[day])
            out.append((day, running))
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (used to compare warehouses and to debug)."""

        def g(x: GroupStats) -> dict[str, Any]:
            return {"units": x.units, "stats": x.stats}

        return {
            "overall": g(self.overall),
            "excluded_units": self.excluded_units,
            "by_day": {d: g(x) for d, x in sorted(self.by_day.items())},
            "by_dimension": {
                k: {lvl: g(x) for lvl, x in sorted(v.items())} for k, v in self.by_dimension.items()
            },
        }


def _count(value: Any, variant: Any) -> int:
    """A unit count as the warehouse returned it: an integer (a string or a boolean is a bad result)."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) or value < 0:
        raise WarehouseError(
            f"the warehouse returned {value!r} as the unit count of variant {variant!r}: expected a whole "
            "number (check the assignment source's unit column)"
        )
    return int(value)


def _stat_value(value: Any, metric: str, variant: str, column: str) -> float:
    """A sum as the warehouse returned it, named by metric, variant and column when it is not a number."""
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise WarehouseError(
            f"metric {metric!r}, variant {variant!r}: the warehouse returned {value!r} for {column}, not a number"
        )
    out = float(value)
    if not math.isfinite(out):
        raise WarehouseError(
            f"metric {metric!r}, variant {variant!r}: {column} is {out} (a NaN or infinite value in the metric's "
            "source column, or a sum beyond double precision)"
        )
    return out


def parse_rows(query: ExperimentQuery, rows: list[dict[str, Any]]) -> ExperimentAggregates:
    """Sort the grouping-set rows of :func:`build_experiment_query`'s query into groups."""
    overall = GroupStats()
    excluded = 0
    by_day: dict[str, GroupStats] = {}
    by_dim: dict[str, dict[str, GroupStats]] = {name: {} for name in query.dimensions}
    dims = list(enumerate(query.dimensions))
    try:
        for row in rows:
            variant = row["variant"]
            units = _count(row["units"], row.get("variant"))
            if row["g_day"] == 0:
                group = by_day.setdefault(str(row["exposure_day"]), GroupStats())
            else:
                level = next(((j, name) for j, name in dims if row[f"g_dim{j}"] == 0), None)
                if level is None:
                    if variant is None:
                        excluded += units
                        continue
                    group = overall
                else:
                    j, name = level
                    value = row[f"dim{j}"]
                    group = by_dim[name].setdefault("(null)" if value is None else str(value), GroupStats())
            if variant is None:
                continue  # units exposed to several variants: counted once, above
            group.units[str(variant)] = units
            metrics: dict[str, dict[str, float]] = {}
            for mc in query.metrics:
                s: dict[str, float] = {"n": float(units)}
                for stat in mc.stats:
                    s[stat] = _stat_value(row[mc.col(stat)], mc.name, str(variant), mc.col(stat))
                metrics[mc.name] = s
            group.stats[str(variant)] = metrics
    except KeyError as exc:
        raise WarehouseError(f"unexpected result from the warehouse: missing column {exc}") from None
    return ExperimentAggregates(overall=overall, excluded_units=excluded, by_day=by_day, by_dimension=by_dim)
