"""Lifecycle sections of the experiment YAML: ``exploration:``, ``hypothesis:``, ``tracking:``, ``rollout:``.

They live in the same file as the experiment config (issue 3's ``ExperimentConfig`` reads the
assignment and the metrics; these models read only their own top-level keys and ignore the rest),
so one YAML describes the whole feature: explore → hypothesis → tracking plan → guarded rollout →
final analysis. Every validation error is a :class:`~dataeng_agents.core.errors.ConfigError` whose
``field`` is the path inside the file, e.g. ``rollout.stages[2].percent``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

from dataeng_agents.core.errors import ConfigError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m|min|h|d|w)?\s*$")
_UNIT_HOURS = {"m": 1 / 60, "min": 1 / 60, "h": 1.0, "d": 24.0, "w": 168.0, None: 1.0}


def parse_hours(value: Any) -> float:
    """``"90m"``, ``"24h"``, ``"2d"``, ``"1w"`` or a bare number (hours) → hours."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of hours or a string such as '24h', '2d', '90m'")
    if isinstance(value, int | float):
        hours = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        hours = float(m.group(1)) * _UNIT_HOURS[m.group(2)]
    else:
        raise ValueError(f"{value!r} is not a duration such as '24h', '2d', '90m' or a number of hours")
    if hours < 0:
        raise ValueError("a duration cannot be negative")
    return hours


def as_utc(ts: datetime) -> datetime:
    """Naive timestamps are taken as UTC (warehouses store them that way); aware ones are converted."""
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------------------- exploration
class ExplorationSpec(_Strict):
    """The pre-period to explore and what to compute over it."""

    start: date | None = Field(default=None, description="First day of the pre-period (inclusive).")
    end: date | None = Field(
        default=None,
        description="Last day of the pre-period (inclusive); default: the day before the first exposure.",
    )
    days: int = Field(
        default=28, ge=7, le=366, description="Length of the pre-period when `start` is not given."
    )
    metrics: list[str] | None = Field(default=None, description="Candidate metrics; default every metric.")
    covariate_days: int | None = Field(
        default=None, ge=1, description="Length of the covariate and outcome windows for the CUPED estimate."
    )
    capping_percentiles: list[float] = Field(default_factory=lambda: [0.9, 0.95, 0.99, 0.995, 0.999])
    min_capping_percentile: float = Field(
        default=0.99,
        ge=0.5,
        lt=1,
        description="Capping is suggested only at or above this percentile: a p95 cap trims any distribution.",
    )
    min_capping_variance_reduction: float = Field(
        default=0.1,
        ge=0,
        lt=1,
        description="Capping is suggested only when it removes at least this share of variance.",
    )

    @field_validator("capping_percentiles")
    @classmethod
    def _percentiles(cls, v: list[float]) -> list[float]:
        if not v or any(not 0.5 <= p < 1 for p in v):
            raise ValueError("capping percentiles must be in [0.5, 1)")
        return sorted(set(v))


# ---------------------------------------------------------------------------------------- hypothesis
class HypothesisSpec(_Strict):
    """What the feature changes, what it should move, and how much, in how long."""

    change: str = Field(min_length=3, description="The change, in one sentence.")
    because: str | None = Field(default=None, description="Why we believe it will work (evidence, research).")
    direction: Literal["increase", "decrease"]
    primary_metric: str
    guardrails: list[str] = Field(default_factory=list)
    mde: float = Field(gt=0, description="Minimum detectable effect of the primary metric.")
    mde_type: Literal["relative", "absolute"] = "relative"
    duration_days: int = Field(ge=1, le=365)
    traffic_share: float = Field(
        default=1.0, gt=0, le=1, description="Share of daily traffic in the experiment."
    )
    variants: int = Field(default=2, ge=2)
    alpha: float = Field(default=0.05, gt=0, lt=0.5)
    power: float = Field(default=0.8, gt=0.5, lt=1)


# ------------------------------------------------------------------------------------------ tracking
PropertyType = Literal["string", "integer", "number", "boolean", "timestamp"]


class PropertySpec(_Strict):
    type: PropertyType = "string"
    required: bool = True
    description: str | None = None
    enum: list[str | int | float | bool] | None = None
    minimum: float | None = None
    maximum: float | None = None


class EventSpec(_Strict):
    """One event the feature emits: a table (or the rows of it where ``event_column = name``)."""

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.:-]*$")
    source: str | None = Field(
        default=None,
        description="The `sources:` entry this event is (when its name differs from the source's): the "
        "metric-derived event is merged into this one instead of being checked twice.",
    )
    table: str = Field(description="Table holding the event, e.g. `analytics.checkout_events`.")
    unit_column: str = "user_id"
    timestamp_column: str = "event_ts"
    event_column: str | None = Field(
        default=None, description="Column naming the event when one table holds many."
    )
    loaded_at_column: str | None = Field(default=None, description="Ingestion time, to measure lateness.")
    max_delay: float = Field(default=6.0, description="Allowed hours between event time and ingestion.")
    description: str | None = None
    properties: dict[str, PropertySpec] = Field(default_factory=dict)

    @field_validator("max_delay", mode="before")
    @classmethod
    def _delay(cls, v: Any) -> float:
        return parse_hours(v)


class TrackingSpec(_Strict):
    version: str = Field(default="1.0.0", pattern=r"^\d+\.\d+\.\d+$")
    event_key: str = Field(
        default="event",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="Payload key naming the event, for events without an `event_column`: the JSON "
        "Schema dispatches on it (or on the event's `event_column`).",
    )
    events: list[EventSpec] = Field(default_factory=list)
    max_missing_rate: float = Field(
        default=0.01, ge=0, le=1, description="Share of malformed events tolerated."
    )
    alpha: float = Field(
        default=0.001, gt=0, lt=0.5, description="Level of the between-variant difference tests."
    )

    @model_validator(mode="after")
    def _unique(self) -> TrackingSpec:
        names = [e.name for e in self.events]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"event names must be unique; repeated: {', '.join(dup)}")
        return self


# ------------------------------------------------------------------------------------------- rollout
class RolloutStage(_Strict):
    percent: float = Field(gt=0, le=100, description="Share of units that get the feature in this stage.")
    min_duration: float = Field(default=24.0, description="Hours the stage must run before it may advance.")
    min_units: int = Field(
        default=0, ge=0, description="Treatment units the stage must expose before advancing."
    )

    @field_validator("min_duration", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> float:
        return parse_hours(v)


class GuardrailSpec(_Strict):
    metric: str
    tolerance: float = Field(
        default=0.0, ge=0, lt=1, description="Tolerated relative regression (0.02 = 2%)."
    )
    higher_is_better: bool | None = Field(default=None, description="Default: from the metric definition.")
    action: Literal["roll back", "notify"] = Field(
        default="roll back",
        description="On harm: `roll back` the rollout, or only `notify` (the decision lists the guardrail "
        "under `notify` and the rollout goes on).",
    )
    detectable_harm: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description="Relative regression this guardrail must be able to catch (80% power) before the "
        "rollout completes; default the plan's `detectable_harm`.",
    )


class SrmPolicy(_Strict):
    """What a persistent sample-ratio mismatch does: hold, then after ``max_hold`` roll back or page."""

    threshold: float = Field(default=0.001, gt=0, lt=1, description="p-value below which the ratio is off.")
    max_hold: float = Field(
        default=24.0, ge=0, description="Hours a mismatch may hold the rollout before `then` applies."
    )
    then: Literal["roll back", "page"] = Field(
        default="roll back",
        description="`roll back` (LaunchDarkly's default) or `page`: keep holding and mark the decision "
        "`page: true` for a human.",
    )

    @field_validator("max_hold", mode="before")
    @classmethod
    def _hold(cls, v: Any) -> float:
        return parse_hours(v)


class RolloutPlan(_Strict):
    stages: list[RolloutStage] = Field(min_length=1)
    guardrails: list[GuardrailSpec] = Field(min_length=1)
    treatment: str | None = Field(
        default=None, description="Variant the flag turns on; default the first non-control."
    )
    started_at: datetime | None = Field(
        default=None, description="Start of stage 1; default the first exposure."
    )
    stage_started_at: list[datetime] = Field(
        default_factory=list, description="Start of stages 1, 2, …; missing ones follow the minimum schedule."
    )
    alpha: float = Field(default=0.05, gt=0, lt=0.5, description="False-alarm level of the whole rollout.")
    sequential_tuning: float = Field(
        default=5000.0, gt=0, description="N*: where the confidence sequence is tightest."
    )
    min_units_for_test: int = Field(
        default=100, ge=2, description="Units per arm before a guardrail is judged."
    )
    advance_rule: Literal["no_harm", "non_inferiority"] = Field(
        default="no_harm",
        description="`no_harm`: advance when the stage is complete and no guardrail shows harm; "
        "`non_inferiority`: also require every guardrail's sequence to exclude a regression beyond tolerance.",
    )
    srm_threshold: float | None = Field(
        default=None, gt=0, lt=1, description="Deprecated spelling of `srm.threshold`."
    )
    srm: SrmPolicy = Field(default_factory=SrmPolicy)
    design: Literal["percentage", "coverage"] = Field(
        default="percentage",
        description="`percentage`: the stage's percent gets the feature, everyone else is control (a "
        "returning unit can switch arms when the percent grows). `coverage` (GrowthBook's safe "
        "rollout): the stage's percent is the share of units *in* the rollout, split between a "
        "fixed control and the feature by `split`; a unit never changes arm.",
    )
    split: float = Field(
        default=0.5, gt=0, lt=1, description="`coverage` design: share of covered units that get the feature."
    )
    max_crossover_share: float = Field(
        default=0.01,
        ge=0,
        lt=1,
        description="Share of units seen in both arms above which the comparison is refused as biased.",
    )
    detectable_harm: float = Field(
        default=0.05,
        gt=0,
        lt=1,
        description="Relative regression every guardrail should be able to catch (80% power) by the time "
        "the rollout completes; a weaker guardrail is named in the decision's warnings.",
    )

    @property
    def srm_policy(self) -> SrmPolicy:
        """The SRM policy, with the old top-level ``srm_threshold`` when it was given."""
        if self.srm_threshold is None:
            return self.srm
        return self.srm.model_copy(update={"threshold": self.srm_threshold})

    def treatment_share(self, stage: int) -> float:
        """Planned share of treatment among the stage's compared units (1-based stage)."""
        if self.design == "coverage":
            return self.split
        return self.stages[stage - 1].percent / 100.0

    @field_validator("stages")
    @classmethod
    def _increasing(cls, v: list[RolloutStage]) -> list[RolloutStage]:
        for i in range(1, len(v)):
            if v[i].percent <= v[i - 1].percent:
                raise ValueError(
                    f"stage percents must increase: stage {i + 1} ({v[i].percent}%) <= stage {i}"
                )
        return v

    @model_validator(mode="after")
    def _starts(self) -> RolloutPlan:
        if len(self.stage_started_at) > len(self.stages):
            raise ValueError("more stage_started_at entries than stages")
        starts = [as_utc(t) for t in self.stage_started_at]
        if any(b <= a for a, b in itertools.pairwise(starts)):
            raise ValueError("stage_started_at must increase")
        return self


# ---------------------------------------------------------------------------------------- the file
class LifecycleConfig(_Strict):
    """The lifecycle keys of an experiment YAML (all optional; each command checks what it needs)."""

    experiment_id: str | None = None
    exploration: ExplorationSpec = Field(default_factory=ExplorationSpec)
    hypothesis: HypothesisSpec | None = None
    tracking: TrackingSpec = Field(default_factory=TrackingSpec)
    rollout: RolloutPlan | None = None

    @classmethod
    def load(cls, source: str | Path | Mapping[str, Any]) -> LifecycleConfig:
        """Reads the lifecycle keys from a YAML path or an already-parsed mapping; other keys are ignored."""
        raw = _read_mapping(source)
        picked: dict[str, Any] = {
            k: raw[k] for k in ("exploration", "hypothesis", "tracking", "rollout") if k in raw
        }
        exp_id = raw.get("experiment_id", raw.get("id"))
        if isinstance(exp_id, str):
            picked["experiment_id"] = exp_id
        for key in ("exploration", "tracking"):
            if picked.get(key) is None:
                picked.pop(key, None)
        if isinstance(picked.get("hypothesis"), str | None):
            # free text is the experiment config's own `hypothesis`; the lifecycle's is a mapping
            picked.pop("hypothesis", None)
        try:
            return cls.model_validate(picked)
        except ValidationError as err:
            raise config_error(err) from None

    def require_hypothesis(self) -> HypothesisSpec:
        if self.hypothesis is None:
            raise ConfigError("hypothesis", "the config has no `hypothesis:` section")
        return self.hypothesis

    def require_rollout(self) -> RolloutPlan:
        if self.rollout is None:
            raise ConfigError("rollout", "the config has no `rollout:` section (stages and guardrails)")
        return self.rollout


def _read_mapping(source: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    # the one YAML reader of the experiment config (imported here: it imports this module)
    from dataeng_agents.core.experiment.config import read_config_mapping

    return read_config_mapping(source)[0]


def error_path(loc: tuple[int | str, ...]) -> str:
    """pydantic ``loc`` → ``rollout.stages[2].percent``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def config_error(err: ValidationError) -> ConfigError:
    """The first problem of a pydantic error as a ConfigError naming its path (others appended)."""
    errors = err.errors(include_url=False)
    first = errors[0]
    msg = str(first["msg"]).removeprefix("Value error, ")
    if len(errors) > 1:
        rest = "; ".join(
            f"{error_path(e['loc'])}: {str(e['msg']).removeprefix('Value error, ')}" for e in errors[1:4]
        )
        msg += f" (also: {rest})"
    return ConfigError(error_path(tuple(first["loc"])), msg)
