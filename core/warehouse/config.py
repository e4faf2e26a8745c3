"""The experiment config: what to read from the warehouse, which metrics to compute, how to decide.

A config is YAML (or a dict) validated by pydantic. Every error is raised as
:class:`~dataeng_agents.core.errors.ConfigError` whose ``field`` is the config path of the bad value
(``metrics[2].window``), so a user can fix it without reading a traceback.

Identifiers (table and column names) must be plain SQL identifiers, optionally dotted
(``analytics.orders``): quotes, semicolons, comments and whitespace are rejected here, before any SQL
is built. Expressions (``value``, ``denominator``, ``where``, dimension columns) and ``sql`` sources
are parsed with sqlglot later (:mod:`dataeng_agents.core.warehouse.sql`); they are never pasted.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

from dataeng_agents.core.errors import ConfigError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

Dialect = Literal["duckdb", "postgres", "snowflake", "bigquery", "redshift", "databricks", "spark"]
DIALECTS: tuple[str, ...] = ("duckdb", "postgres", "snowflake", "bigquery", "redshift", "databricks", "spark")

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([dhm])\s*$")


def check_identifier(value: str, *, dotted: bool = False) -> str:
    """Accept a plain identifier (``dotted``: ``db.schema.table``); raise ``ValueError`` otherwise."""
    parts = value.split(".") if dotted else [value]
    if not value or len(parts) > 3 or not all(_IDENT.match(p) for p in parts):
        kind = "table name" if dotted else "column name"
        raise ValueError(
            f"{value!r} is not a plain {kind}: use letters, digits, '_' and '$'"
            + (" (dotted schema.table allowed)" if dotted else "")
            + "; quotes, semicolons, comments and spaces are not allowed — use `sql:` for anything else"
        )
    return value


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


class AnalysisConfig(_Model):
    """Statistics settings. Scheduled reports default to ``sequential``: daily peeking stays valid."""

    method: Literal["frequentist", "sequential", "bayesian"] = "sequential"
    difference: Literal["relative", "absolute"] = "relative"
    alpha: float = Field(default=0.05, gt=0, lt=1)
    correction: Literal["none", "holm", "bh"] = "holm"
    sequential_tuning: float = Field(default=5000, gt=0)
    srm_threshold: float = Field(default=0.001, gt=0, lt=1)


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
    """A whole experiment. Load with :meth:`load`."""

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
        for key in self.sources:
            if not _IDENT.match(key):
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
    def load(cls, spec: str | Path | dict[str, Any] | ExperimentConfig) -> ExperimentConfig:
        """Load from a YAML/JSON file path, a YAML string, or a dict; raise :class:`ConfigError`."""
        if isinstance(spec, ExperimentConfig):
            return spec
        base_dir: str | None = None
        if isinstance(spec, dict):
            raw: Any = spec
        else:
            import yaml

            text: str
            path = Path(spec) if isinstance(spec, Path) or "\n" not in str(spec) else None
            if path is not None and path.exists():
                text = path.read_text(encoding="utf-8")
                base_dir = str(path.resolve().parent)
            elif isinstance(spec, Path) or (
                path is not None and str(spec).endswith((".yaml", ".yml", ".json"))
            ):
                raise ConfigError("config", f"file not found: {spec}")
            else:
                text = str(spec)
            try:
                raw = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                mark = getattr(exc, "problem_mark", None)
                where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
                raise ConfigError(
                    "config", f"not valid YAML{where}: {getattr(exc, 'problem', exc)}"
                ) from None
        if not isinstance(raw, dict):
            raise ConfigError("config", "expected a mapping at the top level")
        if base_dir is not None and "base_dir" not in raw:
            raw = {**raw, "base_dir": base_dir}
        try:
            return cls.model_validate(raw)
        except _PathError as exc:
            raise ConfigError(exc.path, exc.msg) from None
        except ValidationError as exc:
            raise _to_config_error(exc) from None


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
