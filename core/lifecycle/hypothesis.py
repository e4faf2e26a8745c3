"""A structured hypothesis, validated against the exploration, with prose from the narrator.

Checks (each with a stable id, a status and a message, all computed here — the narrator only
explains them):

* ``hypothesis:primary_metric`` / ``hypothesis:guardrails`` — the metrics exist (and are explored);
* ``hypothesis:direction`` — the expected direction agrees with the metric's better direction;
* ``hypothesis:mde_reachable`` — with the units the exploration says the planned duration brings,
  the MDE is detectable at the planned power (CUPED's expected variance reduction counted when the
  metric has a covariate); otherwise the duration that would be needed;
* ``hypothesis:full_weeks`` — with a significant weekday pattern, the duration covers whole weeks;
* ``hypothesis:rollout_guardrails`` — the guardrails are watched by the rollout plan.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Literal

from dataeng_agents.core.errors import ConfigError
from dataeng_agents.core.lifecycle.config import HypothesisSpec, LifecycleConfig
from dataeng_agents.core.lifecycle.exploration import ExplorationReport
from dataeng_agents.core.narrative import ExperimentNarrative, NarrationTask, NarrativePoint
from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from dataeng_agents.core.experiment.config import ExperimentConfig
    from dataeng_agents.core.stats.power import AnalysisOptions

CheckStatus = Literal["ok", "warning", "fail"]


class HypothesisCheck(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    status: CheckStatus
    message: str


class PowerPlan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metric: str
    kind: Literal["proportion", "mean"]
    baseline_mean: float
    baseline_variance: float | None
    variance_reduction: float = Field(
        description="CUPED's expected share of variance removed (ρ²), 0 without CUPED."
    )
    mde: float
    mde_type: Literal["relative", "absolute"]
    required_per_variant: int
    available_per_variant: int
    reachable_mde: float | None = Field(
        description="MDE detectable with the available units (same type as `mde`)."
    )
    days_needed: int | None = Field(
        description="Days until the required units arrived, at least the metric's window, rounded up to "
        "whole weeks when the data are weekly."
    )
    method: str = Field(
        default="sequential",
        description="The analysis the plan is sized for (the config's `analysis.method`): sequential "
        "(always-valid, what a scheduled report runs) or frequentist.",
    )
    tests: int = Field(default=1, description="Comparisons corrected together (treatment arms).")
    power_at_available: float | None = Field(
        default=None, description="Power of that analysis at the available units."
    )
    window_days: int | None = Field(default=None, description="The metric's outcome window (days).")
    weekly: bool = Field(
        default=False, description="The data have a weekly pattern: durations are whole weeks."
    )


class StagePlan(BaseModel):
    """What a rollout stage will see under the minimum schedule, from the exploration's traffic."""

    model_config = ConfigDict(extra="forbid")

    stage: int
    percent: float
    hours: float
    units: float
    detectable_regression: dict[str, float | None] = Field(
        description="Per guardrail: smallest relative regression rolled back with 90% probability by the stage's end."
    )


class HypothesisPlan(BaseModel):
    """The hypothesis, its checks against the exploration, the power plan and the narrative."""

    model_config = ConfigDict(extra="forbid")

    experiment_id: str
    hypothesis: HypothesisSpec
    checks: list[HypothesisCheck]
    power: PowerPlan | None
    exploration: ExplorationReport | None
    rollout_plan: list[StagePlan] = Field(
        default_factory=list,
        description="Per rollout stage: hours, units and detectable regression per guardrail.",
    )
    narrative: ExperimentNarrative | None = None

    @property
    def ok(self) -> bool:
        return not any(c.status == "fail" for c in self.checks)

    def summary(self) -> dict[str, Any]:
        return {
            "experiment_id": self.experiment_id,
            "ok": self.ok,
            "checks": {c.id: c.status for c in self.checks},
            "required_per_variant": self.power.required_per_variant if self.power else None,
            "available_per_variant": self.power.available_per_variant if self.power else None,
            "days_needed": self.power.days_needed if self.power else None,
        }

    def to_markdown(self) -> str:
        h = self.hypothesis
        mde = f"{h.mde:.1%}" if h.mde_type == "relative" else f"{h.mde:g}"
        lines = [
            f"# Hypothesis and plan — {self.experiment_id}",
            "",
            f"**We believe that** {h.change.rstrip('.')}"
            + (f", **because** {h.because.rstrip('.')}" if h.because else "")
            + f", **will {h.direction}** `{h.primary_metric}` by at least {mde} ({h.mde_type}) within "
            f"{h.duration_days} days, without harming {', '.join(f'`{g}`' for g in h.guardrails) or 'any guardrail'}.",
            "",
        ]
        if self.narrative is not None:
            lines += [f"## {self.narrative.headline}", "", self.narrative.summary, ""]
            lines += [f"- {p.text}" for p in self.narrative.key_points]
            if self.narrative.recommendation:
                lines += ["", f"**Recommendation:** {self.narrative.recommendation}"]
            lines.append("")
        lines += ["## Checks", "", "| check | status | detail |", "|---|---|---|"]
        lines += [f"| `{c.id}` | {c.status} | {c.message} |" for c in self.checks]
        if self.power is not None:
            p = self.power
            lines += [
                "",
                "## Power",
                "",
                f"Baseline of `{p.metric}` over its {p.window_days if p.window_days is not None else '?'}-day window: "
                f"mean {p.baseline_mean:.4g}"
                + (f", variance {p.baseline_variance:.4g}" if p.baseline_variance is not None else "")
                + (
                    f", CUPED removes an expected {p.variance_reduction:.0%} of it"
                    if p.variance_reduction
                    else ""
                )
                + ".",
                "",
                f"- sized for the {p.method} analysis"
                + (f" ({p.tests} comparisons corrected together)" if p.tests > 1 else "")
                + f"; required per variant: {p.required_per_variant:,}",
                "- power at the available units: "
                + ("—" if p.power_at_available is None else f"{p.power_at_available:.0%}"),
                f"- available per variant in {self.hypothesis.duration_days} days: {p.available_per_variant:,}",
                f"- reachable MDE: {_pct(p.reachable_mde, p.mde_type)}",
                f"- days needed: {p.days_needed if p.days_needed is not None else 'more than the pre-period can tell'}"
                + (" (whole weeks: the data have a weekly pattern)" if p.weekly and p.days_needed else ""),
            ]
        if self.rollout_plan:
            guardrails = list(self.rollout_plan[0].detectable_regression)
            lines += [
                "",
                "## Guarded rollout plan",
                "",
                "Smallest relative regression of each guardrail rolled back with 90% probability by the end of "
                "each stage (minimum schedule, traffic from the exploration, always-valid intervals):",
                "",
                "| stage | share | hours | units | " + " | ".join(guardrails) + " |",
                "|---:|---:|---:|---:|" + "---:|" * len(guardrails),
            ]
            for sp in self.rollout_plan:
                cells = [
                    "—" if v is None or v == float("inf") else f"{v:.1%}"
                    for v in sp.detectable_regression.values()
                ]
                lines.append(
                    f"| {sp.stage} | {sp.percent:g}% | {sp.hours:.0f} | {sp.units:,.0f} | "
                    + " | ".join(cells)
                    + " |"
                )
        if self.exploration is not None:
            lines += ["", self.exploration.to_markdown(heading="##")]
        return "\n".join(lines) + "\n"


def _pct(x: float | None, kind: str) -> str:
    if x is None:
        return "—"
    return f"{x:.2%}" if kind == "relative" else f"{x:.4g}"


def validate_hypothesis(
    cfg: ExperimentConfig, life: LifecycleConfig, exploration: ExplorationReport | None
) -> tuple[list[HypothesisCheck], PowerPlan | None]:
    h = life.require_hypothesis()
    checks: list[HypothesisCheck] = []
    by_name = {m.name: m for m in cfg.metrics}
    primary = by_name.get(h.primary_metric)
    if primary is None:
        raise ConfigError(
            "hypothesis.primary_metric",
            f"unknown metric {h.primary_metric!r}; the config defines {list(by_name)}",
        )
    for j, g in enumerate(h.guardrails):
        if g not in by_name:
            raise ConfigError(
                f"hypothesis.guardrails[{j}]", f"unknown metric {g!r}; the config defines {list(by_name)}"
            )
    checks.append(
        HypothesisCheck(
            id="hypothesis:primary_metric",
            status="ok",
            message=f"`{primary.name}` ({primary.kind}) is defined.",
        )
    )

    better = "decrease" if primary.inverse else "increase"
    checks.append(
        HypothesisCheck(
            id="hypothesis:direction",
            status="ok" if h.direction == better else "warning",
            message=f"expected to {h.direction}; lower is better for this metric"
            if primary.inverse
            else f"expected to {h.direction}; higher is better for this metric",
        )
    )
    if not h.guardrails:
        checks.append(
            HypothesisCheck(
                id="hypothesis:guardrails", status="warning", message="no guardrail metrics named."
            )
        )
    if life.rollout is not None:
        watched = {g.metric for g in life.rollout.guardrails}
        missing = [g for g in h.guardrails if g not in watched]
        checks.append(
            HypothesisCheck(
                id="hypothesis:rollout_guardrails",
                status="warning" if missing else "ok",
                message=f"not watched by the rollout plan: {', '.join(missing)}"
                if missing
                else "every guardrail is watched by the rollout plan.",
            )
        )

    power_plan: PowerPlan | None = None
    explored = {m.metric: m for m in exploration.metrics} if exploration else {}
    ex = explored.get(primary.name)
    if exploration is None or ex is None:
        checks.append(
            HypothesisCheck(
                id="hypothesis:mde_reachable",
                status="warning",
                message="not checked: the primary metric was not explored (run `dataeng experiment explore`).",
            )
        )
        return checks, None
    if ex.window_mean is None or (ex.kind == "mean" and not ex.window_variance):
        checks.append(
            HypothesisCheck(
                id="hypothesis:mde_reachable",
                status="fail",
                message="the pre-period has no data for the primary metric.",
            )
        )
        return checks, None
    reduction = (ex.expected_cuped_variance_reduction or 0.0) if primary.cuped is not None else 0.0
    kind: Literal["proportion", "mean"] = ex.kind
    var = None if kind == "proportion" else float(ex.window_variance or 0.0) * (1.0 - reduction)
    base = ex.window_mean
    if kind == "proportion" and reduction:
        # CUPED on a proportion: plan as a mean metric with the reduced Bernoulli variance
        kind, var = "mean", base * (1 - base) * (1.0 - reduction)
    if kind == "proportion" and not 0 < base < 1:
        checks.append(
            HypothesisCheck(
                id="hypothesis:mde_reachable",
                status="fail",
                message=f"baseline {base:.3g} is not a usable rate.",
            )
        )
        return checks, None
    available = int(exploration.traffic.units_in(h.duration_days) * h.traffic_share / h.variants)
    from dataeng_agents.core.stats.models import StatsInputError

    try:
        method, tests, required, reachable, achieved = _size(cfg, h, kind, base, var, available)
    except StatsInputError as err:
        checks.append(
            HypothesisCheck(
                id="hypothesis:mde_reachable", status="fail", message=f"cannot size the test: {err}"
            )
        )
        return checks, None
    window = ex.window_days
    traffic_idx = [v for v in exploration.traffic.weekday_index.values() if v]
    weekly = (ex.seasonality_p_value is not None and ex.seasonality_p_value < 0.01) or (
        bool(traffic_idx) and max(traffic_idx) / min(traffic_idx) - 1 > 0.1
    )
    days_needed: int | None = None
    for d in range(1, 366):
        if exploration.traffic.units_in(d) * h.traffic_share / h.variants >= required:
            # the last units need their whole window, and a weekly pattern needs whole weeks
            days_needed = max(d, window)
            if weekly:
                days_needed = math.ceil(days_needed / 7) * 7
            break
    power_plan = PowerPlan(
        metric=primary.name,
        kind=ex.kind,
        baseline_mean=base,
        baseline_variance=ex.window_variance,
        variance_reduction=reduction,
        mde=h.mde,
        mde_type=h.mde_type,
        required_per_variant=required,
        available_per_variant=available,
        reachable_mde=reachable,
        days_needed=days_needed,
        method=method,
        tests=tests,
        power_at_available=achieved,
        window_days=window,
        weekly=weekly,
    )
    ok = available >= required
    checks.append(
        HypothesisCheck(
            id="hypothesis:mde_reachable",
            status="ok" if ok else "fail",
            message=(
                f"{available:,} units per variant in {h.duration_days} days ≥ {required:,} needed; reachable MDE "
                f"{_pct(reachable, h.mde_type)}."
                if ok
                else f"{available:,} units per variant in {h.duration_days} days < {required:,} needed: reachable MDE is "
                f"{_pct(reachable, h.mde_type)}, not {_pct(h.mde, h.mde_type)}; "
                + (f"{days_needed} days would do." if days_needed else "no duration under a year would do.")
            ),
        )
    )
    if ex.seasonality_p_value is not None and ex.seasonality_p_value < 0.01 and h.duration_days % 7:
        checks.append(
            HypothesisCheck(
                id="hypothesis:full_weeks",
                status="warning",
                message=f"`{primary.name}` has a weekday pattern (amplitude {ex.seasonality_amplitude:.0%}); "
                f"run {math.ceil(h.duration_days / 7) * 7} days (whole weeks), not {h.duration_days}.",
            )
        )
    if ex.tails and ex.tails.suggested_capping_percentile and primary.capping is None:
        checks.append(
            HypothesisCheck(
                id="hypothesis:capping",
                status="warning",
                message=f"`{primary.name}` has a heavy tail: capping at p{ex.tails.suggested_capping_percentile * 100:g} "
                f"removes {ex.tails.variance_reduction_from_capping:.0%} of its variance.",
            )
        )
    return checks, power_plan


def family_size(cfg: ExperimentConfig, h: HypothesisSpec) -> int:
    """Comparisons the primary metric's p-value is corrected with, as the analysis corrects them:
    goal and secondary metrics × treatment arms under ``analysis.correction`` (guardrails are not
    corrected). The planner sizes for Holm's first step, ``alpha / tests``."""
    arms = max(h.variants - 1, 1)
    primary = next((m for m in cfg.metrics if m.name == h.primary_metric), None)
    if cfg.analysis.correction == "none" or primary is None or primary.role == "guardrail":
        return arms
    return arms * max(sum(m.role in ("goal", "secondary") for m in cfg.metrics), 1)


def _size(
    cfg: ExperimentConfig,
    h: HypothesisSpec,
    kind: Literal["proportion", "mean"],
    base: float,
    var: float | None,
    available: int,
) -> tuple[str, int, int, float | None, float | None]:
    """(method, tests, required units per variant, reachable MDE, power at ``available``) for the
    analysis the experiment runs — the stats package's planner (:mod:`dataeng_agents.core.stats.power`),
    so the design page, ``stats power`` and the hypothesis agree on one number."""
    from dataeng_agents.core.experiment.plan import sized_method
    from dataeng_agents.core.stats.power import analysis_mde, analysis_power, analysis_sample_size

    method = sized_method(cfg)
    tests = family_size(cfg, h)
    common: AnalysisOptions = {
        "kind": kind,
        "baseline_mean": base,
        "baseline_variance": var,
        "mde_type": h.mde_type,
        "method": method,
        "difference": cfg.analysis.difference,
        "alpha": h.alpha,
        "tests": tests,
        "sequential_tuning": cfg.analysis.sequential_tuning,
    }
    required = analysis_sample_size(mde=h.mde, power=h.power, **common)
    reachable = analysis_mde(n_per_variant=available, power=h.power, **common) if available >= 2 else None
    achieved = analysis_power(mde=h.mde, n_per_variant=available, **common) if available >= 2 else None
    return method, tests, required, reachable, achieved


def hypothesis_narration(plan: HypothesisPlan) -> NarrationTask[ExperimentNarrative]:
    """The narration task of a hypothesis plan; the template is the offline answer."""
    facts: dict[str, Any] = {
        "hypothesis": plan.hypothesis.model_dump(mode="json"),
        "checks": [c.model_dump(mode="json") for c in plan.checks],
        "power": plan.power.model_dump(mode="json") if plan.power else None,
        "exploration": plan.exploration.summary() if plan.exploration else None,
    }

    def template() -> ExperimentNarrative:
        h = plan.hypothesis
        fails = [c for c in plan.checks if c.status == "fail"]
        warns = [c for c in plan.checks if c.status == "warning"]
        headline = (
            f"The plan can detect a {_pct(h.mde, h.mde_type)} change in {h.primary_metric} in {h.duration_days} days"
            if not fails
            else f"The plan cannot detect a {_pct(h.mde, h.mde_type)} change in {h.primary_metric} in {h.duration_days} days"
        )
        points = [NarrativePoint(text=c.message, refs=[c.id]) for c in [*fails, *warns]]
        if plan.power is not None:
            points.append(
                NarrativePoint(
                    text=f"{plan.power.required_per_variant:,} units per variant are needed and "
                    f"{plan.power.available_per_variant:,} are expected.",
                    refs=["hypothesis:mde_reachable"],
                )
            )
        recommendation = (
            "Extend the duration, raise the traffic share or accept a larger MDE before starting."
            if fails
            else "Start the experiment after the tracking check passes; roll out behind the guardrails."
        )
        return ExperimentNarrative(
            headline=headline,
            summary=f"We expect '{h.change}' to {h.direction} {h.primary_metric}"
            + (f" because {h.because.rstrip('.')}." if h.because else "."),
            key_points=points,
            recommendation=recommendation,
            caveats=["Numbers come from the pre-period; traffic and variance during the test may differ."],
            next_steps=["dataeng experiment tracking-plan", "dataeng experiment rollout-check --stage 1"],
        )

    return NarrationTask(
        kind="plan",
        subject_id=plan.experiment_id,
        facts=facts,
        output_model=ExperimentNarrative,
        template=template,
        persona="data-engineer",
    )


def plan_rollout(
    cfg: ExperimentConfig, life: LifecycleConfig, exploration: ExplorationReport
) -> list[StagePlan]:
    """Per stage of ``rollout:``, the regression each guardrail would be caught at, from the exploration.

    First exposures arrive at the exploration's one-week reach per hour; each guardrail's baseline is
    its per-unit window mean and variance. Guardrails the exploration did not cover get ``None``.
    """
    from dataeng_agents.core.lifecycle.rollout import GuardrailRule, detectable_regression, stage_schedule

    plan = life.rollout
    if plan is None:
        return []
    reach = exploration.traffic.units_in(7)
    units_per_hour = reach / (7 * 24)
    explored = {m.metric: m for m in exploration.metrics}
    by_name = {m.name: m for m in cfg.metrics}
    columns: dict[str, list[float | None]] = {}
    for g in plan.guardrails:
        ex = explored.get(g.metric)
        metric = by_name.get(g.metric)
        if ex is None or metric is None or ex.window_mean is None or not ex.window_mean:
            columns[g.metric] = [None] * len(plan.stages)
            continue
        rule = GuardrailRule(g.metric, ex.kind, higher_is_better=not metric.inverse, tolerance=g.tolerance)
        sd = (ex.window_variance or 0.0) ** 0.5
        columns[g.metric] = list(
            detectable_regression(
                plan, rule, baseline_mean=ex.window_mean, baseline_sd=sd, units_per_hour=units_per_hour
            )
        )
    schedule = stage_schedule(plan, units_per_hour)
    return [
        StagePlan(
            stage=k + 1,
            percent=st.percent,
            hours=schedule[k][0],
            units=schedule[k][1],
            detectable_regression={name: vals[k] for name, vals in columns.items()},
        )
        for k, st in enumerate(plan.stages)
    ]
