"""The experiment config: what to read from the warehouse, which metrics to compute, how to decide.

This module is the ONE place an experiment YAML is read (:func:`load_configs`; the CLI, the Airflow
operators, the Prefect tasks and flows and every facade call it) and the ONE place a warehouse
argument is resolved (:func:`resolve_warehouse`).

A config is YAML (or a dict) validated by pydantic. Every error is raised as
:class:`~dataeng_agents.core.errors.ConfigError` whose ``field`` is the config path of the bad value
(``metrics[2].window``), so a user can fix it without reading a traceback.

Identifiers (table and column names) must be plain SQL identifiers, optionally dotted
(``analytics.orders``): quotes, semicolons, comments and whitespace are rejected here, before any SQL
is built. Expressions (``value``, ``denominator``, ``where``, dimension columns) and ``sql`` sources
are parsed with sqlglot later (:mod:`dataeng_agents.core.experiment.query`); they are never pasted.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from dataeng_agents.core.errors import ConfigError
from dataeng_agents.core.lifecycle.config import LifecycleConfig
from dataeng_agents.core.warehouse.identifiers import IDENTIFIER_PATTERN, check_identifier
from dataeng_agents.core.warehouse.sql import Dialect
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

if TYPE_CHECKING:
    from dataeng_agents.core.warehouse.runners import Warehouse


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([dhm])\s*$")


def parse_duration_hours(value: str | int | float) -> float:
    """``"7d"`` -> 168.0, ``"36h"`` -> 36.0, ``"90m"`` -> 1.5; a bare number means hours."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as '7d', '36h' or '90m'")
    if isinstance(value, int | float):
        hours = float(value)
    else:
        m = _DURATION.match(value)
        if not m:
            raise ValueError(f"{value!r} is not a duration: use e.g. '7d', '36h' or '90m'")
        amount, unit = float(m.group(1)), m.group(2)
        hours = amount * {"d": 24.0, "h": 1.0, "m": 1.0 / 60.0}[unit]
    if not hours > 0:
        raise ValueError("a duration must be positive")
    return hours


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _as_datetime(value: datetime | date) -> datetime:
    """A date as midnight, so a date and a datetime compare (start/end may mix them)."""
    if isinstance(value, datetime):
        return value if value.tzinfo is None else value.astimezone(UTC).replace(tzinfo=None)
    return datetime(value.year, value.month, value.day)


class Source(_Model):
    """Where rows come from: exactly one of ``table`` (plain, maybe dotted, name), ``sql`` (a single
    SELECT) or ``file`` (Parquet/CSV path; DuckDB only)."""

    table: str | None = None
    sql: str | None = None
    file: str | None = None
    unit: str = Field(default="unit_id", description="Column holding the randomisation unit id.")
    timestamp: str = Field(default="timestamp", description="Column holding the event/exposure time.")
    where: str | None = Field(
        default=None, description="Optional filter expression over the source's columns."
    )

    @field_validator("table")
    @classmethod
    def _table(cls, v: str | None) -> str | None:
        return None if v is None else check_identifier(v, dotted=True)

    @field_validator("unit", "timestamp")
    @classmethod
    def _column(cls, v: str) -> str:
        return check_identifier(v)

    @model_validator(mode="after")
    def _one_of(self) -> Source:
        given = [k for k in ("table", "sql", "file") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("give exactly one of `table`, `sql` or `file`")
        return self


class Assignment(Source):
    """The exposure log: one row per exposure of a unit to a variant."""

    variant: str = Field(default="variant", description="Column holding the variant name.")
    timestamp: str = Field(default="exposed_at")

    @field_validator("variant")
    @classmethod
    def _variant(cls, v: str) -> str:
        return check_identifier(v)


class Variant(_Model):
    name: str = Field(min_length=1, max_length=200)
    weight: float = Field(default=1.0, gt=0)


class Capping(_Model):
    """Cap each unit's value at an absolute ``value`` or at the in-database ``percentile`` (pooled
    over all analysed units, e.g. 0.99)."""

    value: float | None = Field(default=None, gt=0)
    percentile: float | None = Field(default=None, gt=0, lt=1)

    @model_validator(mode="after")
    def _one_of(self) -> Capping:
        if (self.value is None) == (self.percentile is None):
            raise ValueError("give exactly one of `value` (absolute cap) or `percentile` (e.g. 0.99)")
        return self


class Cuped(_Model):
    """CUPED covariate: the same metric measured in ``pre_window`` before each unit's first exposure."""

    pre_window: float = Field(description="Pre-exposure window, e.g. '14d'.")

    @field_validator("pre_window", mode="before")
    @classmethod
    def _dur(cls, v: Any) -> float:
        return parse_duration_hours(v)


class Metric(_Model):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_ .\-]*$")
    kind: Literal["proportion", "mean", "ratio"]
    source: str | Source = Field(description="A key of `sources`, or an inline source.")
    value: str | None = Field(
        default=None,
        description="Expression summed per unit (mean/ratio numerator); not used by proportions.",
    )
    denominator: str | None = Field(
        default=None, description="Ratio denominator expression, summed per unit."
    )
    window: float | None = Field(
        default=None, description="Count events this long after first exposure ('7d'); default: to the end."
    )
    capping: Capping | None = None
    cuped: Cuped | None = None
    inverse: bool = Field(default=False, description="Lower is better (e.g. latency, refunds).")
    role: Literal["goal", "guardrail", "secondary"] = "secondary"
    mde: float | None = Field(
        default=None, gt=0, description="Minimum detectable effect, relative (0.05 = 5%)."
    )
    margin: float | None = Field(
        default=None,
        gt=0,
        description="Non-inferiority margin (guardrails): tested one-sided that the metric "
        "is not worse by this much (relative 0.02 = 2%, or metric units with difference: absolute).",
    )
    description: str = ""

    @field_validator("window", mode="before")
    @classmethod
    def _window(cls, v: Any) -> float | None:
        return None if v is None else parse_duration_hours(v)

    @model_validator(mode="after")
    def _kind_fields(self) -> Metric:
        if self.kind in ("mean", "ratio") and not self.value:
            raise ValueError(f"a {self.kind} metric needs `value` (an expression summed per unit)")
        if self.kind == "ratio" and not self.denominator:
            raise ValueError("a ratio metric needs `denominator`")
        if self.kind != "ratio" and self.denominator:
            raise ValueError("`denominator` is only for ratio metrics")
        if self.kind == "proportion" and self.capping:
            raise ValueError("a proportion metric cannot be capped (each unit is 0 or 1)")
        return self


class Dimension(_Model):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_ .\-]*$")
    column: str = Field(description="Expression over the assignment source (e.g. a column name).")


class PriorConfig(_Model):
    """A Gaussian prior on the relative lift for ``method: bayesian`` (e.g. ``{mean: 0, stddev: 0.1}``:
    lifts beyond ±20% are unlikely a priori). Without one, the Bayesian analysis is GrowthBook's flat prior."""

    mean: float = 0.0
    stddev: float = Field(gt=0)


class AnalysisConfig(_Model):
    """Statistics settings. Scheduled reports default to ``sequential``: daily peeking stays valid."""

    method: Literal["frequentist", "sequential", "bayesian"] = "sequential"
    difference: Literal["relative", "absolute"] = "relative"
    alpha: float = Field(default=0.05, gt=0, lt=1)
    correction: Literal["none", "holm", "bh"] = "holm"
    sequential_tuning: float = Field(default=5000, gt=0)
    srm_threshold: float = Field(default=0.001, gt=0, lt=1)
    min_conversions: int = Field(
        default=150,
        ge=0,
        description="A proportion arm with fewer conversions (or non-conversions) is "
        "'not enough data', not a verdict (GrowthBook's default minimum sample size).",
    )
    min_units: int = Field(default=0, ge=0, description="An arm with fewer units is 'not enough data'.")
    prior: PriorConfig | None = Field(
        default=None, description="Bayesian only: a proper Gaussian prior on the relative lift."
    )

    @model_validator(mode="after")
    def _prior_needs_bayesian(self) -> AnalysisConfig:
        if self.prior is not None and self.method != "bayesian":
            raise ValueError(f"prior: a prior applies to method bayesian only (method is {self.method})")
        return self


class DecisionConfig(_Model):
    """Thresholds of the written decision rules (see docs/experiments.md)."""

    max_multiple_exposure_rate: float = Field(default=0.01, ge=0, le=1)
    balance_threshold: float = Field(
        default=0.001, gt=0, lt=1, description="p-value below which a CUPED covariate is imbalanced."
    )
    planned_units_per_variant: int | None = Field(default=None, ge=2)
    power: float = Field(default=0.8, gt=0, lt=1)
    min_chance_to_win: float = Field(default=0.95, gt=0.5, lt=1, description="Bayesian ship threshold.")


class DesignConfig(_Model):
    """Inputs of ``design``: the baseline period and, optionally, the population to measure it on
    (default: the assignment source, ignoring variants)."""

    baseline_start: datetime | date | None = None
    baseline_end: datetime | date | None = None
    population: Source | None = None
    power: float = Field(default=0.8, gt=0, lt=1)
    alpha: float | None = Field(default=None, gt=0, lt=1)
    traffic_fraction: float = Field(
        default=1.0, gt=0, le=1, description="Share of traffic in the experiment."
    )


class ExperimentConfig(_Model):
    """A whole experiment. Load with :func:`load_experiment_config` (or :meth:`load`)."""

    id: str = Field(min_length=1, max_length=120, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
    name: str = ""
    hypothesis: str = ""
    owner: str = ""
    warehouse: str | None = Field(
        default=None, description="Default warehouse URL (duckdb:///…, postgresql://…)."
    )
    dialect: Dialect | None = Field(default=None, description="SQL dialect; default: the warehouse's.")
    start: datetime | date | None = None
    end: datetime | date | None = None
    assignment: Assignment
    variants: list[Variant] = Field(min_length=2)
    control: str | None = Field(default=None, description="Control variant name; default: the first variant.")
    sources: dict[str, Source] = Field(default_factory=dict)
    metrics: list[Metric] = Field(min_length=1)
    dimensions: list[Dimension] = Field(default_factory=list)
    analysis: AnalysisConfig = Field(default_factory=AnalysisConfig)
    decision: DecisionConfig = Field(default_factory=DecisionConfig)
    design: DesignConfig = Field(default_factory=DesignConfig)
    base_dir: str | None = Field(
        default=None, description="Directory relative `file:` paths resolve against."
    )

    @model_validator(mode="after")
    def _cross(self) -> ExperimentConfig:
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise _PathError("variants", "variant names must be unique")
        if self.control is not None and self.control not in names:
            raise _PathError("control", f"{self.control!r} is not one of the variants {names}")
        metric_names = [m.name for m in self.metrics]
        dup = sorted({n for n in metric_names if metric_names.count(n) > 1})
        if dup:
            raise _PathError("metrics", f"duplicate metric names {dup}")
        dim_names = [d.name for d in self.dimensions]
        if len(set(dim_names)) != len(dim_names):
            raise _PathError("dimensions", "dimension names must be unique")
        if (
            self.start is not None
            and self.end is not None
            and _as_datetime(self.end) <= _as_datetime(self.start)
        ):
            raise _PathError("end", f"must be after start ({self.start}), got {self.end}")
        for key in self.sources:
            if not IDENTIFIER_PATTERN.match(key):
                raise _PathError(f"sources.{key}", "a source key must be a plain name")
        for i, m in enumerate(self.metrics):
            if isinstance(m.source, str) and m.source not in self.sources:
                raise _PathError(
                    f"metrics[{i}].source", f"unknown source {m.source!r}; define it under `sources`"
                )
        return self

    @property
    def control_name(self) -> str:
        return self.control or self.variants[0].name

    def metric_source(self, metric: Metric) -> Source:
        return self.sources[metric.source] if isinstance(metric.source, str) else metric.source

    @classmethod
    def load(cls, spec: ConfigSource) -> ExperimentConfig:
        """Same as :func:`load_experiment_config` (a lifecycle YAML is accepted too)."""
        return load_experiment_config(spec)


class _PathError(ValueError):
    """A cross-field error that knows its own config path."""

    def __init__(self, path: str, msg: str) -> None:
        self.path = path
        self.msg = msg
        super().__init__(f"{path}: {msg}")


def format_loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith(("function-", "tagged-union")) or part in (
            "str",
            "Source",
            "float",
            "int",
            "date",
            "datetime",
        ):
            # pydantic's union branch names are not part of the user's config path
            continue
        else:
            out += f".{part}" if out else part
    return out


def _to_config_error(exc: ValidationError) -> ConfigError:
    errors = exc.errors(include_url=False)
    # a union (``source: str | Source``) reports one error per branch; the dict branch is the useful one
    first = next((e for e in errors if "Source" in [str(p) for p in e["loc"]]), errors[0])
    msg = str(first["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    ctx = first.get("ctx") or {}
    original = ctx.get("error")
    if isinstance(original, _PathError):
        return ConfigError(original.path, original.msg)
    path = format_loc(tuple(first["loc"])) or "config"
    if first["type"] == "extra_forbidden":
        msg = "unknown key (check the spelling)"
    return ConfigError(path, msg)


# ------------------------------------------------------------------------------------------ loading
#: Top-level keys of the lifecycle sections (:class:`~dataeng_agents.core.lifecycle.LifecycleConfig`)
#: that share the experiment YAML; they are taken out before the experiment config is validated.
LIFECYCLE_KEYS = ("exploration", "tracking", "rollout")

#: Everything a facade accepts as a config.
ConfigSource = ExperimentConfig | tuple[ExperimentConfig, LifecycleConfig] | Mapping[str, Any] | str | Path


def read_config_mapping(source: str | Path | Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The top-level mapping of a config and the folder of its file (``None`` unless read from a file).

    :param source: a mapping (copied), a :class:`~pathlib.Path`, or a string: a file path when it has no
        newline and the file exists (or it ends in ``.yaml``/``.yml``/``.json``), YAML text otherwise.
    :raises ConfigError: the file is missing or unreadable, the YAML is invalid (line and column
        named), or the top level is not a mapping.
    """
    if isinstance(source, Mapping):
        return dict(source), None
    import yaml

    base_dir: str | None = None
    path = Path(source) if isinstance(source, Path) or "\n" not in source else None
    if path is not None and path.exists():
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as err:
            raise ConfigError("config", f"cannot read config {path}: {err.strerror or err}") from None
        base_dir = str(path.resolve().parent)
    elif isinstance(source, Path) or (path is not None and str(source).endswith((".yaml", ".yml", ".json"))):
        raise ConfigError("config", f"file not found: {source}")
    else:
        text = str(source)
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise ConfigError("config", f"not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(raw, dict):
        raise ConfigError("config", "expected a mapping at the top level")
    return raw, base_dir


def load_configs(source: ConfigSource) -> tuple[ExperimentConfig, LifecycleConfig]:
    """Read an experiment YAML: its experiment config and its lifecycle sections.

    The one config loader: ``analyze``/``design`` and the lifecycle commands (explore, hypothesis,
    tracking plan, rollout check) read the same file through it, from the CLI, the Airflow operators
    and the Prefect tasks and flows. The lifecycle keys (``exploration:``, ``tracking:``,
    ``rollout:``) are validated as :class:`~dataeng_agents.core.lifecycle.LifecycleConfig` and taken
    out before the experiment config is validated; a structured ``hypothesis:`` mapping is passed on
    as its one-line ``change`` (the experiment config's ``hypothesis`` is free text).

    :param source: a YAML/JSON file path, YAML text, a mapping, an :class:`ExperimentConfig` (no
        lifecycle sections) or an already-loaded ``(ExperimentConfig, LifecycleConfig)`` pair.
    :returns: the experiment config (``base_dir`` = the file's folder when read from a file) and the
        lifecycle sections (``experiment_id`` defaults to the config's ``id``).
    :raises ConfigError: the field path of the first bad value (``metrics[2].window``,
        ``rollout.stages[1].percent``).
    """
    if isinstance(source, ExperimentConfig):
        return source, LifecycleConfig(experiment_id=source.id)
    if isinstance(source, tuple):
        cfg, lifecycle = source
        if not isinstance(cfg, ExperimentConfig) or not isinstance(lifecycle, LifecycleConfig):
            raise ConfigError("config", "expected an (ExperimentConfig, LifecycleConfig) pair")
        return cfg, lifecycle
    raw, base_dir = read_config_mapping(source)
    lifecycle = LifecycleConfig.load(raw)
    rest = {k: v for k, v in raw.items() if k not in LIFECYCLE_KEYS}
    hypothesis = rest.get("hypothesis")
    if isinstance(hypothesis, Mapping):
        rest["hypothesis"] = str(hypothesis.get("change", ""))
    if base_dir is not None and "base_dir" not in rest:
        rest["base_dir"] = base_dir
    try:
        cfg = ExperimentConfig.model_validate(rest)
    except _PathError as exc:
        raise ConfigError(exc.path, exc.msg) from None
    except ValidationError as exc:
        raise _to_config_error(exc) from None
    if lifecycle.experiment_id is None:
        lifecycle = lifecycle.model_copy(update={"experiment_id": cfg.id})
    return cfg, lifecycle


def load_experiment_config(source: ConfigSource) -> ExperimentConfig:
    """The experiment config of ``source`` (see :func:`load_configs`; lifecycle sections are accepted
    and left out)."""
    return load_configs(source)[0]


def resolve_warehouse(config: ExperimentConfig, warehouse: Warehouse | str | None) -> Warehouse:
    """The warehouse an experiment command reads: the one warehouse resolver of every entry point.

    * a :class:`~dataeng_agents.core.warehouse.Warehouse` is used as given;
    * a URL string (``--warehouse``, an operator or task argument) is opened as typed: a relative
      DuckDB path (``duckdb:///x.duckdb``, ``x.duckdb``) is relative to the *working directory*, the
      way every command-line tool reads a path the user typed;
    * ``None`` opens the config's ``warehouse:`` URL, whose relative DuckDB path is relative to the
      *config file's folder* (``config.base_dir``), so a config and its database can move together.

    :raises ConfigError: no warehouse given and the config has no ``warehouse:``.
    :raises WarehouseError: the URL cannot be opened.
    """
    from dataeng_agents.core.warehouse.runners import warehouse_from_url

    if warehouse is None:
        if not config.warehouse:
            raise ConfigError(
                "warehouse",
                "no warehouse given: pass one (--warehouse URL) or set `warehouse:` in the config",
            )
        return warehouse_from_url(config.warehouse, base_dir=config.base_dir)
    if isinstance(warehouse, str):
        # made absolute now: the warehouse object must not depend on a later change of directory
        return warehouse_from_url(warehouse, base_dir=os.getcwd())
    return warehouse
