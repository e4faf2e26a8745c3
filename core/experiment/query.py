"""The experiment query, built as a sqlglot expression tree and emitted in the warehouse's dialect.

One query returns every number the analysis needs, and nothing proportional to the row count. Each
step below is one builder (one CTE); :func:`build_experiment_query` chains them:

1. ``xp_exposures`` (:func:`exposures_cte`): the assignment source restricted to the configured
   variants (and the data interval).
2. ``xp_units`` (:func:`units_cte`): one row per unit — first exposure, its variant (as its index in
   the config until ``xp_cells``), its dimension values. A unit exposed to more than one variant gets
   a NULL variant: it is counted (the multiple-exposure health check) but excluded from every metric.
3. ``xp_src<k>`` (:func:`source_scan_cte`): one scan per metric *source* (metrics sharing a source
   share the scan): each unit's per-metric sums inside the metric's window after first exposure, the
   ratio denominator, and the CUPED covariate from the pre-exposure window, via conditional
   aggregation; ``xp_unit_values`` (:func:`unit_values_cte`) joins them per unit.
4. ``xp_caps`` (:func:`caps_cte`) when a metric is capped at an in-database percentile.
5. ``xp_cells`` (:func:`cells_cte`): one pass over the units into (variant, exposure_day, dim0, …)
   cells — n, sums, sums of squares and cross products per metric; then the final aggregate over
   those few cells (:func:`grouping_sets_select`), ``GROUP BY GROUPING SETS ((variant), (variant,
   exposure_day), (variant, dim0), …)``: per variant, for the whole experiment, per exposure day
   (cumulated in Python for the time charts) and per dimension level. ``GROUPING(col)`` columns say
   which set a row belongs to.

User text enters the tree only as parsed sqlglot nodes (:mod:`dataeng_agents.core.warehouse.sql`):
table names are validated identifiers, ``sql`` sources must parse as a single SELECT, expressions
must parse as one scalar expression without subqueries, and comments are dropped. Everything else
(aliases, CTE names) is internal; CTE names carry an ``xp_`` prefix so they cannot shadow a user's
table (``units``, ``exposures``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from dataeng_agents.core.experiment.config import Dimension, ExperimentConfig, Metric, Source
from dataeng_agents.core.warehouse.sql import (
    naive_utc,
    parse_scalar,
    percentiles_select,
    source_from,
    ts_literal,
)
from sqlglot import exp

__all__ = ["ExperimentQuery", "MetricColumns", "build_experiment_query"]

#: (metric index, ``"value"`` | ``"cov"`` | ``"den"``) -> a per-unit column or expression
UnitValueKey = tuple[int, str]


def _as_minutes(hours: float) -> int:
    return round(hours * 60)


def _minutes_literal(minutes: int) -> exp.Interval:
    return exp.Interval(this=exp.Literal.string(str(minutes)), unit=exp.var("MINUTE"))


def _minutes(hours: float) -> exp.Interval:
    return _minutes_literal(_as_minutes(hours))


def _col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(name, table=table)


def _double(node: exp.Expr) -> exp.Expr:
    return exp.cast(node, "DOUBLE")


def _sum(node: exp.Expr) -> exp.Expr:
    return exp.Sum(this=node)


def _coalesce0(node: exp.Expr) -> exp.Expr:
    return exp.Coalesce(this=node, expressions=[exp.Literal.number(0)])


@dataclass(frozen=True)
class MetricColumns:
    """Which output columns hold one metric's sufficient statistics (``m<i>_…``)."""

    index: int
    name: str
    kind: str
    ratio: bool
    cuped: bool

    def col(self, stat: str) -> str:
        return f"m{self.index}_{stat}"

    @property
    def stats(self) -> list[str]:
        out = ["sum", "sum_squares"]
        if self.ratio:
            out += ["denominator_sum", "denominator_sum_squares", "sum_product_denominator"]
        if self.cuped:
            out += ["covariate_sum", "covariate_sum_squares", "sum_product_covariate"]
            if self.ratio:
                out += ["denominator_sum_product_covariate"]
        return out


@dataclass
class ExperimentQuery:
    """The built query and the map from its output columns to metrics and dimensions."""

    tree: exp.Select
    dialect: str
    metrics: list[MetricColumns]
    dimensions: list[str]
    variant_values: list[str] | None
    caps: dict[int, float] = field(default_factory=dict)

    def sql(self, dialect: str | None = None, *, pretty: bool = True) -> str:
        return self.tree.sql(dialect=dialect or self.dialect, pretty=pretty)


@dataclass
class QueryPlan:
    """The resolved inputs of one query: population, time bounds, variant labels, dialects."""

    config: ExperimentConfig
    dialect: str
    read_dialect: str
    dimensions: list[Dimension]
    population: Source
    population_path: str
    start: datetime | date | None
    end: datetime | date | None
    event_end: datetime | date | None
    variant_values: list[str] | None
    labels: list[str]
    variant_expr: exp.Expr


def plan_query(
    config: ExperimentConfig,
    dialect: str,
    *,
    data_interval: tuple[datetime | date, datetime | date] | None = None,
    baseline: bool = False,
    read_dialect: str | None = None,
) -> QueryPlan:
    """Resolve the population, the time bounds and the variant labels of an analysis or a design."""
    rd = read_dialect or dialect
    dimensions = [] if baseline else list(config.dimensions)  # the design population has no slices
    # exposures are restricted to [start, end); events only by the data interval's end (a scheduled
    # run must not see rows from after its interval), never by the experiment's end: a unit exposed
    # on the last day still gets its full metric window.
    start, end = config.start, config.end
    event_end: datetime | date | None = None
    if data_interval is not None:
        start = max(start, data_interval[0], key=naive_utc) if start else data_interval[0]
        end = min(end, data_interval[1], key=naive_utc) if end else data_interval[1]
        event_end = data_interval[1]

    if baseline:
        design = config.design
        population: Source = design.population or config.assignment
        population_path = "design.population" if design.population else "assignment"
        start, end = design.baseline_start, design.baseline_end
        event_end = None  # each unit keeps its full window after first appearance
        variant_values: list[str] | None = None
        labels = ["baseline"]
        variant_expr: exp.Expr = exp.Literal.number(0)
    else:
        population = config.assignment
        population_path = "assignment"
        variant_values = [v.name for v in config.variants]
        labels = variant_values
        # Units carry their variant as its index in the config (0, 1, …) until the cells: the
        # per-unit MIN/MAX and hash tables work on small integers instead of strings (DuckDB, 20M
        # rows: -0.2 CPU-s and -40 MB); the names come back on the few cell rows.
        variant_expr = exp.Case(
            this=exp.cast(_col(config.assignment.variant), "VARCHAR"),
            ifs=[
                exp.If(this=exp.Literal.string(v), true=exp.Literal.number(k)) for k, v in enumerate(labels)
            ],
        )
    return QueryPlan(
        config=config,
        dialect=dialect,
        read_dialect=rd,
        dimensions=dimensions,
        population=population,
        population_path=population_path,
        start=start,
        end=end,
        event_end=event_end,
        variant_values=variant_values,
        labels=labels,
        variant_expr=variant_expr,
    )


def exposures_cte(plan: QueryPlan) -> exp.Select:
    """Step 1, ``xp_exposures``: the population's exposures (unit, variant index, time, dimensions)."""
    config, dialect, rd, population = plan.config, plan.dialect, plan.read_dialect, plan.population
    exp_from = source_from(population, dialect, plan.population_path, config.base_dir, rd)
    exposure_cols: list[exp.Expr] = [
        exp.alias_(_col(population.unit), "unit_id"),
        exp.alias_(plan.variant_expr, "variant"),
        exp.alias_(_col(population.timestamp), "exposed_at"),
    ]
    for j, dim in enumerate(plan.dimensions):
        node = parse_scalar(dim.column, rd, f"dimensions[{j}].column")
        exposure_cols.append(exp.alias_(exp.cast(node, "VARCHAR"), f"dim{j}"))
    exposures = exp.select(*exposure_cols).from_(exp_from)
    conditions: list[exp.Expr] = []
    if plan.variant_values is not None:
        conditions.append(
            exp.cast(_col(config.assignment.variant), "VARCHAR").isin(
                *[exp.Literal.string(v) for v in plan.variant_values]
            )
        )
    if population.where:
        conditions.append(parse_scalar(population.where, rd, f"{plan.population_path}.where"))
    if plan.start is not None:
        conditions.append(_col(population.timestamp) >= ts_literal(plan.start, dialect))
    if plan.end is not None:
        conditions.append(_col(population.timestamp) < ts_literal(plan.end, dialect))
    if conditions:
        exposures = exposures.where(exp.and_(*conditions))
    return exposures


def units_cte(plan: QueryPlan) -> exp.Select:
    """Step 2, ``xp_units``: first exposure per unit; NULL variant when exposed to more than one."""
    units_cols: list[exp.Expr] = [
        _col("unit_id"),
        exp.alias_(
            exp.Case(
                ifs=[
                    exp.If(
                        # MIN = MAX: one variant; cheaper than COUNT(DISTINCT) (one hash aggregate)
                        this=exp.EQ(
                            this=exp.Min(this=_col("variant")),
                            expression=exp.Max(this=_col("variant")),
                        ),
                        true=exp.Min(this=_col("variant")),
                    )
                ]
            ),
            "variant",
        ),
        exp.alias_(exp.Min(this=_col("exposed_at")), "first_exposure"),
    ]
    units_cols += [exp.alias_(exp.Min(this=_col(f"dim{j}")), f"dim{j}") for j in range(len(plan.dimensions))]
    return exp.select(*units_cols).from_("xp_exposures").group_by(_col("unit_id"))


def metric_sources(config: ExperimentConfig) -> dict[str, list[tuple[int, Metric]]]:
    """Metrics grouped by source key (an inline source is its own group), in config order."""
    by_source: dict[str, list[tuple[int, Metric]]] = {}
    for i, metric in enumerate(config.metrics):
        key = metric.source if isinstance(metric.source, str) else f"__inline{i}"
        by_source.setdefault(key, []).append((i, metric))
    return by_source


def source_scan_cte(
    plan: QueryPlan, k: int, key: str, members: list[tuple[int, Metric]]
) -> tuple[exp.Select, dict[UnitValueKey, exp.Expr]]:
    """Step 3, ``xp_src<k>``: one scan of a metric source joined to the analysed units.

    Returns the CTE and, per (metric index, value/cov/den), the per-unit expression over its
    columns (``s<k>.a<j>``) that is 0 for a unit without a row in the scan.
    """
    config, dialect, rd = plan.config, plan.dialect, plan.read_dialect
    start, end, event_end = plan.start, plan.end, plan.event_end
    first_index = members[0][0]
    source = config.metric_source(members[0][1])
    spath = f"sources.{key}" if not key.startswith("__inline") else f"metrics[{first_index}].source"
    inner_cols: list[exp.Expr] = [
        exp.alias_(_col(source.unit), "unit_id"),
        exp.alias_(_col(source.timestamp), "event_ts"),
    ]
    # metrics of one source often share expressions (revenue for a mean and a ratio, `1` for
    # counts): each distinct expression is one column, each distinct aggregate one aggregate
    exprs = _Distinct("x", dialect)
    # a metric's value / denominator: a column of the scan, or an integer constant (``1`` for
    # "orders per unit", AOV's denominator): a constant is a COUNT of the unit's events times
    # it — exact as the sum of those integers is, and nothing carried through the join
    value_col: dict[int, str | int] = {}
    den_col: dict[int, str | int] = {}
    for i, metric in members:
        if metric.value is not None and metric.kind != "proportion":
            value_col[i] = exprs.add_or_constant(parse_scalar(metric.value, rd, f"metrics[{i}].value"))
        if metric.denominator is not None:
            den_col[i] = exprs.add_or_constant(
                parse_scalar(metric.denominator, rd, f"metrics[{i}].denominator")
            )
    inner_cols += exprs.columns
    inner = exp.select(*inner_cols).from_(source_from(source, dialect, spath, config.base_dir, rd))
    filters: list[exp.Expr] = []
    if source.where:
        filters.append(parse_scalar(source.where, rd, f"{spath}.where"))
    # Constant time bounds on the event scan (on top of the per-unit window in the join): the
    # database can prune partitions / zone maps instead of joining every event ever logged.
    pre_max = max((m.cuped.pre_window for _, m in members if m.cuped is not None), default=0.0)
    win = [m.window for _, m in members]
    event_ts = _col(source.timestamp)
    if start is not None:
        lower_bound = ts_literal(naive_utc(start) - timedelta(hours=pre_max), dialect)
        filters.append(event_ts >= lower_bound)
    upper: list[datetime] = []
    if event_end is not None:
        upper.append(naive_utc(event_end))
    if end is not None and all(w is not None for w in win):
        upper.append(naive_utc(end) + timedelta(hours=max(w for w in win if w is not None)))
    if upper:
        filters.append(event_ts < ts_literal(min(upper), dialect))
    if filters:
        inner = inner.where(exp.and_(*filters))

    ts = _col("event_ts", "e")
    fe = _col("first_exposure", "u")
    # The join keeps only events in [first exposure - longest pre-window, first exposure +
    # longest window): a metric whose window (or pre-window) is that bound needs no test of
    # it again per row — fewer comparisons per joined event, the same rows in each sum.
    pre_minutes = [_as_minutes(m.cuped.pre_window) for _, m in members if m.cuped is not None]
    win_minutes = [None if m.window is None else _as_minutes(m.window) for _, m in members]
    join_lower = max(pre_minutes, default=0)
    join_upper = max(w for w in win_minutes if w is not None) if None not in win_minutes else None
    aggs = _Distinct("a", dialect)
    # (metric index, "value" | "cov" | "den") -> the per-unit value, an expression over the src
    # columns (s<k>.a<j>) that is 0 for a unit without a row in the src
    src_val: dict[tuple[int, str], exp.Expr] = {}
    alias = f"s{k}"

    for i, metric in members:
        window_conds: list[exp.Expr] = []
        if join_lower > 0:
            window_conds.append(ts >= fe)
        if metric.window is not None and _as_minutes(metric.window) != join_upper:
            window_conds.append(ts < exp.Add(this=fe.copy(), expression=_minutes(metric.window)))
        in_window = exp.and_(*window_conds) if window_conds else None
        in_pre: exp.Expr | None = None
        if metric.cuped is not None:
            pre_conds: list[exp.Expr] = [ts < fe.copy()]
            if _as_minutes(metric.cuped.pre_window) != join_lower:
                pre_conds.insert(
                    0, ts >= exp.Sub(this=fe.copy(), expression=_minutes(metric.cuped.pre_window))
                )
            in_pre = exp.and_(*pre_conds)
        if metric.kind == "proportion":
            src_val[(i, "value")] = _anywhere(aggs, alias, in_window)
            if in_pre is not None:
                src_val[(i, "cov")] = _anywhere(aggs, alias, in_pre)
        else:
            src_val[(i, "value")] = _summed(aggs, alias, in_window, value_col[i])
            if in_pre is not None:
                src_val[(i, "cov")] = _summed(aggs, alias, in_pre, value_col[i])
        if metric.kind == "ratio":
            den_window = None if in_window is None else in_window.copy()
            src_val[(i, "den")] = _summed(aggs, alias, den_window, den_col[i])
    agg_cols: list[exp.Expr] = [_col("unit_id", "u"), *aggs.columns]

    join_on: list[exp.Expr] = [exp.EQ(this=_col("unit_id", "e"), expression=_col("unit_id", "u"))]
    # the join's time bounds computed once per unit on the build side, not as interval
    # arithmetic for every (unit, event) candidate pair
    unit_cols: list[exp.Expr] = [_col("unit_id"), _col("first_exposure")]
    if join_lower > 0:
        lo = exp.Sub(this=_col("first_exposure"), expression=_minutes_literal(join_lower))
        unit_cols.append(exp.alias_(lo, "join_from"))
        join_on.append(ts >= _col("join_from", "u"))
    else:
        join_on.append(ts >= fe.copy())
    if join_upper is not None:
        hi = exp.Add(this=_col("first_exposure"), expression=_minutes_literal(join_upper))
        unit_cols.append(exp.alias_(hi, "join_to"))
        join_on.append(ts < _col("join_to", "u"))
    if event_end is not None:
        join_on.append(ts < ts_literal(event_end, dialect))
    analysed_units = (
        exp.select(*unit_cols)
        .from_("xp_units")
        .where(exp.Not(this=exp.Is(this=_col("variant"), expression=exp.Null())))
    )
    src = (
        exp.select(*agg_cols)
        .from_(analysed_units.subquery("u"))
        .join(inner.subquery("e"), on=exp.and_(*join_on), join_type="inner")
        .group_by(_col("unit_id", "u"))
    )
    return src, src_val


def unit_values_cte(
    plan: QueryPlan, ctes: list[tuple[str, exp.Query]]
) -> tuple[exp.Select, dict[UnitValueKey, str]]:
    """Step 3, ``xp_src<k>`` for every source (appended to ``ctes``), then ``xp_unit_values``: one row
    per unit with its variant, exposure day, dimensions and per-metric values.

    Returns the CTE and the column of ``xp_unit_values`` holding each (metric index, value/cov/den).
    """
    # no unit_id: nothing after this CTE needs it, and the database materialises this one row
    # per unit (read by the percentile caps and by the cells)
    unit_value_cols: list[exp.Expr] = [
        _col("variant", "u"),
        exp.alias_(exp.cast(_col("first_exposure", "u"), "DATE"), "exposure_day"),
    ]
    unit_value_cols += [_col(f"dim{j}", "u") for j in range(len(plan.dimensions))]
    unit_values = exp.select().from_(exp.alias_(exp.to_table("xp_units"), "u"))
    values = _Distinct("v", plan.dialect)
    unit_col: dict[UnitValueKey, str] = {}
    for k, (key, members) in enumerate(metric_sources(plan.config).items()):
        src, src_val = source_scan_cte(plan, k, key, members)
        alias = f"s{k}"
        ctes.append((f"xp_src{k}", src))
        unit_values = unit_values.join(
            exp.alias_(exp.to_table(f"xp_src{k}"), alias),
            on=exp.EQ(this=_col("unit_id", alias), expression=_col("unit_id", "u")),
            join_type="left",
        )
        for (i, what), node in src_val.items():
            # metrics with the same per-unit value (revenue's mean and AOV's numerator) share one
            # column: the per-unit table is materialised (read by the caps and the cells)
            unit_col[(i, what)] = values.add(node)
    unit_value_cols += values.columns
    return unit_values.select(*unit_value_cols), unit_col


def caps_cte(
    plan: QueryPlan, unit_col: dict[UnitValueKey, str]
) -> tuple[exp.Select | None, dict[int, exp.Expr]]:
    """Step 4, ``xp_caps`` (only when a metric is capped at a percentile) and every metric's cap."""
    config = plan.config
    percentile_capped = [
        (i, float(m.capping.percentile))
        for i, m in enumerate(config.metrics)
        if m.capping is not None and m.capping.percentile
    ]
    capped_cols: dict[int, exp.Expr] = {}
    caps: exp.Select | None = None
    if percentile_capped:
        caps = percentiles_select(
            [(f"cap{i}", _col(unit_col[(i, "value")]), p) for i, p in percentile_capped],
            exp.to_table("xp_unit_values"),
            plan.dialect,
            where=exp.Not(this=exp.Is(this=_col("variant"), expression=exp.Null())),
        )
        for i, _m in percentile_capped:
            capped_cols[i] = _col(f"cap{i}", "c")
    for i, m in enumerate(config.metrics):
        if m.capping and m.capping.value is not None:
            capped_cols[i] = exp.Literal.number(m.capping.value)
    return caps, capped_cols


def cells_cte(
    plan: QueryPlan,
    metric_cols: list[MetricColumns],
    unit_col: dict[UnitValueKey, str],
    capped_cols: dict[int, exp.Expr],
    *,
    with_caps: bool,
) -> tuple[exp.Select, list[exp.Expr]]:
    """Step 5, ``xp_cells``: one pass over the units into (variant, exposure day, dimension levels)
    cells — variants x days x levels rows — with n, sums, sums of squares and cross products.

    Every statistic is a sum, so the grouping sets over these few cells give the same numbers as
    over the units, and the database no longer re-reads one row per unit for every set. Returns
    the CTE and its statistic columns.
    """

    def value(i: int, what: str = "value") -> exp.Expr:
        if (i, what) not in unit_col:  # a metric without a denominator / covariate: unused
            return exp.Null()
        raw = _col(unit_col[(i, what)], "v")
        if i in capped_cols and what in ("value", "cov"):
            return exp.Least(this=raw, expressions=[capped_cols[i].copy()])
        return raw

    dims = [f"dim{j}" for j in range(len(plan.dimensions))]
    keys = ["variant", "exposure_day", *dims]
    stat_cols: list[exp.Expr] = [exp.alias_(exp.Count(this=exp.Star()), "units")]
    for mc in metric_cols:
        i = mc.index
        y, d, x = value(i), value(i, "den"), value(i, "cov")
        stat_cols += [
            exp.alias_(_sum(y), mc.col("sum")),
            exp.alias_(_sum(exp.Mul(this=y.copy(), expression=y.copy())), mc.col("sum_squares")),
        ]
        if mc.ratio:
            stat_cols += [
                exp.alias_(_sum(d), mc.col("denominator_sum")),
                exp.alias_(
                    _sum(exp.Mul(this=d.copy(), expression=d.copy())), mc.col("denominator_sum_squares")
                ),
                exp.alias_(
                    _sum(exp.Mul(this=y.copy(), expression=d.copy())), mc.col("sum_product_denominator")
                ),
            ]
        if mc.cuped:
            stat_cols += [
                exp.alias_(_sum(x), mc.col("covariate_sum")),
                exp.alias_(
                    _sum(exp.Mul(this=x.copy(), expression=x.copy())), mc.col("covariate_sum_squares")
                ),
                exp.alias_(
                    _sum(exp.Mul(this=y.copy(), expression=x.copy())), mc.col("sum_product_covariate")
                ),
            ]
            if mc.ratio:
                stat_cols.append(
                    exp.alias_(
                        _sum(exp.Mul(this=d.copy(), expression=x.copy())),
                        mc.col("denominator_sum_product_covariate"),
                    )
                )
    variant_label = exp.Case(
        this=_col("variant", "v"),
        ifs=[
            exp.If(this=exp.Literal.number(k), true=exp.Literal.string(v)) for k, v in enumerate(plan.labels)
        ],
    )
    cells = exp.select(
        exp.alias_(variant_label, "variant"), *[_col(k, "v") for k in keys[1:]], *stat_cols
    ).from_(exp.alias_(exp.to_table("xp_unit_values"), "v"))
    if with_caps:
        cells = cells.join(exp.alias_(exp.to_table("xp_caps"), "c"), join_type="cross")
    cells = cells.group_by(*[_col(k, "v") for k in keys])
    return cells, stat_cols


def grouping_sets_select(plan: QueryPlan, stat_cols: list[exp.Expr]) -> exp.Select:
    """Step 5, the final aggregate over ``xp_cells``: per variant overall, per exposure day and per
    dimension level (``GROUPING SETS``; ``g_<key>`` columns say which set a row belongs to)."""
    dims = [f"dim{j}" for j in range(len(plan.dimensions))]
    keys = ["variant", "exposure_day", *dims]
    select_cols: list[exp.Expr] = [
        *[_col(k, "g") for k in keys],
        exp.alias_(exp.Anonymous(this="GROUPING", expressions=[_col("exposure_day", "g")]), "g_day"),
        *[exp.alias_(exp.Anonymous(this="GROUPING", expressions=[_col(d, "g")]), f"g_{d}") for d in dims],
    ]
    select_cols += [exp.alias_(_sum(_col(str(c.alias), "g")), str(c.alias)) for c in stat_cols]
    query = exp.select(*select_cols).from_(exp.alias_(exp.to_table("xp_cells"), "g"))
    sets = [exp.Tuple(expressions=[_col("variant", "g")])]
    sets.append(exp.Tuple(expressions=[_col("variant", "g"), _col("exposure_day", "g")]))
    sets += [exp.Tuple(expressions=[_col("variant", "g"), _col(d, "g")]) for d in dims]
    query.set("group", exp.Group(grouping_sets=[exp.GroupingSets(expressions=sets)]))
    return query


def build_experiment_query(
    config: ExperimentConfig,
    dialect: str,
    *,
    data_interval: tuple[datetime | date, datetime | date] | None = None,
    baseline: bool = False,
    read_dialect: str | None = None,
) -> ExperimentQuery:
    """Build the one query of an analysis (``baseline=False``) or of a design (``baseline=True``:
    every unit of the design population counts as one pseudo-variant ``baseline``).

    :param config: the experiment config.
    :param dialect: the dialect the SQL is emitted in (the warehouse's).
    :param data_interval: ``(start, end)``: exposures in ``[start, end)`` (within the config's own
        ``start``/``end``), events before ``end``.
    :param baseline: build the design's baseline query instead of the analysis query.
    :param read_dialect: the dialect user SQL in the config is written in (default: ``dialect``).
    :raises ConfigError: user SQL or an expression that does not parse, or is not read-only.
    """
    plan = plan_query(
        config, dialect, data_interval=data_interval, baseline=baseline, read_dialect=read_dialect
    )
    ctes: list[tuple[str, exp.Query]] = [("xp_exposures", exposures_cte(plan)), ("xp_units", units_cte(plan))]
    metric_cols = [
        MetricColumns(i, metric.name, metric.kind, metric.kind == "ratio", metric.cuped is not None)
        for i, metric in enumerate(config.metrics)
    ]
    unit_values, unit_col = unit_values_cte(plan, ctes)
    ctes.append(("xp_unit_values", unit_values))
    caps, capped_cols = caps_cte(plan, unit_col)
    if caps is not None:
        ctes.append(("xp_caps", caps))
    cells, stat_cols = cells_cte(plan, metric_cols, unit_col, capped_cols, with_caps=caps is not None)
    ctes.append(("xp_cells", cells))
    query = grouping_sets_select(plan, stat_cols)
    for name, cte in ctes:
        query = query.with_(name, as_=cte, copy=False)
    return ExperimentQuery(
        tree=query,
        dialect=dialect,
        metrics=metric_cols,
        dimensions=[d.name for d in plan.dimensions],
        variant_values=plan.variant_values,
    )


# ------------------------------------------------------------------------------------------ helpers


class _Distinct:
    """Names each distinct expression once (``x0``, ``x1``…): shared expressions are computed once."""

    def __init__(self, prefix: str, dialect: str) -> None:
        self.prefix = prefix
        self.dialect = dialect
        self.names: dict[str, str] = {}
        self.columns: list[exp.Expr] = []

    def add(self, node: exp.Expr) -> str:
        key = node.sql(dialect=self.dialect)
        if key not in self.names:
            self.names[key] = f"{self.prefix}{len(self.names)}"
            self.columns.append(exp.alias_(node, self.names[key]))
        return self.names[key]

    def add_or_constant(self, node: exp.Expr) -> str | int:
        """An integer constant as itself; anything else as a DOUBLE column (its name)."""
        constant = _integer_literal(node)
        return constant if constant is not None else self.add(_double(node))


def _when(cond: exp.Expr | None, then: exp.Expr) -> exp.Expr:
    """``then`` where ``cond`` holds (NULL elsewhere); ``None`` means every joined row qualifies."""
    return then if cond is None else exp.Case(ifs=[exp.If(this=cond, true=then)])


def _summed(aggs: _Distinct, src: str, cond: exp.Expr | None, column: str | int) -> exp.Expr:
    """A unit's sum of ``column`` over its joined rows satisfying ``cond``, 0 without any; an
    integer constant ``column`` is that constant times a COUNT (exact: a sum of integers)."""
    if isinstance(column, int):
        n = _coalesce0(_col(aggs.add(_count(cond)), src))
        return _double(n if column == 1 else exp.Mul(this=n, expression=exp.Literal.number(column)))
    return _coalesce0(_col(aggs.add(_sum(_when(cond, _col(column, "e")))), src))


def _anywhere(aggs: _Distinct, src: str, cond: exp.Expr | None) -> exp.Expr:
    """1 when any joined row of the unit satisfies ``cond`` (a conversion), else 0: a COUNT > 0,
    so it shares the COUNT of an integer-constant value or denominator over the same window."""
    count = _col(aggs.add(_count(cond)), src)
    positive = exp.GT(this=count, expression=exp.Literal.number(0))
    return exp.Case(ifs=[exp.If(this=positive, true=exp.Literal.number(1))], default=exp.Literal.number(0))


def _count(cond: exp.Expr | None) -> exp.Expr:
    """The number of the unit's joined rows satisfying ``cond`` (all of them when ``None``)."""
    if cond is None:
        return exp.Count(this=exp.Star())
    return exp.Count(this=exp.Case(ifs=[exp.If(this=cond, true=exp.Literal.number(1))]))


def _integer_literal(node: exp.Expr) -> int | None:
    """``node``'s value when it is a plain integer constant (``1``), else ``None``."""
    if isinstance(node, exp.Literal) and not node.is_string:
        try:
            value = float(node.this)
        except ValueError:
            return None
        if value.is_integer() and 0 < value < 2**31:
            return int(value)
    return None
