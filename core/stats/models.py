"""Pydantic models of the ``dataeng stats`` JSON contract, and the typed input error.

The models are the contract; numeric consistency (negative n, sum > n, an impossible variance, ...)
is checked afterwards on numpy arrays by the engine, because per-row validators on tens of thousands
of metrics are the slow part of an analysis.
"""

from __future__ import annotations

from typing import Any, Literal

from dataeng_agents.core.errors import InputError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

MetricKind = Literal["proportion", "mean", "ratio", "quantile"]
Method = Literal["frequentist", "sequential", "bayesian"]
Difference = Literal["relative", "absolute"]
Alternative = Literal["two-sided", "greater", "less"]
Correction = Literal["none", "holm", "bh"]


class StatsInputError(InputError):
    """Bad analysis input, located by metric name, variant name and field name.

    ``field`` (inherited from :class:`InputError`) is a readable path such as
    ``metrics[conversion].stats.treatment.sum``; ``metric``, ``variant`` and ``stat_field`` are the
    parts (any may be ``None`` when the error is not about one metric or variant).
    """

    def __init__(
        self,
        message: str,
        *,
        metric: str | None = None,
        variant: str | None = None,
        field: str | None = None,
    ) -> None:
        self.metric = metric
        self.variant = variant
        self.stat_field = field
        parts: list[str] = []
        if metric is not None:
            parts.append(f"metrics[{metric}]")
        if variant is not None:
            parts.append(f"stats.{variant}")
        if field is not None:
            parts.append(field)
        super().__init__(".".join(parts), message)


_STRICT = ConfigDict(extra="forbid", allow_inf_nan=False)


class VariantInput(BaseModel):
    """One arm of the experiment. ``units`` feed the sample-ratio-mismatch test."""

    model_config = _STRICT

    name: str = Field(min_length=1)
    units: int | None = Field(default=None, ge=0)
    weight: float | None = Field(default=None, gt=0)


class PriorInput(BaseModel):
    """A proper Gaussian prior on the *relative* lift (scaled by |control mean| for absolute)."""

    model_config = _STRICT

    mean: float = 0.0
    stddev: float = Field(gt=0)


class AnalysisSettings(BaseModel):
    model_config = _STRICT

    method: Method = "frequentist"
    difference: Difference = "relative"
    alpha: float = Field(default=0.05, gt=0, lt=1)
    alternative: Alternative = "two-sided"
    sequential_tuning: float = Field(default=5000, gt=0)
    prior: PriorInput | None = None
    correction: Correction = "none"
    srm_threshold: float = Field(default=0.001, gt=0, lt=1)
    relative_method: Literal["log", "delta"] = "log"
    min_units: int = Field(default=0, ge=0)
    min_conversions: int = Field(default=150, ge=0)


class VariantStats(BaseModel):
    """Sufficient statistics of one metric in one arm (which fields are needed depends on the kind).

    - proportion: ``n``, ``sum``
    - mean: ``n``, ``sum``, ``sum_squares``
    - ratio: ``n``, ``sum``, ``sum_squares``, ``denominator_sum``, ``denominator_sum_squares``,
      ``sum_product_denominator``
    - quantile: ``n``, ``n_star``, ``quantile``, ``quantile_lower``, ``quantile_upper``
    - CUPED (proportion/mean/ratio): ``covariate_sum``, ``covariate_sum_squares``,
      ``sum_product_covariate``; a ratio also needs ``denominator_sum_product_covariate``.
    """

    model_config = _STRICT

    n: float
    sum: float | None = None
    sum_squares: float | None = None
    denominator_sum: float | None = None
    denominator_sum_squares: float | None = None
    sum_product_denominator: float | None = None
    covariate_sum: float | None = None
    covariate_sum_squares: float | None = None
    sum_product_covariate: float | None = None
    denominator_sum_product_covariate: float | None = None
    n_star: float | None = None
    quantile: float | None = None
    quantile_lower: float | None = None
    quantile_upper: float | None = None


class StratumInput(BaseModel):
    model_config = _STRICT

    name: str
    stats: dict[str, VariantStats]


class MetricInput(BaseModel):
    model_config = _STRICT

    name: str = Field(min_length=1)
    kind: MetricKind
    inverse: bool = False
    quantile: float | None = Field(
        default=None, gt=0, lt=1, description="Quantile level of a quantile metric."
    )
    margin: float | None = Field(
        default=None,
        gt=0,
        description="Non-inferiority margin (a guardrail): test one-sided that the metric is "
        "not worse than this (a fraction for a relative lift, metric units for an absolute difference).",
    )
    stats: dict[str, VariantStats] | None = None
    strata: list[StratumInput] | None = None


class AnalysisInput(BaseModel):
    """Input of :func:`analyze` and of ``dataeng stats analyze``."""

    model_config = _STRICT

    control: str = "control"
    variants: list[VariantInput] = Field(min_length=2)
    settings: AnalysisSettings = Field(default_factory=AnalysisSettings)
    metrics: list[MetricInput] = Field(default_factory=list)


class SrmResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    p_value: float
    mismatch: bool


class Risk(BaseModel):
    model_config = ConfigDict(extra="forbid")

    control: float
    variant: float


class MetricResult(BaseModel):
    """One (metric, variant) comparison against control. Numbers are null when ``error`` is set."""

    model_config = ConfigDict(extra="forbid")

    metric: str
    variant: str
    estimate: float | None = None
    std_error: float | None = None
    ci: tuple[float | None, float | None] | None = None
    p_value: float | None = None
    adjusted_p_value: float | None = None
    adjusted_ci: tuple[float | None, float | None] | None = Field(
        default=None,
        description="The interval at the level the adjusted verdict uses: it excludes 0 exactly "
        "when adjusted_p_value < alpha. Null without a correction.",
    )
    chance_to_win: float | None = None
    risk: Risk | None = None
    control_mean: float | None = Field(
        default=None,
        description="Control mean the effect compares against "
        "(CUPED-adjusted and post-stratified when those apply).",
    )
    variant_mean: float | None = Field(default=None, description="The variant's mean, adjusted likewise.")
    error: str | None = None

    @property
    def id(self) -> str:
        """Stable id for narratives: ``metric/variant``."""
        return f"{self.metric}/{self.variant}"


class AnalysisOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    srm: SrmResult | None = None
    results: list[MetricResult] = Field(default_factory=list)


class PowerInput(BaseModel):
    """Input of :func:`power` / ``dataeng stats power``.

    Give ``mde`` to get the sample size; give ``n_per_variant`` (without ``mde``) to get the MDE
    reachable at that size; give both to also get the power at that size.
    """

    model_config = _STRICT

    kind: Literal["proportion", "mean"]
    baseline_mean: float
    baseline_variance: float | None = Field(default=None, gt=0)
    mde: float | None = Field(default=None, gt=0)
    mde_type: Difference = "absolute"
    alpha: float = Field(default=0.05, gt=0, lt=1)
    power: float = Field(default=0.8, gt=0, lt=1)
    variants: int = Field(default=2, ge=2)
    n_per_variant: int | None = Field(default=None, ge=2)
    method: Literal["frequentist", "sequential"] | None = Field(
        default=None,
        description="Size for this analysis (None: the spotify-confidence fixed-horizon convention).",
    )
    difference: Difference = "relative"
    tests: int | None = Field(default=None, ge=1, description="Holm family size (default: variants - 1).")
    sequential_tuning: float = Field(default=5000, gt=0)
    min_conversions: int = Field(default=150, ge=0)


class PowerOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    per_variant: int
    total: int
    mde: float | None = None
    power: float | None = None
    method: str | None = None
    tests: int | None = None


class AnalysisPlan(BaseModel):
    """A sample size sized for the analysis that will be run (see ``stats.power.plan_analysis``)."""

    model_config = ConfigDict(extra="forbid")

    per_variant: int
    total: int
    power: float  # achieved at per_variant (>= the target)
    method: str
    tests: int  # Holm family size
    alpha_per_test: float  # Holm's first step
    critical_z: float  # |z| the comparison must pass at the planned size
    days: float | None = None


def _loc_to_error(raw: Any, loc: tuple[int | str, ...], message: str) -> StatsInputError:
    """Map a pydantic error location such as ('metrics', 3, 'stats', 'b', 'n') to metric/variant/field."""
    if len(loc) >= 2 and loc[0] == "metrics" and isinstance(loc[1], int):
        metric_name: str = f"#{loc[1]}"
        try:
            name = raw["metrics"][loc[1]].get("name")
            if isinstance(name, str) and name:
                metric_name = name
        except (KeyError, IndexError, TypeError, AttributeError):
            pass
        rest = list(loc[2:])
        variant: str | None = None
        if rest[:1] == ["stats"] and len(rest) >= 2:
            variant = str(rest[1])
            rest = rest[2:]
        elif rest[:1] == ["strata"] and len(rest) >= 4 and rest[2] == "stats":
            variant = str(rest[3])
            rest = [f"strata[{rest[1]}]", *rest[4:]]
        field = ".".join(str(p) for p in rest) or None
        return StatsInputError(message, metric=metric_name, variant=variant, field=field)
    if len(loc) >= 2 and loc[0] == "variants" and isinstance(loc[1], int):
        return StatsInputError(
            message, field="variants[" + str(loc[1]) + "]" + "".join(f".{p}" for p in loc[2:])
        )
    return StatsInputError(message, field=".".join(str(p) for p in loc) or None)


def _convert(raw: Any, exc: ValidationError) -> StatsInputError:
    first = exc.errors(include_url=False)[0]
    return _loc_to_error(raw, tuple(first["loc"]), first["msg"])


def parse_analysis_input(raw: Any) -> AnalysisInput:
    """Validate a JSON-like object as :class:`AnalysisInput`, raising :class:`StatsInputError`."""
    if isinstance(raw, AnalysisInput):
        return raw
    if not isinstance(raw, dict):
        raise StatsInputError("the analysis input must be a JSON object")
    try:
        return AnalysisInput.model_validate(raw)
    except ValidationError as exc:
        raise _convert(raw, exc) from None


def parse_power_input(raw: Any) -> PowerInput:
    """Validate a JSON-like object as :class:`PowerInput`, raising :class:`StatsInputError`."""
    if isinstance(raw, PowerInput):
        return raw
    if not isinstance(raw, dict):
        raise StatsInputError("the power input must be a JSON object")
    try:
        return PowerInput.model_validate(raw)
    except ValidationError as exc:
        raise _convert(raw, exc) from None
