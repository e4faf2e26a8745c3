"""The narration of an analysis and of a design: the facts Claude may cite (stable ids) and the
deterministic template that writes the same prose offline."""

from __future__ import annotations

import math
from typing import Any

from dataeng_agents.core.narrative import ExperimentNarrative, NarrationTask, NarrativePoint
from dataeng_agents.core.report.model import ExperimentDesignReport, ExperimentReport, ResultRow


def fmt_effect(value: float | None, difference: str) -> str:
    """An effect as text: ``+3.1%`` (relative) or ``+0.0123`` (absolute); ``n/a`` when missing."""
    if value is None:
        return "n/a"
    return f"{value:+.1%}" if difference == "relative" else f"{value:+.4g}"


def _ci_text(r: ResultRow, difference: str, alpha: float) -> str:
    if r.ci_lower is None and r.ci_upper is None:
        return ""
    level = f"{1 - alpha:.0%}"
    return f" ({level} CI {fmt_effect(r.ci_lower, difference)} to {fmt_effect(r.ci_upper, difference)})"


def experiment_template(report: ExperimentReport) -> ExperimentNarrative:
    d = report.decision
    diff = report.difference
    goals = [r for r in report.results if r.role == "goal"]
    failing = [h for h in report.health if h.status == "fail"]

    def describe(r: ResultRow) -> str:
        state = f"significantly {r.direction}" if r.significant else "not significantly different"
        if r.error:
            return f"{r.metric} for {r.variant}: not computed ({r.error})"
        return f"{r.metric} for {r.variant}: {fmt_effect(r.estimate, diff)}{_ci_text(r, diff, report.alpha)}, {state}"

    if d.verdict == "ship" and d.variant:
        best = next((r for r in goals if r.variant == d.variant and r.significant), None)
        headline = f"Ship {d.variant}" + (
            f": {best.metric} {fmt_effect(best.estimate, diff)}{_ci_text(best, diff, report.alpha)}"
            if best
            else ""
        )
    elif d.verdict == "investigate":
        headline = (
            "Investigate before reading the results: "
            + "; ".join(h.name.lower() for h in failing)
            + " failed"
        )
    elif d.verdict == "do not ship":
        bad = [r for r in report.results if r.significant and r.direction == "worse"]
        headline = (
            "Do not ship: "
            + ", ".join(f"{r.metric} {fmt_effect(r.estimate, diff)} for {r.variant}" for r in bad[:3])
            if bad
            else "Do not ship: no goal metric moved at the planned sample size"
        )
    else:
        headline = "Keep running: no goal metric has a conclusive result yet"

    units = ", ".join(f"{v.name} {v.units:,}" for v in report.variants)
    method_text = {
        "sequential": "sequential (always-valid) confidence intervals, safe to look at every day",
        "frequentist": "fixed-horizon frequentist tests, valid once at the planned sample size",
        "bayesian": "a Bayesian model (chance to win and expected loss)",
    }.get(report.method, report.method)
    summary = (
        f"{report.total_units:,} units were exposed ({units}; {report.excluded_units:,} excluded for seeing "
        f"several variants). Results use {method_text}"
        + (
            f", with {report.correction} correction across goal and secondary metrics."
            if report.correction != "none"
            else "."
        )
    )
    key_points = [NarrativePoint(text=describe(r), refs=[r.id]) for r in goals]
    key_points += [
        NarrativePoint(text=describe(r), refs=[r.id])
        for r in report.results
        if r.role != "goal" and r.significant
    ]
    key_points += [NarrativePoint(text=f"{h.name}: {h.message}", refs=[f"check:{h.id}"]) for h in failing]
    recommendation = (
        {
            "ship": f"Ship {d.variant}.",
            "do not ship": "Do not ship the tested variants.",
            "keep running": "Keep the experiment running and look again tomorrow.",
            "investigate": "Do not act on the results; fix the data problem first.",
        }[d.verdict]
        + " "
        + " ".join(r.text for r in d.reasons[:4])
    )
    caveats = []
    if report.method == "sequential":
        caveats.append(
            "Sequential intervals are wider than fixed-horizon ones; that is the price of daily looks."
        )
    if report.method == "frequentist":
        caveats.append(
            "Frequentist p-values are valid only at the planned sample size; do not stop early on them."
        )
    if report.dimensions:
        caveats.append("Dimension slices are exploratory: they are not corrected for the number of slices.")
    if any(m.capped for m in report.metrics):
        caveats.append("Capped metrics estimate the effect on capped values, not on raw totals.")
    next_steps = {
        "ship": [
            "Roll out gradually and keep the guardrails monitored.",
            "Archive this report with the decision.",
        ],
        "do not ship": ["Record the learning; revisit the hypothesis or the MDE before re-testing."],
        "keep running": ["Let the scheduled report run until the planned sample size is reached."],
        "investigate": [
            "Check assignment and exposure logging (bucketing, bots, redirects, caching) before re-running."
        ],
    }[d.verdict]
    return ExperimentNarrative(
        headline=headline,
        summary=summary,
        key_points=key_points,
        recommendation=recommendation.strip(),
        caveats=caveats,
        next_steps=next_steps,
    )


def experiment_facts(report: ExperimentReport) -> dict[str, Any]:
    return {
        "experiment": {
            "id": report.experiment_id,
            "name": report.name,
            "hypothesis": report.hypothesis,
            "method": report.method,
            "difference": report.difference,
            "alpha": report.alpha,
            "correction": report.correction,
            "total_units": report.total_units,
            "excluded_units": report.excluded_units,
            "planned_units_per_variant": report.planned_units_per_variant,
            "variants": [v.model_dump() for v in report.variants],
        },
        "decision": report.decision.model_dump(),
        "results": [r.model_dump() for r in report.results],
        "health": [{**h.model_dump(), "id": f"check:{h.id}"} for h in report.health],
    }


def experiment_narration_task(report: ExperimentReport) -> NarrationTask[ExperimentNarrative]:
    """The narration task of an analysis: facts with stable ids, the deterministic template."""
    return NarrationTask(
        kind="experiment",
        subject_id=report.experiment_id,
        facts=experiment_facts(report),
        output_model=ExperimentNarrative,
        template=lambda: experiment_template(report),
        persona="data-engineer",
    )


def design_template(report: ExperimentDesignReport) -> ExperimentNarrative:
    if report.per_variant is None:
        headline = "No metric could be sized: set an mde on the goal metrics"
    else:
        headline = (
            f"{report.per_variant:,} units per variant, about {math.ceil(report.duration_days or 0)} days "
            f"at {report.traffic_per_day:,.0f} units/day"
        )
    points = [
        NarrativePoint(
            text=(
                f"{p.name} ({p.role}): baseline {p.baseline_mean:.4g}"
                + (
                    f", needs {p.per_variant:,} per variant for a {p.mde:.1%} lift"
                    if p.per_variant and p.mde
                    else ""
                )
                + (f" — {p.note}" if p.note else "")
            )
            if p.baseline_mean is not None
            else f"{p.name} ({p.role}): {p.note}",
            refs=[f"metric:{p.name}"],
        )
        for p in report.metrics
    ]
    caveats = [
        "Sizes are for a fixed-horizon two-sided test (Bonferroni-split across arms); a sequential analysis "
        "reaches the same power somewhat later.",
        "The baseline period stands in for the experiment period: seasonality and novelty effects are not modelled.",
    ]
    return ExperimentNarrative(
        headline=headline,
        summary=report.hypothesis or "No hypothesis written yet.",
        key_points=points,
        recommendation="Run until every arm reaches the planned sample size; decide by the written rules.",
        caveats=caveats,
        next_steps=[
            "Review the metric plan with the team before launch.",
            "Schedule the daily analysis report.",
        ],
    )


def design_narration_task(report: ExperimentDesignReport) -> NarrationTask[ExperimentNarrative]:
    """The narration task of a design: the plan as facts (ids ``metric:<name>``), the deterministic template."""
    return NarrationTask(
        kind="plan",
        subject_id=report.experiment_id,
        facts={"design": report.model_dump(exclude={"sql", "narrative"})},
        output_model=ExperimentNarrative,
        template=lambda: design_template(report),
        persona="data-engineer",
    )
