"""The vectorised analysis engine: every metric x variant of one analysis as numpy arrays.

Layout. Each metric contributes one *cell* (or one cell per stratum); all cells share the variant axis,
so the raw input is one ``(cells, variants, fields)`` array. Per-arm moments are computed per metric
kind on index subsets (four kinds, never one Python iteration per metric), turned into per-pair
(control, variant) moments (CUPED's theta is pooled per pair), post-stratified back to metrics with
``np.add.reduceat``, and tested with closed forms (``scipy.special``) over the whole
``(metrics, variants)`` grid.

Conventions follow GrowthBook's gbstats so results are comparable: proportion variance p(1-p); mean
variance (ss - s^2/n)/(n-1); ratio by the delta method; relative lift (mt - mc)/|mc| with
delta-method variance; Welch t with Welch-Satterthwaite degrees of freedom; sequential confidence
sequences of Waudby-Smith et al. (gbstats' SequentialTwoSidedTTest); Gaussian Bayesian posterior on
the lift.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter, methodcaller
from typing import Any

import numpy as np
import numpy.typing as npt
from dataeng_agents.core.stats.models import AnalysisInput, AnalysisSettings, MetricInput, StatsInputError
from scipy import special

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
# Cells a vectorised step applies to: a full slice (a view) or an index array.
Rows = slice | IntArray

FIELDS: tuple[str, ...] = (
    "n",
    "sum",
    "sum_squares",
    "denominator_sum",
    "denominator_sum_squares",
    "sum_product_denominator",
    "covariate_sum",
    "covariate_sum_squares",
    "sum_product_covariate",
    "denominator_sum_product_covariate",
    "n_star",
    "quantile",
    "quantile_lower",
    "quantile_upper",
)
_F = {name: i for i, name in enumerate(FIELDS)}
KINDS: tuple[str, ...] = ("proportion", "mean", "ratio", "quantile")
_KIND_CODE = {k: i for i, k in enumerate(KINDS)}
REQUIRED: dict[str, tuple[str, ...]] = {
    "proportion": ("n", "sum"),
    "mean": ("n", "sum", "sum_squares"),
    "ratio": (
        "n",
        "sum",
        "sum_squares",
        "denominator_sum",
        "denominator_sum_squares",
        "sum_product_denominator",
    ),
    "quantile": ("n", "n_star", "quantile", "quantile_lower", "quantile_upper"),
}
CUPED_FIELDS: tuple[str, ...] = ("covariate_sum", "covariate_sum_squares", "sum_product_covariate")

# Relative tolerance for "the sums make this variance impossible": float sums of large numbers
# are not exact, so a variance of -1e-12 * scale is rounding, not bad input.
_VAR_TOL = 1e-9
_Z975 = float(special.ndtri(0.975))

# Error codes of results whose statistic is undefined for valid data (0 = no error).
ERR_NONE = 0
ERR_ZERO_VARIANCE = 1
ERR_ZERO_CONTROL_MEAN = 2
ERR_ZERO_DENOMINATOR = 3
ERR_QUANTILE_EVENTS = 4
ERR_NUMERIC = 5
ERR_TOO_FEW = 6
ERROR_MESSAGES: dict[int, str] = {
    ERR_ZERO_VARIANCE: "zero variance: the effect's standard error is 0, so no test or interval is defined",
    ERR_ZERO_CONTROL_MEAN: "the control mean is 0, so a relative lift is undefined (use difference=absolute)",
    ERR_ZERO_DENOMINATOR: "a ratio denominator sums to 0 in an arm, so the ratio is undefined",
    ERR_QUANTILE_EVENTS: "too few events to estimate the quantile's variance",
    ERR_NUMERIC: "the statistic is numerically undefined for these sums",
    ERR_TOO_FEW: "not enough data: an arm has fewer units than settings.min_units, or (a proportion) fewer "
    "conversions or non-conversions than settings.min_conversions",
}


@dataclass
class CellArrays:
    """Raw sufficient statistics of an analysis, one row per metric (or per stratum of a metric)."""

    values: FloatArray  # (fields, cells, variants): one contiguous grid per field, NaN where absent
    cell_metric: IntArray  # (cells,) index of the metric each cell belongs to
    cell_label: list[str]  # field prefix for errors: "" or "strata[k]."
    metric_names: list[str]
    variant_names: list[str]
    control: int
    kind: IntArray  # (metrics,) index into KINDS
    inverse: BoolArray  # (metrics,)
    quantile_level: FloatArray  # (metrics,) NaN unless quantile
    # Index of each field's grid along the first axis of ``values``. The columnar path stores only the
    # fields it was given plus one all-NaN grid that every absent field maps to: fewer pages to touch.
    slots: dict[str, int] = dataclasses.field(default_factory=lambda: dict(_F))
    # (metrics,) non-inferiority margin (positive, on the effect's scale), NaN where none; None: no margins.
    margin: FloatArray | None = None


@dataclass
class ArrayResults:
    """Results on the ``(metrics, treatment variants)`` grid; NaN where absent or erroneous."""

    metric_names: list[str]
    variant_names: list[str]  # treatment variants only, in input order
    estimate: FloatArray
    std_error: FloatArray
    ci_lower: FloatArray  # -inf where unbounded
    ci_upper: FloatArray  # +inf where unbounded
    p_value: FloatArray
    chance_to_win: FloatArray
    risk_control: FloatArray
    risk_variant: FloatArray
    error: IntArray  # ERR_* codes
    # Means of the compared arms on the metric's scale: CUPED-adjusted (centred on the pair's pooled
    # covariate mean) and post-stratified, i.e. the means the effect is the difference/ratio of.
    control_mean: FloatArray | None = None
    variant_mean: FloatArray | None = None
    # The test's own scale (the log ratio for a relative lift, else the estimate itself), kept so an
    # interval at another level (a multiple-testing-adjusted one) can be derived consistently.
    test_estimate: FloatArray | None = None
    test_std_error: FloatArray | None = None
    test_dof: FloatArray | None = None  # frequentist
    test_units: FloatArray | None = None  # sequential: units of both arms
    log_scale: BoolArray | None = None
    # Per comparison 0 two-sided, 1 greater, 2 less where metrics carry non-inferiority margins.
    alternative_grid: IntArray | None = None


def _raise_at(cells: CellArrays, bad: BoolArray, field: str, message: str, rows: Rows | None = None) -> None:
    """Raise a StatsInputError for the first (cell, variant) flagged in ``bad``.

    ``bad`` covers the cells ``rows`` selects (all cells when ``None`` or a slice).
    """
    if not bool(bad.any()):
        return
    c, v = (int(x) for x in np.argwhere(bad)[0])
    if isinstance(rows, np.ndarray):
        c = int(rows[c])
    raise StatsInputError(
        message,
        metric=cells.metric_names[int(cells.cell_metric[c])],
        variant=cells.variant_names[v],
        field=cells.cell_label[c] + field,
    )


def collect(inp: AnalysisInput) -> CellArrays:
    """Gather the pydantic input into arrays, checking names and the presence of metric stats."""
    names = [v.name for v in inp.variants]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise StatsInputError(f"variant {dup!r} is listed twice", field="variants")
    if inp.control not in names:
        raise StatsInputError(f"control {inp.control!r} is not one of the variants {names}", field="control")
    name_set = set(names)
    metric_names: list[str] = []
    seen: set[str] = set()
    cell_stats: list[dict[str, object]] = []
    cell_metric: list[int] = []
    cell_label: list[str] = []
    kinds = np.empty(len(inp.metrics), dtype=np.int64)
    inverse = np.zeros(len(inp.metrics), dtype=np.bool_)
    qlevel = np.full(len(inp.metrics), np.nan)
    margins = np.array([np.nan if m.margin is None else m.margin for m in inp.metrics], dtype=np.float64)
    for mi, m in enumerate(inp.metrics):
        if m.name in seen:
            raise StatsInputError("metric name is used twice", metric=m.name, field="name")
        seen.add(m.name)
        metric_names.append(m.name)
        kinds[mi] = _KIND_CODE[m.kind]
        inverse[mi] = m.inverse
        if m.kind == "quantile":
            if m.quantile is None:
                raise StatsInputError(
                    "a quantile metric needs its level, e.g. 0.9", metric=m.name, field="quantile"
                )
            qlevel[mi] = m.quantile
        _collect_metric_cells(m, mi, name_set, cell_stats, cell_metric, cell_label)
    rows = [list(stats[name].__dict__.values()) for stats in cell_stats for name in names]  # type: ignore[attr-defined]
    values = np.ascontiguousarray(
        np.array(rows, dtype=np.float64).reshape(len(cell_stats), len(names), len(FIELDS)).transpose(2, 0, 1)
    )
    return CellArrays(
        values=values,
        cell_metric=np.asarray(cell_metric, dtype=np.int64),
        cell_label=cell_label,
        metric_names=metric_names,
        variant_names=names,
        control=names.index(inp.control),
        kind=kinds,
        inverse=inverse,
        quantile_level=qlevel,
        margin=margins if np.isfinite(margins).any() else None,
    )


_FIELD_SET = frozenset(FIELDS)
_METRIC_KEYS = frozenset({"name", "kind", "inverse", "quantile", "stats", "strata"})
_NUMBER_TYPES = frozenset({int, float, type(None)})


def collect_raw(raw: dict[str, Any], header: AnalysisInput) -> CellArrays | None:
    """Fast path of :func:`collect` for JSON-like input: one light pass, no per-metric models.

    Returns ``None`` as soon as anything is not plainly well-formed; the caller then validates the
    whole input with pydantic, which produces the precise error (or accepts a lax input such as a
    number written as a string). Whatever this accepts, pydantic accepts with the same values.
    """
    metrics = raw.get("metrics", [])
    if type(metrics) is not list:
        return None
    names = [v.name for v in header.variants]
    if len(set(names)) != len(names) or header.control not in names:
        return None
    uniform = _collect_uniform(metrics, names, names.index(header.control))
    if uniform is not None:
        return uniform
    name_set = set(names)
    flat: list[Any] = []
    extend = flat.extend
    signatures: dict[tuple[str, ...], int] = {}
    sig_ids: list[int] = []
    cell_metric: list[int] = []
    metric_names: list[str] = []
    kinds: list[int] = []
    inverse: list[bool] = []
    qlevel: list[float | None] = []
    kind_code, metric_keys, field_set = _KIND_CODE, _METRIC_KEYS, _FIELD_SET
    strata_labels: dict[int, str] = {}
    for mi, m in enumerate(metrics):
        if type(m) is not dict or not m.keys() <= metric_keys:
            return None
        name, kind, inv, q = m.get("name"), m.get("kind"), m.get("inverse", False), m.get("quantile")
        if (
            type(name) is not str
            or not name
            or type(kind) is not str
            or kind not in kind_code
            or type(inv) is not bool
        ):
            return None
        if q is not None and (type(q) not in (int, float) or not 0 < q < 1):
            return None
        if kind == "quantile" and q is None:
            return None
        metric_names.append(name)
        kinds.append(kind_code[kind])
        inverse.append(inv)
        qlevel.append(q)
        stats, strata = m.get("stats"), m.get("strata")
        if stats is not None and strata is None:
            groups: list[Any] = [stats]
        elif strata is not None and stats is None and type(strata) is list and strata and kind != "quantile":
            groups = []
            for k, st in enumerate(strata):
                if type(st) is not dict or st.keys() != {"name", "stats"} or type(st["name"]) is not str:
                    return None
                strata_labels[len(cell_metric) + k] = f"strata[{k}]."
                groups.append(st["stats"])
        else:
            return None
        for group in groups:
            if type(group) is not dict or group.keys() != name_set:
                return None
            for vname in names:
                d = group[vname]
                if type(d) is not dict:
                    return None
                # Only the values present are copied; the key tuple ("signature") says where they go.
                keys = tuple(d)
                sid = signatures.get(keys)
                if sid is None:
                    if not set(keys) <= field_set:
                        return None
                    sid = signatures[keys] = len(signatures)
                sig_ids.append(sid)
                extend(d.values())
            cell_metric.append(mi)
    cell_label = [""] * len(cell_metric)
    for cell, label in strata_labels.items():
        cell_label[cell] = label
    if len(set(metric_names)) != len(metric_names):
        return None
    if not set(map(type, flat)) <= _NUMBER_TYPES:
        return None
    given = np.array(flat, dtype=np.float64)
    # None became NaN; a NaN that was not None, or an infinity, goes to pydantic.
    if int(np.isnan(given).sum()) != flat.count(None) or np.isinf(given).any():
        return None
    flat_values = np.full((len(FIELDS), len(sig_ids)), np.nan)
    sig = np.asarray(sig_ids, dtype=np.int64)
    lengths = np.array([len(k) for k in signatures], dtype=np.int64)
    offsets = np.concatenate(([0], np.cumsum(lengths[sig])[:-1]))
    for keys, sid in signatures.items():
        rows = np.flatnonzero(sig == sid)
        cols = np.array([_F[k] for k in keys], dtype=np.int64)
        flat_values[cols[:, None], rows[None, :]] = given[
            offsets[rows][None, :] + np.arange(len(keys))[:, None]
        ]
    values: FloatArray = flat_values.reshape(len(FIELDS), len(cell_metric), len(names))
    if np.isnan(values[_F["n"]]).any():
        return None
    return CellArrays(
        values=values,
        cell_metric=np.asarray(cell_metric, dtype=np.int64),
        cell_label=cell_label,
        metric_names=metric_names,
        variant_names=names,
        control=names.index(header.control),
        kind=np.asarray(kinds, dtype=np.int64),
        inverse=np.asarray(inverse, dtype=np.bool_),
        quantile_level=np.array(qlevel, dtype=np.float64),  # None -> NaN
    )


def _collect_uniform(metrics: list[Any], names: list[str], control: int) -> CellArrays | None:
    """The common shape of a large analysis, read field by field with C-level iteration (~3x faster).

    Applies when no metric is stratified or a quantile, and within each variant every metric gives
    the same statistics (what a generated input has). Returns ``None`` otherwise, or for anything not
    plainly well-formed, and :func:`collect_raw`'s general loop takes over; the checks are the same
    as that loop's, so both accept exactly the same inputs with the same values.
    """
    if set(map(type, metrics)) != {dict}:
        return None
    metric_keys = set(chain.from_iterable(metrics))
    if not metric_keys <= _METRIC_KEYS or "strata" in metric_keys:
        return None
    try:
        metric_names = list(map(itemgetter("name"), metrics))
        kinds = list(map(itemgetter("kind"), metrics))
        stats = list(map(itemgetter("stats"), metrics))
    except KeyError:
        return None
    if set(map(type, metric_names)) != {str} or "" in metric_names or len(set(metric_names)) != len(metrics):
        return None
    if set(map(type, kinds)) != {str}:
        return None
    kind_set = set(kinds)
    if not kind_set <= _KIND_CODE.keys() or "quantile" in kind_set:
        return None
    if "quantile" in metric_keys and set(map(type, map(methodcaller("get", "quantile"), metrics))) != {
        type(None)
    }:
        return None  # a level on a non-quantile metric: the general loop checks its range
    n_metrics = len(metrics)
    if "inverse" in metric_keys:
        inverse = list(map(methodcaller("get", "inverse", False), metrics))
        if not set(map(type, inverse)) <= {bool}:
            return None
        inverse_flags = np.array(inverse, dtype=np.bool_)
    else:
        inverse_flags = np.zeros(n_metrics, dtype=np.bool_)
    # Same size as the variant list and holding every variant (itemgetter below) = the same keys.
    if set(map(type, stats)) != {dict} or set(map(len, stats)) != {len(names)}:
        return None
    per_variant: list[tuple[tuple[str, ...], FloatArray]] = []
    try:
        for vname in names:
            dicts = list(map(itemgetter(vname), stats))
            if set(map(type, dicts)) != {dict}:
                return None
            keys = tuple(dicts[0]) if dicts else ("n",)
            if not set(keys) <= _FIELD_SET or "n" not in keys or set(map(len, dicts)) != {len(keys)}:
                return None
            flat = list(chain.from_iterable(map(itemgetter(k), dicts) for k in keys))
            if not set(map(type, flat)) <= _NUMBER_TYPES:
                return None
            grid = np.array(flat, dtype=np.float64).reshape(len(keys), n_metrics)
            # None became NaN; a NaN that was not None, or an infinity, goes to pydantic.
            nan_count = int(np.isnan(grid).sum())
            if (nan_count and nan_count != flat.count(None)) or np.isinf(grid).any():
                return None
            per_variant.append((keys, grid))
    except KeyError:
        return None
    given = [f for f in FIELDS if any(f in keys for keys, _ in per_variant)]
    slots = dict.fromkeys(FIELDS, len(given))
    slots.update((f, k) for k, f in enumerate(given))
    values = np.full((len(given) + 1, n_metrics, len(names)), np.nan)
    for j, (keys, grid) in enumerate(per_variant):
        for row, key in enumerate(keys):
            values[slots[key], :, j] = grid[row]
    if np.isnan(values[slots["n"]]).any():
        return None
    code_of = _KIND_CODE
    return CellArrays(
        values=values,
        cell_metric=np.arange(n_metrics, dtype=np.int64),
        cell_label=[""] * n_metrics,
        metric_names=metric_names,
        variant_names=names,
        control=control,
        kind=np.array([code_of[k] for k in kinds], dtype=np.int64)
        if len(kind_set) > 1
        else np.full(n_metrics, code_of[kinds[0]] if kinds else 0, dtype=np.int64),
        inverse=inverse_flags,
        quantile_level=np.full(n_metrics, np.nan),
        slots=slots,
    )


def _collect_metric_cells(
    m: MetricInput,
    mi: int,
    names: set[str],
    cell_stats: list[dict[str, object]],
    cell_metric: list[int],
    cell_label: list[str],
) -> None:
    if (m.stats is None) == (m.strata is None):
        raise StatsInputError("give exactly one of `stats` or `strata`", metric=m.name, field="stats")
    if m.stats is not None:
        groups: list[tuple[str, dict[str, object]]] = [("", dict(m.stats))]
    else:
        assert m.strata is not None
        if not m.strata:
            raise StatsInputError("`strata` is empty", metric=m.name, field="strata")
        if m.kind == "quantile":
            raise StatsInputError(
                "post-stratification is not supported for quantile metrics", metric=m.name, field="strata"
            )
        groups = [(f"strata[{k}].", dict(s.stats)) for k, s in enumerate(m.strata)]
    for label, stats in groups:
        if stats.keys() != names:
            unknown = sorted(set(stats) - names)
            if unknown:
                raise StatsInputError(
                    f"unknown variant (variants are {sorted(names)})",
                    metric=m.name,
                    variant=unknown[0],
                    field=label + "stats",
                )
            missing = sorted(names - set(stats))
            raise StatsInputError(
                "no statistics for this variant", metric=m.name, variant=missing[0], field=label + "stats"
            )
        cell_stats.append(stats)
        cell_metric.append(mi)
        cell_label.append(label)


# Centred sums within this relative distance of 0 are rounding noise of a zero variance.
_SNAP = 1e-12


def _var_from_sums(n: FloatArray, s: FloatArray, ss: FloatArray) -> FloatArray:
    # In place where possible (5 temporaries instead of 14): this runs on every cell of an analysis.
    sq = s * s
    sq /= n
    centred: FloatArray = ss - sq
    tol = np.abs(ss)
    np.maximum(tol, sq, out=tol)
    tol *= _SNAP
    centred[np.abs(centred) <= tol] = 0.0
    np.maximum(centred, 0.0, out=centred)
    centred /= n - 1.0
    return centred


def _cov_from_sums(n: FloatArray, s1: FloatArray, s2: FloatArray, sp: FloatArray) -> FloatArray:
    centred = sp - s1 * s2 / n
    centred = np.where(np.abs(centred) <= _SNAP * np.maximum(np.abs(sp), np.abs(s1 * s2 / n)), 0.0, centred)
    return centred / (n - 1.0)


def _rows_of(mask: BoolArray) -> Rows | None:
    """The cells a check applies to: ``None`` for none, a full slice for all (a view, no copy), else indices.

    Checks run only on the cells of the kinds they concern; on a uniform analysis (one kind) every
    check is one pass over contiguous field grids instead of a masked pass over all 14 fields.
    """
    if not bool(mask.any()):
        return None
    if bool(mask.all()):
        return slice(None)
    return np.flatnonzero(mask)


def _absent_slot(slots: dict[str, int]) -> int:
    """The slot of the shared all-NaN grid (the one slot several fields map to), or -1 if none."""
    seen: set[int] = set()
    for slot in slots.values():
        if slot in seen:
            return slot
        seen.add(slot)
    return -1


def validate(cells: CellArrays) -> tuple[BoolArray, IntArray]:
    """Vectorised consistency checks; returns (cuped per cell, kind per cell). Raises StatsInputError."""
    sl = cells.slots
    vals = cells.values
    ckind = cells.kind[cells.cell_metric]
    kind_rows = {kname: _rows_of(ckind == code) for kname, code in _KIND_CODE.items()}
    for kname, rows in kind_rows.items():
        if rows is None:
            continue
        for field in REQUIRED[kname]:
            _raise_at(
                cells, np.isnan(vals[sl[field]][rows]), field, f"is required for a {kname} metric", rows
            )
    n = vals[sl["n"]]
    _raise_at(cells, n < 0, "n", "must not be negative")
    _raise_at(cells, n != np.floor(n), "n", "must be a whole number of units")
    _raise_at(cells, n < 2, "n", "must be at least 2 to estimate a variance")
    _raise_at(cells, n > 1e15, "n", "is larger than any experiment (above 1e15)")

    # CUPED is all-or-nothing per metric: any covariate field anywhere makes all of them required.
    cuped_idx = sorted({sl[f] for f in (*CUPED_FIELDS, "denominator_sum_product_covariate")})
    if cuped_idx == [_absent_slot(sl)]:  # no covariate field was given at all
        cuped_cell: BoolArray = np.zeros(len(cells.cell_metric), dtype=np.bool_)
    else:
        cuped_cell = np.asarray(~np.isnan(vals[cuped_idx]).all(axis=(0, 2)))
    if cuped_cell.any():
        cuped_metric = np.zeros(len(cells.metric_names), dtype=np.bool_)
        np.logical_or.at(cuped_metric, cells.cell_metric, cuped_cell)
        cuped: BoolArray = cuped_metric[cells.cell_metric]
    else:
        cuped = cuped_cell
    rows = kind_rows["quantile"]
    if rows is not None:
        _raise_at(
            cells,
            ~np.isnan(vals[sl["covariate_sum"]][rows]),
            "covariate_sum",
            "CUPED is not supported for quantile metrics",
            rows,
        )
    cu_rows = _rows_of(cuped)
    if cu_rows is not None:
        for field in CUPED_FIELDS:
            _raise_at(
                cells,
                np.isnan(vals[sl[field]][cu_rows]),
                field,
                "is required because this metric has covariate sums (CUPED)",
                cu_rows,
            )
    ratio_cuped = cuped & (ckind == _KIND_CODE["ratio"])
    rc_rows = _rows_of(ratio_cuped)
    if rc_rows is not None:
        _raise_at(
            cells,
            np.isnan(vals[sl["denominator_sum_product_covariate"]][rc_rows]),
            "denominator_sum_product_covariate",
            "is required for a CUPED-adjusted ratio metric",
            rc_rows,
        )

    def col(field: str, rows: Rows) -> FloatArray:
        out: FloatArray = vals[sl[field]][rows]
        return out

    rows = kind_rows["proportion"]
    if rows is not None:
        _raise_at(cells, col("sum", rows) < 0, "sum", "a proportion's sum must not be negative", rows)
        _raise_at(cells, col("sum", rows) > n[rows], "sum", "a proportion's sum must not exceed n", rows)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        rows = _rows_of((ckind == _KIND_CODE["mean"]) | (ckind == _KIND_CODE["ratio"]))
        if rows is not None:
            _check_variance(cells, rows, n[rows], col("sum", rows), col("sum_squares", rows), "sum_squares")
        rows = kind_rows["ratio"]
        if rows is not None:
            nr, s, ss = n[rows], col("sum", rows), col("sum_squares", rows)
            ds, dss = col("denominator_sum", rows), col("denominator_sum_squares", rows)
            _check_variance(cells, rows, nr, ds, dss, "denominator_sum_squares")
            _check_covariance(
                cells,
                rows,
                nr,
                s,
                ss,
                ds,
                dss,
                col("sum_product_denominator", rows),
                "sum_product_denominator",
            )
        if cu_rows is not None:
            nc, s, xs, xss = (
                n[cu_rows],
                col("sum", cu_rows),
                col("covariate_sum", cu_rows),
                col("covariate_sum_squares", cu_rows),
            )
            post_ss = np.where(
                (ckind[cu_rows] == _KIND_CODE["proportion"])[:, None], s, col("sum_squares", cu_rows)
            )
            _check_variance(cells, cu_rows, nc, xs, xss, "covariate_sum_squares")
            _check_covariance(
                cells,
                cu_rows,
                nc,
                s,
                post_ss,
                xs,
                xss,
                col("sum_product_covariate", cu_rows),
                "sum_product_covariate",
            )
        if rc_rows is not None:
            _check_covariance(
                cells,
                rc_rows,
                n[rc_rows],
                col("denominator_sum", rc_rows),
                col("denominator_sum_squares", rc_rows),
                col("covariate_sum", rc_rows),
                col("covariate_sum_squares", rc_rows),
                col("denominator_sum_product_covariate", rc_rows),
                "denominator_sum_product_covariate",
            )
    rows = kind_rows["quantile"]
    if rows is not None:
        q = col("quantile", rows)
        _raise_at(cells, col("n_star", rows) < 0, "n_star", "must not be negative", rows)
        _raise_at(
            cells,
            col("quantile_lower", rows) > q,
            "quantile_lower",
            "must not exceed the quantile estimate",
            rows,
        )
        _raise_at(
            cells,
            col("quantile_upper", rows) < q,
            "quantile_upper",
            "must not be below the quantile estimate",
            rows,
        )
    return cuped, ckind


def _check_variance(
    cells: CellArrays, rows: Rows, n: FloatArray, s: FloatArray, ss: FloatArray, field: str
) -> None:
    _raise_at(
        cells,
        ~np.isfinite(ss * n) | ~np.isfinite(s * s),
        field,
        "overflows double precision in the variance (sums near 1e154 or above): rescale the metric, e.g. "
        "to thousands",
        rows,
    )
    centred = ss * n - s * s
    scale = np.maximum(np.abs(ss * n), s * s)
    _raise_at(
        cells,
        centred < -_VAR_TOL * scale - 1e-300,
        field,
        "is impossible for this sum and n (it implies a negative variance)",
        rows,
    )


def _check_covariance(
    cells: CellArrays,
    rows: Rows,
    n: FloatArray,
    s1: FloatArray,
    ss1: FloatArray,
    s2: FloatArray,
    ss2: FloatArray,
    sp: FloatArray,
    field: str,
) -> None:
    # Cauchy-Schwarz on the centred sums, each centred sum widened by its own rounding tolerance.
    _raise_at(
        cells,
        ~np.isfinite(sp * n) | ~np.isfinite(s1 * s2),
        field,
        "overflows double precision in the covariance (sums near 1e154 or above): rescale the metric",
        rows,
    )
    c12 = sp * n - s1 * s2
    v1 = np.maximum(ss1 * n - s1 * s1, 0.0) + _VAR_TOL * np.maximum(np.abs(ss1 * n), s1 * s1)
    v2 = np.maximum(ss2 * n - s2 * s2, 0.0) + _VAR_TOL * np.maximum(np.abs(ss2 * n), s2 * s2)
    _raise_at(
        cells,
        c12 * c12 > v1 * v2 * (1 + 1e-7),
        field,
        "is impossible for these sums (a correlation above 1 in absolute value)",
        rows,
    )


@dataclass
class _ArmMoments:
    mean: FloatArray  # unadjusted mean of the metric in the arm
    var: FloatArray  # per-unit variance (variance of the mean = var / n)
    n: FloatArray
    xbar: FloatArray  # covariate mean (CUPED), 0 otherwise
    varx: FloatArray
    covx: FloatArray  # covariance of the (linearised) metric with the covariate
    err: IntArray


def arm_moments(cells: CellArrays, cuped: BoolArray, ckind: IntArray) -> _ArmMoments:
    """Per-cell, per-arm moments for every kind, computed on kind subsets."""
    sl = cells.slots
    vals = cells.values
    shape = vals.shape[1:]
    n = vals[sl["n"]]
    mean = np.zeros(shape)
    var = np.zeros(shape)
    xbar = np.zeros(shape)
    varx = np.zeros(shape)
    covx = np.zeros(shape)
    err = np.zeros(shape, dtype=np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        for code, kname in enumerate(KINDS):
            idx = _rows_of(ckind == code)
            if idx is None:
                continue
            v = vals[:, idx]
            nn = v[sl["n"]]
            s = v[sl["sum"]]
            if kname == "proportion":
                p = s / nn
                mean[idx] = p
                var[idx] = p * (1.0 - p)
            elif kname == "mean":
                mean[idx] = s / nn
                var[idx] = _var_from_sums(nn, s, v[sl["sum_squares"]])
            elif kname == "ratio":
                ds = v[sl["denominator_sum"]]
                my, md = s / nn, ds / nn
                vy = _var_from_sums(nn, s, v[sl["sum_squares"]])
                vd = _var_from_sums(nn, ds, v[sl["denominator_sum_squares"]])
                cyd = _cov_from_sums(nn, s, ds, v[sl["sum_product_denominator"]])
                r = s / ds
                mean[idx] = np.where(ds != 0, r, 0.0)
                var[idx] = vy / md**2 - 2.0 * cyd * my / md**3 + my**2 * vd / md**4
                err[idx] = np.where(ds == 0, ERR_ZERO_DENOMINATOR, err[idx])
            else:
                nu = cells.quantile_level[cells.cell_metric[idx]][:, None]
                width = v[sl["quantile_upper"]] - v[sl["quantile_lower"]]
                vinit = (v[sl["n_star"]] / nn) * (nn - 1.0) * (width / (2.0 * _Z975)) ** 2
                mean[idx] = v[sl["quantile"]]
                var[idx] = np.where(nn < 100, vinit, np.maximum(vinit, 1e-5))
                too_few = (nn <= _Z975**2 * nu / (1.0 - nu)) | (nn <= _Z975**2 * (1.0 - nu) / nu)
                too_few |= (vinit <= 0) & (nn < 1000)
                err[idx] = np.where(too_few, ERR_QUANTILE_EVENTS, err[idx])
                continue
            cu = np.flatnonzero(cuped[idx])
            if cu.size == 0:
                continue
            ci = cu if isinstance(idx, slice) else idx[cu]
            vc = v[:, cu]
            nc = nn[cu]
            xs = vc[sl["covariate_sum"]]
            xbar[ci] = xs / nc
            xss = vc[sl["covariate_sum_squares"]]
            varx[ci] = _var_from_sums(nc, xs, xss)
            if kname == "proportion":
                # gbstats reads a proportion's covariate (its pre-period conversion) as a proportion:
                # variance p(1-p), not the n-1 sample variance; a 0/1 covariate has xss == xs.
                binary = xss == xs
                xp = xs / nc
                varx[ci] = np.where(binary, xp * (1.0 - xp), varx[ci])
            cyx = _cov_from_sums(nc, s[cu], xs, vc[sl["sum_product_covariate"]])
            if kname == "ratio":
                # Influence function of the ratio Y/D is (Y - R D) / mean(D): its covariance with X.
                cdx = _cov_from_sums(
                    nc, vc[sl["denominator_sum"]], xs, vc[sl["denominator_sum_product_covariate"]]
                )
                md = vc[sl["denominator_sum"]] / nc
                covx[ci] = (cyx - mean[ci] * cdx) / md
            else:
                covx[ci] = cyx
    return _ArmMoments(mean=mean, var=var, n=n, xbar=xbar, varx=varx, covx=covx, err=err)


@dataclass
class _PairMoments:
    """Moments of both sides of each (control, variant) comparison, CUPED-adjusted per pair."""

    mean_a: FloatArray
    var_a: FloatArray
    n_a: FloatArray
    raw_a: FloatArray  # unadjusted control mean (denominator of the relative lift)
    mean_b: FloatArray
    var_b: FloatArray
    n_b: FloatArray
    raw_b: FloatArray
    err: IntArray


def pair_moments(cells: CellArrays, arm: _ArmMoments, cuped: BoolArray, ckind: IntArray) -> _PairMoments:
    sl = cells.slots
    c = cells.control
    vals = cells.values
    theta = np.zeros(arm.mean.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        cu = np.flatnonzero(cuped)
        if cu.size:
            v = vals[:, cu]
            kind = ckind[cu][:, None]
            nn = v[sl["n"]]
            nj = nn[:, c : c + 1] + nn
            # gbstats' compute_theta: covariance / covariate variance from the pair's joint sums.
            s = v[sl["sum"]]
            ss = np.where(kind == _KIND_CODE["proportion"], s, v[sl["sum_squares"]])
            xs = v[sl["covariate_sum"]]
            xss = v[sl["covariate_sum_squares"]]
            sp = v[sl["sum_product_covariate"]]
            sj, ssj = s[:, c : c + 1] + s, ss[:, c : c + 1] + ss
            xj, xssj, spj = xs[:, c : c + 1] + xs, xss[:, c : c + 1] + xss, sp[:, c : c + 1] + sp
            pj = sj / nj
            post_var = np.where(kind == _KIND_CODE["proportion"], pj * (1 - pj), _var_from_sums(nj, sj, ssj))
            pre_var = _var_from_sums(nj, xj, xssj)
            pxj = xj / nj
            pre_var = np.where((kind == _KIND_CODE["proportion"]) & (xssj == xj), pxj * (1 - pxj), pre_var)
            joint_theta = np.where(
                (pre_var > 0) & (post_var > 0), _cov_from_sums(nj, sj, xj, spj) / pre_var, 0.0
            )
            # A ratio has no joint sums of its influence function; pool the per-arm moments instead.
            w = nn - 1.0
            covx = arm.covx[cu]
            varx = arm.varx[cu]
            num = w[:, c : c + 1] * covx[:, c : c + 1] + w * covx
            den = w[:, c : c + 1] * varx[:, c : c + 1] + w * varx
            ratio_theta = np.where(den > 0, num / den, 0.0)
            theta[cu] = np.where(kind == _KIND_CODE["ratio"], ratio_theta, joint_theta)
        mc = arm.mean[:, c : c + 1]
        vc = arm.var[:, c : c + 1]
        xc = arm.xbar[:, c : c + 1]
        vxc = arm.varx[:, c : c + 1]
        cxc = arm.covx[:, c : c + 1]
        if cu.size:
            # Centred on the pair's pooled covariate mean, so an adjusted mean stays on the metric's
            # scale (what a report shows, and what the log ratio of a relative lift needs); the
            # difference of the adjusted means is gbstats' either way.
            nc_ = arm.n[:, c : c + 1]
            xpool = (nc_ * xc + arm.n * arm.xbar) / (nc_ + arm.n)
            mean_a = mc - theta * (xc - xpool)
            var_a = vc + theta**2 * vxc - 2.0 * theta * cxc
            mean_b = arm.mean - theta * (arm.xbar - xpool)
            var_b = arm.var + theta**2 * arm.varx - 2.0 * theta * arm.covx
        else:  # theta is 0 everywhere: the adjustment is the identity (skips eight temporary grids)
            mean_a, var_a = np.broadcast_to(mc, arm.mean.shape), np.broadcast_to(vc, arm.var.shape)
            mean_b, var_b = arm.mean, arm.var
    n_a = np.broadcast_to(arm.n[:, c : c + 1], arm.n.shape)
    raw_a = np.broadcast_to(mc, arm.mean.shape)
    err = np.maximum(arm.err, arm.err[:, c : c + 1])
    return _PairMoments(
        mean_a=mean_a,
        var_a=var_a,
        n_a=n_a,
        raw_a=raw_a,
        mean_b=mean_b,
        var_b=var_b,
        n_b=arm.n,
        raw_b=arm.mean,
        err=err,
    )


def stratify(cells: CellArrays, pm: _PairMoments) -> _PairMoments:
    """Post-stratify cells into metrics: weights are each stratum's share of all units of the metric."""
    sl = cells.slots
    cm = cells.cell_metric
    if len(cm) == len(cells.metric_names):  # no strata anywhere: cells are metrics
        return pm
    starts = np.flatnonzero(np.r_[True, cm[1:] != cm[:-1]])
    units = cells.values[sl["n"]].sum(axis=1)
    total = np.add.reduceat(units, starts)
    w = (units / total[cm])[:, None]

    def wsum(x: FloatArray) -> FloatArray:
        return np.add.reduceat(w * x, starts, axis=0)

    def wvar(var: FloatArray, n: FloatArray) -> FloatArray:
        return np.add.reduceat(w * w * var / n, starts, axis=0)

    n_a = np.add.reduceat(pm.n_a, starts, axis=0)
    n_b = np.add.reduceat(pm.n_b, starts, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return _PairMoments(
            mean_a=wsum(pm.mean_a),
            var_a=wvar(pm.var_a, pm.n_a) * n_a,
            n_a=n_a,
            raw_a=wsum(pm.raw_a),
            mean_b=wsum(pm.mean_b),
            var_b=wvar(pm.var_b, pm.n_b) * n_b,
            n_b=n_b,
            raw_b=wsum(pm.raw_b),
            err=np.maximum.reduceat(pm.err, starts, axis=0),
        )


# Degrees of freedom from which the Cornish-Fisher series of the t quantile is used: there its
# truncation error (~|z|^11 / dof^5) is below 1e-13 relative for |z| <= 3.5 (checked against
# stdtrit over dof 1e3..1e9 in tests/core/test_stats_columnar.py).
_CF_MIN_DOF = 1000.0
_CF_MAX_Z = 3.5


def t_quantile(dof: FloatArray, p: float) -> FloatArray:
    """Student-t quantile at probability ``p`` for each ``dof`` (``scipy.special.stdtrit``'s values).

    stdtrit inverts the incomplete beta function iteratively per element (~0.35 us each, the costliest
    step of a frequentist analysis); for large dof the Cornish-Fisher expansion in 1/dof (Abramowitz &
    Stegun 26.7.5, four terms) is exact to double precision and costs a few vector operations.
    """
    z = float(special.ndtri(p))
    if abs(z) > _CF_MAX_Z:
        out: FloatArray = special.stdtrit(dof, p)
        return out
    z2 = z * z
    g1 = (z2 + 1.0) * z / 4.0
    g2 = ((5.0 * z2 + 16.0) * z2 + 3.0) * z / 96.0
    g3 = (((3.0 * z2 + 19.0) * z2 + 17.0) * z2 - 15.0) * z / 384.0
    g4 = ((((79.0 * z2 + 776.0) * z2 + 1482.0) * z2 - 1920.0) * z2 - 945.0) * z / 92160.0
    inv = 1.0 / dof
    out = z + (g1 + (g2 + (g3 + g4 * inv) * inv) * inv) * inv
    small = ~(dof >= _CF_MIN_DOF)  # NaN dof included: stdtrit gives NaN
    if small.any():
        out[small] = special.stdtrit(dof[small], p)
    return out


def sequential_rho(alpha: float, tuning: float, two_sided: bool = True) -> float:
    """Mixture parameter of the confidence sequence, optimised for ``tuning`` total units."""
    a = alpha if two_sided else 2.0 * alpha
    return float(np.sqrt((-2.0 * np.log(a) + np.log(-2.0 * np.log(a) + 1.0)) / tuning))


def compute(cells: CellArrays, settings: AnalysisSettings, cuped: BoolArray, ckind: IntArray) -> ArrayResults:
    """Effects and tests on the (metrics, treatment variants) grid."""
    arm = arm_moments(cells, cuped, ckind)
    full = stratify(cells, pair_moments(cells, arm, cuped, ckind))
    # Drop the control-vs-control column before any test: the t quantiles are the costly part.
    keep = [j for j in range(len(cells.variant_names)) if j != cells.control]
    # A slice when control is first or last (a view, no copy of the nine grids).
    cols: slice | list[int] = keep
    if keep == list(range(keep[0], keep[-1] + 1)) if keep else False:
        cols = slice(keep[0], keep[-1] + 1)
    pm = _PairMoments(**{f: getattr(full, f)[:, cols] for f in _PairMoments.__dataclass_fields__})
    alpha = settings.alpha
    relative = settings.difference == "relative"
    err = pm.err.copy()
    log_scale: BoolArray | None = None
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        # Per-arm parts of the estimator's variance (absolute scale): the Welch dof are built from them.
        vb, va = pm.var_b / pm.n_b, pm.var_a / pm.n_a
        if relative:
            denom = np.abs(pm.raw_a)
            est = (pm.mean_b - pm.mean_a) / denom
            var = pm.var_b / (pm.raw_a**2 * pm.n_b) + pm.var_a * pm.raw_b**2 / (pm.raw_a**4 * pm.n_a)
            err = np.where((err == 0) & (pm.raw_a == 0), ERR_ZERO_CONTROL_MEAN, err)
            if settings.relative_method == "log" and settings.method != "bayesian":
                # The lift's test and interval on log(mean_t / mean_c) (delta method), mapped back by
                # exp(x) - 1: an interval that cannot cross -100%, and a statistic that is antisymmetric
                # in the arms (the linear delta method's variance shrinks with the treatment mean, so
                # at small counts it calls "worse" far more often than "better" on A/A data).
                log_scale = (pm.mean_a > 0) & (pm.mean_b > 0)
                if log_scale.any():
                    lb, la = vb / pm.mean_b**2, va / pm.mean_a**2
                    est = np.where(log_scale, np.log(pm.mean_b) - np.log(pm.mean_a), est)
                    var = np.where(log_scale, lb + la, var)
                    vb, va = np.where(log_scale, lb, vb), np.where(log_scale, la, va)
                else:
                    log_scale = None
        else:
            est = pm.mean_b - pm.mean_a
            var = vb + va
        se = np.sqrt(var)
        err = np.where((err == 0) & ~(se > 0), ERR_ZERO_VARIANCE, err)
        nan = np.full(est.shape, np.nan)
        lo, hi, p, ctw, rc, rv = nan, nan.copy(), nan.copy(), nan.copy(), nan.copy(), nan.copy()
        if settings.method == "frequentist":
            dof = (vb + va) ** 2 / (vb**2 / (pm.n_b - 1.0) + va**2 / (pm.n_a - 1.0))
            t = est / se
            if settings.alternative == "two-sided":
                p = 2.0 * special.stdtr(dof, -np.abs(t))
                half = t_quantile(dof, 1.0 - alpha / 2.0) * se
                lo, hi = est - half, est + half
            else:
                half = t_quantile(dof, 1.0 - alpha) * se
                if settings.alternative == "greater":
                    p = special.stdtr(dof, -t)
                    lo, hi = est - half, np.full(est.shape, np.inf)
                else:
                    p = special.stdtr(dof, t)
                    lo, hi = np.full(est.shape, -np.inf), est + half
        elif settings.method == "sequential":
            dof = None
            lo, hi, p = _sequential(est, se, pm.n_a + pm.n_b, settings)
        else:
            dof = None
            est, se, lo, hi, ctw, rc, rv = _bayesian(est, se, pm.raw_a, relative, cells.inverse, settings)
        if cells.margin is not None:
            if settings.method == "bayesian":
                raise StatsInputError(
                    "a non-inferiority margin needs the frequentist or sequential method",
                    metric=cells.metric_names[int(np.flatnonzero(np.isfinite(cells.margin))[0])],
                    field="margin",
                )
            lo, hi, p, alternative_grid = _non_inferiority(
                cells, settings, est, se, dof, pm.n_a + pm.n_b, log_scale, lo, hi, p
            )
        else:
            alternative_grid = None
        test_est, test_se = est, se
        if log_scale is not None:
            est, se, lo, hi = _from_log_scale(log_scale, est, se, lo, hi)
        if settings.min_units or settings.min_conversions:
            err = np.where((err == 0) & _too_few(cells, settings)[:, keep], ERR_TOO_FEW, err)
    out = ArrayResults(
        metric_names=cells.metric_names,
        variant_names=[cells.variant_names[j] for j in keep],
        estimate=est,
        std_error=se,
        ci_lower=lo,
        ci_upper=hi,
        p_value=p,
        chance_to_win=ctw,
        risk_control=rc,
        risk_variant=rv,
        error=err,
        control_mean=np.array(pm.mean_a, dtype=np.float64),
        variant_mean=np.array(pm.mean_b, dtype=np.float64),
        test_estimate=test_est,
        test_std_error=test_se,
        test_dof=dof,
        test_units=pm.n_a + pm.n_b,
        log_scale=log_scale,
        alternative_grid=alternative_grid,
    )
    _finalise_errors(out, settings)
    return out


def adjusted_interval(
    res: ArrayResults, settings: AnalysisSettings, adjusted: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Intervals consistent with multiple-testing-adjusted verdicts (NaN where there is none).

    Each comparison's interval is recomputed at the level ``alpha * p / adjusted_p`` (the level at
    which its own test rejects exactly when the adjusted p-value is below alpha): it excludes 0 iff
    the adjusted p-value is below alpha, for Holm and BH alike. Where p underflows to 0 the
    Bonferroni level alpha/m is used. Same test, same scale (log ratio for a relative lift) as the
    unadjusted interval; for the sequential method the same mixture (rho tuned for alpha).
    """
    nan = np.full(res.estimate.shape, np.nan)
    est, se = res.test_estimate, res.test_std_error
    if est is None or se is None or settings.method == "bayesian":
        return nan, nan.copy()
    alpha = settings.alpha
    tested = np.isfinite(adjusted) & np.isfinite(res.p_value)
    m = max(int(tested.sum()), 1)
    if res.alternative_grid is not None:
        alt = res.alternative_grid
    else:
        alt = np.full(est.shape, _ALTERNATIVE_CODE[settings.alternative], dtype=np.int64)
    two_sided = alt == 0
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        level = np.where((res.p_value > 0) & (adjusted > 0), alpha * res.p_value / adjusted, alpha / m)
        level = np.where(tested, np.minimum(level, alpha), np.nan)
        if settings.method == "frequentist":
            assert res.test_dof is not None
            half = special.stdtrit(res.test_dof, 1.0 - np.where(two_sided, level / 2.0, level)) * se
        else:
            assert res.test_units is not None
            n = res.test_units
            s2 = se**2 * n
            rho2 = sequential_rho(alpha, settings.sequential_tuning, two_sided=True)
            nr2 = n * rho2**2
            half2 = np.sqrt(s2 * 2.0 * (nr2 + 1.0) * np.log(np.sqrt(nr2 + 1.0) / level) / (n * rho2) ** 2)
            rho1 = sequential_rho(alpha, settings.sequential_tuning, two_sided=False)
            nr1 = n * rho1**2
            half1 = np.sqrt(
                s2 * 2.0 * (nr1 + 1.0) / (n * rho1) ** 2 * np.log(1.0 + np.sqrt(nr1 + 1.0) / (2.0 * level))
            )
            half = np.where(two_sided, half2, half1)
        lo = np.where(alt == 2, -np.inf, est - half)
        hi = np.where(alt == 1, np.inf, est + half)
        if res.log_scale is not None:
            _, _, lo_l, hi_l = _from_log_scale(res.log_scale, est, se, lo, hi)
            lo, hi = lo_l, hi_l
    bad = ~tested | (res.error != 0)
    return np.where(bad, np.nan, lo), np.where(bad, np.nan, hi)


def _non_inferiority(
    cells: CellArrays,
    settings: AnalysisSettings,
    est: FloatArray,
    se: FloatArray,
    dof: FloatArray | None,
    n: FloatArray,
    log_scale: BoolArray | None,
    lo: FloatArray,
    hi: FloatArray,
    p: FloatArray,
) -> tuple[FloatArray, FloatArray, FloatArray, IntArray]:
    """Metrics with a margin get a one-sided test of "not worse than the margin" instead.

    H0: effect <= -margin (effect >= +margin for an ``inverse`` metric), on the effect's scale: a
    relative margin of 2% is tested as log(1 - 0.02) (log(1.02)) where the lift is on the log ratio.
    The interval is the one-sided interval of that direction, at the same level.
    """
    assert cells.margin is not None
    margin = cells.margin[:, None]
    has = np.broadcast_to(np.isfinite(margin), est.shape)
    lower_better = np.broadcast_to(cells.inverse[:, None], est.shape)
    null = np.where(lower_better, margin, -margin)
    if log_scale is not None:
        null = np.where(log_scale, np.log1p(np.maximum(null, -1.0 + 1e-300)), null)
    null = np.where(has, null, 0.0)
    out_lo, out_hi, out_p = lo.copy(), hi.copy(), p.copy()
    global_code = _ALTERNATIVE_CODE[settings.alternative]
    alt = np.where(has, np.where(lower_better, 2, 1), global_code).astype(np.int64)
    for greater in (True, False):
        rows = has & (lower_better != greater)
        if not rows.any():
            continue
        one = settings.model_copy(update={"alternative": "greater" if greater else "less"})
        shifted = est - null
        if settings.method == "frequentist":
            assert dof is not None
            t = shifted / se
            half = t_quantile(dof, 1.0 - settings.alpha) * se
            p_one = special.stdtr(dof, -t) if greater else special.stdtr(dof, t)
            lo_one = est - half if greater else np.full(est.shape, -np.inf)
            hi_one = np.full(est.shape, np.inf) if greater else est + half
        else:
            lo_one, hi_one, _ = _sequential(est, se, n, one)
            _, _, p_one = _sequential(shifted, se, n, one)
        out_lo = np.where(rows, lo_one, out_lo)
        out_hi = np.where(rows, hi_one, out_hi)
        out_p = np.where(rows, p_one, out_p)
    return out_lo, out_hi, out_p, alt


_ALTERNATIVE_CODE = {"two-sided": 0, "greater": 1, "less": 2}


def _from_log_scale(
    on_log: BoolArray, est: FloatArray, se: FloatArray, lo: FloatArray, hi: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Lift, its delta-method standard error and interval from log-ratio values where ``on_log``.

    An infinite bound (a one-sided test) stays infinite: -inf is "unbounded", not a lift of -100%.
    """
    lift = np.expm1(est)
    lo_lift = np.where(np.isneginf(lo), -np.inf, np.expm1(lo))
    return (
        np.where(on_log, lift, est),
        np.where(on_log, (lift + 1.0) * se, se),
        np.where(on_log, lo_lift, lo),
        np.where(on_log, np.expm1(hi), hi),
    )


def _too_few(cells: CellArrays, settings: AnalysisSettings) -> BoolArray:
    """(metrics, variants): an arm below ``min_units`` units, or a proportion arm with fewer than
    ``min_conversions`` successes or failures, has too little data for the normal approximation
    every test here relies on; its comparisons (and all of control's) are "not enough data"."""
    sl = cells.slots
    n = cells.values[sl["n"]]
    count = np.where(
        (cells.kind[cells.cell_metric] == _KIND_CODE["proportion"])[:, None],
        np.minimum(cells.values[sl["sum"]], n - cells.values[sl["sum"]]),
        np.inf,
    )
    if len(cells.cell_metric) != len(cells.metric_names):  # strata: the metric's totals decide
        starts = np.flatnonzero(np.r_[True, cells.cell_metric[1:] != cells.cell_metric[:-1]])
        n = np.add.reduceat(n, starts, axis=0)
        count = np.add.reduceat(count, starts, axis=0)
    few: BoolArray = (n < settings.min_units) | (count < settings.min_conversions)
    return few | few[:, cells.control : cells.control + 1]


def _sequential(
    est: FloatArray, se: FloatArray, n: FloatArray, settings: AnalysisSettings
) -> tuple[FloatArray, FloatArray, FloatArray]:
    alpha, tuning = settings.alpha, settings.sequential_tuning
    s2 = se**2 * n
    if settings.alternative == "two-sided":
        rho = sequential_rho(alpha, tuning, two_sided=True)
        nr2 = n * rho**2
        half = np.sqrt(s2) * np.sqrt(2.0 * (nr2 + 1.0) * np.log(np.sqrt(nr2 + 1.0) / alpha) / (n * rho) ** 2)
        # Always-valid p-value: 1 / e-value of the Gaussian mixture martingale (Waudby-Smith eq. 155).
        st2 = est**2 * n / se**2
        log_e = rho**2 * st2 / (2.0 * (nr2 + 1.0)) - 0.5 * np.log(nr2 + 1.0)
        p = np.minimum(np.exp(-log_e), 1.0)
        return est - half, est + half, p
    rho = sequential_rho(alpha, tuning, two_sided=False)
    nr2 = n * rho**2
    k = 2.0 * (nr2 + 1.0) / (n * rho) ** 2
    c = np.sqrt(nr2 + 1.0)
    half = np.sqrt(s2 * k * np.log(1.0 + c / (2.0 * alpha)))
    signed = est if settings.alternative == "greater" else -est
    p = _one_sided_sequential_p(signed, s2 * k, c)
    if settings.alternative == "greater":
        return est - half, np.full(est.shape, np.inf), p
    return np.full(est.shape, -np.inf), est + half, p


def _one_sided_sequential_p(signed: FloatArray, s2k: FloatArray, c: FloatArray) -> FloatArray:
    """The alpha at which the one-sided bound touches 0, found as gbstats finds it.

    gbstats bisects over alpha in [1e-5, 0.4999] with rho fixed, stopping once the bound is within
    1e-6 of 0; the closed form differs from that by up to ~1e-4 relative, so the bisection is
    reproduced here, vectorised (every element advances together, finished ones are frozen).
    """

    def bound(a: FloatArray, rows: IntArray) -> FloatArray:
        return signed[rows] - np.sqrt(s2k[rows] * np.log(1.0 + c[rows] / (2.0 * a)))

    shape = signed.shape
    s2k = np.broadcast_to(s2k, shape).ravel()
    c = np.broadcast_to(c, shape).ravel()
    signed = signed.ravel()
    out = np.full(signed.size, np.nan)
    every = np.arange(signed.size)
    lo_a, hi_a = 1e-5, 0.4999
    at_small = bound(np.full(signed.size, lo_a), every) > 0
    at_big = bound(np.full(signed.size, hi_a), every) < 0
    out[at_small] = lo_a
    out[at_big & ~at_small] = hi_a
    rows = np.flatnonzero(~at_small & ~at_big & np.isfinite(signed) & np.isfinite(s2k))
    amin = np.full(rows.size, lo_a)
    amax = np.full(rows.size, hi_a)
    this = 0.5 * (amin + amax)
    for _ in range(100):
        if rows.size == 0:
            break
        diff = bound(this, rows)
        below = diff < 0
        amin = np.where(below, this, amin)
        amax = np.where(below, amax, this)
        this = 0.5 * (amin + amax)
        conv = np.abs(diff) < 1e-6
        out[rows[conv]] = this[conv]
        keep = ~conv
        rows, amin, amax, this = rows[keep], amin[keep], amax[keep], this[keep]
    return out.reshape(shape)


def _bayesian(
    est: FloatArray,
    se: FloatArray,
    control_mean: FloatArray,
    relative: bool,
    inverse: BoolArray,
    settings: AnalysisSettings,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    prior = settings.prior
    if prior is None:
        post_mean, post_sd = est, se
    else:
        scale = 1.0 if relative else np.abs(control_mean)
        pm, psd = prior.mean * scale, prior.stddev * scale
        precision = 1.0 / se**2 + 1.0 / psd**2
        post_sd = np.sqrt(1.0 / precision)
        post_mean = (est / se**2 + pm / psd**2) / precision
    z = special.ndtri(1.0 - settings.alpha / 2.0)
    lo, hi = post_mean - z * post_sd, post_mean + z * post_sd
    inv = inverse[:, None]
    # "Better" direction of the lift: lower is better for inverse metrics.
    gain = np.where(inv, -post_mean, post_mean)
    ratio = gain / post_sd
    ctw = special.ndtr(ratio)
    # Expected loss of choosing control = E[max(gain, 0)]; of choosing the variant = E[max(-gain, 0)].
    risk_control = gain * special.ndtr(ratio) + post_sd * np.exp(-0.5 * ratio**2) / np.sqrt(2.0 * np.pi)
    risk_variant = risk_control - gain
    return post_mean, post_sd, lo, hi, ctw, risk_control, np.maximum(risk_variant, 0.0)


def _finalise_errors(out: ArrayResults, settings: AnalysisSettings) -> None:
    """Flag any non-finite number that slipped through as ERR_NUMERIC, then blank errored results."""
    finite = np.isfinite(out.estimate) & np.isfinite(out.std_error)
    finite &= ~np.isnan(out.ci_lower) & ~np.isnan(out.ci_upper)
    if settings.method == "bayesian":
        finite &= (
            np.isfinite(out.chance_to_win) & np.isfinite(out.risk_control) & np.isfinite(out.risk_variant)
        )
        finite &= np.isfinite(out.ci_lower) & np.isfinite(out.ci_upper)
    else:
        finite &= np.isfinite(out.p_value)
    out.error = np.where((out.error == 0) & ~finite, ERR_NUMERIC, out.error)
    bad = out.error != 0
    if not bad.any():
        return
    for arr in (
        out.estimate,
        out.std_error,
        out.ci_lower,
        out.ci_upper,
        out.p_value,
        out.chance_to_win,
        out.risk_control,
        out.risk_variant,
        out.control_mean,
        out.variant_mean,
    ):
        if arr is not None:
            arr[bad] = np.nan
