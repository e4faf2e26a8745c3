"""The report models: one :class:`ExperimentReport` (analysis) and one :class:`ExperimentDesignReport`
(design) that every renderer (JSON, Markdown, HTML) and both orchestrator adapters read.

Numbers come from the statistics engine and the warehouse only; the narrative holds prose and
references to result ids (``metric/variant``, ``check:<id>``), never numbers of its own.
"""

from __future__ import annotations

from typing import Any, Literal

from dataeng_agents.core.narrative import ExperimentNarrative
from pydantic import BaseModel, ConfigDict, Field

Verdict = Literal["ship", "do not ship", "keep running", "investigate"]
CheckStatus = Literal["pass", "warn", "fail"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VariantSummary(_Model):
    name: str
    is_control: bool
    weight: float
    units: int
    expected_share: float
    observed_share: float


class MetricSummary(_Model):
    name: str
    kind: str
    role: Literal["goal", "guardrail", "secondary"]
    inverse: bool
    description: str = ""
    mde: float | None = None
    cuped: bool = False
    capped: str | None = None
    window_hours: float | None = None


class ResultRow(_Model):
    """One metric x variant comparison against control."""

    id: str = Field(description="Stable id: metric/variant.")
    metric: str
    variant: str
    role: Literal["goal", "guardrail", "secondary"]
    kind: str
    inverse: bool
    control_mean: float | None
    variant_mean: float | None
    estimate: float | None
    std_error: float | None
    ci_lower: float | None
    ci_upper: float | None
    p_value: float | None
    adjusted_p_value: float | None
    adjusted_ci_lower: float | None = Field(
        default=None,
        description="The interval at the level the (multiple-testing-adjusted) verdict uses: "
        "it excludes 0 exactly when adjusted_p_value < alpha. None without a correction or unbounded.",
    )
    adjusted_ci_upper: float | None = None
    chance_to_win: float | None
    impact_per_day: float | None = Field(
        default=None,
        description="Absolute impact: the change in the metric's daily total if every unit first "
        "exposed in a day got the variant (difference per unit x the report's units_per_day). "
        "None for ratio metrics (their denominator moves too) or without exposure days.",
    )
    impact_ci_lower: float | None = Field(
        default=None,
        description="impact_per_day's interval: the verdict's interval (adjusted when a correction "
        "applies) scaled the same way; a relative interval is scaled at the control mean.",
    )
    impact_ci_upper: float | None = None
    significant: bool
    direction: Literal["better", "worse", "flat"]
    cuped: bool = False
    error: str | None = None


class HealthCheck(_Model):
    id: str
    name: str
    status: CheckStatus
    message: str
    value: float | None = None
    threshold: float | None = None
    refs: list[str] = Field(default_factory=list)


class TimePoint(_Model):
    day: str
    units: int
    estimate: float | None
    ci_lower: float | None
    ci_upper: float | None


class TimeSeries(_Model):
    metric: str
    variant: str
    points: list[TimePoint]


class DimensionRow(_Model):
    """One metric x variant comparison within one dimension level (a slice: exploratory)."""

    dimension: str
    level: str
    metric: str
    variant: str
    units: int
    estimate: float | None
    ci_lower: float | None
    ci_upper: float | None
    p_value: float | None
    adjusted_p_value: float | None = Field(
        default=None,
        description="Benjamini-Hochberg over every slice comparison of the report (slices are many: "
        "false discoveries are controlled, not the family-wise error).",
    )
    srm_p_value: float | None = Field(
        default=None,
        description="The slice's own sample ratio test (all arms' units in this level vs the weights).",
    )
    srm_mismatch: bool = Field(
        default=False,
        description="srm_p_value below the SRM threshold: the slice's split is off, so its comparison "
        "is not trustworthy (e.g. the dimension changes with the treatment).",
    )
    error: str | None = None


class DecisionReason(_Model):
    rule: str = Field(description="Id of the written rule (docs/experiments.md), e.g. D4.")
    text: str
    refs: list[str] = Field(default_factory=list)


class Decision(_Model):
    verdict: Verdict
    variant: str | None = Field(default=None, description="The variant to ship (verdict ship).")
    per_variant: dict[str, Verdict] = Field(default_factory=dict)
    reasons: list[DecisionReason] = Field(default_factory=list)


class ExperimentReport(_Model):
    """The result of ``analyze_experiment``: what every renderer and adapter reads."""

    kind: Literal["experiment_analysis"] = "experiment_analysis"
    experiment_id: str
    name: str = ""
    hypothesis: str = ""
    owner: str = ""
    generated_at: str
    data_interval: tuple[str, str] | None = None
    dialect: str
    method: str
    difference: str
    alpha: float
    correction: str
    control: str
    total_units: int
    excluded_units: int
    planned_units_per_variant: int | None = None
    units_per_day: float | None = Field(
        default=None, description="Units first exposed per exposure day, all variants together."
    )
    variants: list[VariantSummary]
    metrics: list[MetricSummary]
    results: list[ResultRow]
    health: list[HealthCheck]
    decision: Decision
    timeseries: list[TimeSeries] = Field(default_factory=list)
    dimensions: list[DimensionRow] = Field(default_factory=list)
    narrative: ExperimentNarrative | None = None
    sql: str = ""
    timings: dict[str, float] = Field(default_factory=dict)

    def result(self, metric: str, variant: str) -> ResultRow:
        for r in self.results:
            if r.metric == metric and r.variant == variant:
                return r
        raise KeyError(f"{metric}/{variant}")

    def policy_problems(self, kind: Literal["srm", "guardrail"]) -> list[str]:
        """Why a stop policy of that ``kind`` fires: the failed ``srm`` or ``guardrails`` health check.

        Both orchestrators stop a scheduled report on these (Airflow fails the task, Prefect the flow),
        after the report is written; empty when the experiment is healthy in that respect.
        """
        check_id = {"srm": "srm", "guardrail": "guardrails"}[kind]
        return [f"{h.name}: {h.message}" for h in self.health if h.id == check_id and h.status == "fail"]

    def summary(self) -> dict[str, Any]:
        """Compact, secret-free summary for XCom / Prefect results (no SQL, no URLs, no prose)."""
        return {
            "experiment_id": self.experiment_id,
            "verdict": self.decision.verdict,
            "variant": self.decision.variant,
            "per_variant": dict(self.decision.per_variant),
            "method": self.method,
            "data_interval": list(self.data_interval) if self.data_interval else None,
            "units": {v.name: v.units for v in self.variants},
            "excluded_units": self.excluded_units,
            "health": {h.id: h.status for h in self.health},
            "goals": [
                {
                    "id": r.id,
                    "estimate": r.estimate,
                    "ci": [r.ci_lower, r.ci_upper],
                    "impact_per_day": r.impact_per_day,
                    "p_value": r.adjusted_p_value if r.adjusted_p_value is not None else r.p_value,
                    "significant": r.significant,
                    "direction": r.direction,
                }
                for r in self.results
                if r.role == "goal"
            ],
            "headline": self.narrative.headline if self.narrative else None,
            # who wrote the prose (model id, or template and why): for XCom summaries and artifacts
            "prose": self.narrative.provenance.summary() if self.narrative else None,
        }


class MetricPlan(_Model):
    name: str
    kind: str
    role: Literal["goal", "guardrail", "secondary"]
    inverse: bool
    description: str = ""
    baseline_mean: float | None
    baseline_variance: float | None
    mde: float | None
    per_variant: int | None = None
    power: float | None = Field(
        default=None,
        description="Power of the report's analysis (method, correction, minimum counts) at "
        "per_variant for this metric's MDE.",
    )
    total: int | None = None
    days: float | None = None
    note: str | None = None


class ExperimentDesignReport(_Model):
    """The result of ``design_experiment``: baseline, power and the metric plan."""

    kind: Literal["experiment_design"] = "experiment_design"
    experiment_id: str
    name: str = ""
    hypothesis: str = ""
    owner: str = ""
    generated_at: str
    dialect: str
    baseline_period: tuple[str | None, str | None]
    baseline_units: int
    baseline_days: float
    traffic_per_day: float
    traffic_fraction: float
    alpha: float
    power: float
    method: str
    variants: list[VariantSummary]
    metrics: list[MetricPlan]
    per_variant: int | None = Field(default=None, description="Units per variant the goals need (max).")
    duration_days: float | None = None
    narrative: ExperimentNarrative | None = None
    sql: str = ""

    def summary(self) -> dict[str, Any]:
        return {
            "experiment_id": self.experiment_id,
            "per_variant": self.per_variant,
            "duration_days": self.duration_days,
            "traffic_per_day": self.traffic_per_day,
            "metrics": {m.name: m.per_variant for m in self.metrics},
        }
