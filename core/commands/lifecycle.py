"""Facades of the data-driven-feature lifecycle: explore → hypothesis → tracking → guarded rollout.

Every facade takes the experiment YAML (path, YAML text or mapping; the lifecycle sections
``exploration:``, ``hypothesis:``, ``tracking:``, ``rollout:`` sit next to the experiment config's
keys), read by the one loader :func:`dataeng_agents.core.experiment.load_configs`, and an optional
warehouse resolved by :func:`dataeng_agents.core.experiment.resolve_warehouse` (a
:class:`~dataeng_agents.core.warehouse.Warehouse`; a URL, a relative DuckDB path being relative to
the working directory; or ``None`` for the config's ``warehouse:`` URL, relative to the config
file). The Airflow operators and Prefect tasks call exactly these:

>>> design = build_hypothesis("exp.yaml")                       # explores, then checks the plan
>>> schema = tracking_plan("exp.yaml")                          # JSON Schema document
>>> check = check_tracking("exp.yaml")                          # per-variant instrumentation check
>>> decision = rollout_check("exp.yaml", stage=2, callback=TableDecisionCallback(conn))
>>> decision.decision                                           # "advance" | "hold" | "roll back"

The decision is the output; flipping the flag stays with the user's flag system, reached through a
:class:`RolloutCallback` (:class:`TableDecisionCallback` writes each decision to a table).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from dataeng_agents.core.errors import InputError
from dataeng_agents.core.experiment.config import ConfigSource, load_configs, resolve_warehouse
from dataeng_agents.core.lifecycle.actions import (
    FlagHook,
    HttpFlagHook,
    RolloutActionError,
    RolloutCallback,
    apply_decision,
)
from dataeng_agents.core.lifecycle.exploration import ExplorationReport, explore
from dataeng_agents.core.lifecycle.guarded import check_rollout
from dataeng_agents.core.lifecycle.hypothesis import (
    HypothesisPlan,
    hypothesis_narration,
    plan_rollout,
    validate_hypothesis,
)
from dataeng_agents.core.lifecycle.rollout import RolloutDecision
from dataeng_agents.core.lifecycle.state import DecisionStore, RolloutFinishedError
from dataeng_agents.core.lifecycle.tracking import (
    TrackingCheckReport,
    build_tracking_plan,
    check_tracking_plan,
)
from dataeng_agents.core.narrative import (
    ExperimentNarrative,
    NarrationTask,
    NarrativePoint,
    Narrator,
    TemplateNarrator,
)
from pydantic import BaseModel

if TYPE_CHECKING:
    from dataeng_agents.core.warehouse import Warehouse

__all__ = [
    "DecisionStore",
    "FlagHook",
    "HttpFlagHook",
    "RolloutActionError",
    "RolloutCallback",
    "RolloutFinishedError",
    "TableDecisionCallback",
    "build_hypothesis",
    "check_tracking",
    "explore_experiment",
    "rollout_check",
    "rollout_markdown",
    "rollout_narration_task",
    "tracking_plan",
    "write_lifecycle_report",
]


# ------------------------------------------------------------------------------------------- explore
def explore_experiment(
    config: ConfigSource, warehouse: Warehouse | str | None = None, *, progress: bool = False
) -> ExplorationReport:
    """Pre-period exploration of the candidate metrics (``dataeng experiment explore``)."""
    cfg, life = load_configs(config)
    return explore(cfg, life, resolve_warehouse(cfg, warehouse), progress=progress)


# ---------------------------------------------------------------------------------------- hypothesis
def build_hypothesis(
    config: ConfigSource,
    warehouse: Warehouse | str | None = None,
    *,
    exploration: ExplorationReport | None = None,
    narrator: Narrator | None = None,
    progress: bool = False,
) -> HypothesisPlan:
    """The ``hypothesis:`` section checked against the exploration (run here unless given), with the
    power plan and the narrative (data-engineer persona; the template without an API key)."""
    cfg, life = load_configs(config)
    life.require_hypothesis()
    if exploration is None:
        exploration = explore(cfg, life, resolve_warehouse(cfg, warehouse), progress=progress)
    checks, power = validate_hypothesis(cfg, life, exploration)
    plan = HypothesisPlan(
        experiment_id=cfg.id,
        hypothesis=life.require_hypothesis(),
        checks=checks,
        power=power,
        exploration=exploration,
        rollout_plan=plan_rollout(cfg, life, exploration),
    )
    narrative = (narrator or TemplateNarrator()).narrate(hypothesis_narration(plan))
    return plan.model_copy(update={"narrative": narrative})


# ------------------------------------------------------------------------------------------ tracking
def tracking_plan(config: ConfigSource) -> dict[str, Any]:
    """The versioned JSON Schema (2020-12) document of the events the feature must emit."""
    cfg, life = load_configs(config)
    return build_tracking_plan(cfg, life).json_schema()


def check_tracking(
    config: ConfigSource,
    warehouse: Warehouse | str | None = None,
    *,
    now: datetime | None = None,
    progress: bool = False,
) -> TrackingCheckReport:
    """Missing events, missing/malformed properties and late arrivals, per variant."""
    cfg, life = load_configs(config)
    return check_tracking_plan(cfg, life, resolve_warehouse(cfg, warehouse), now=now, progress=progress)


# ------------------------------------------------------------------------------------------- rollout
class TableDecisionCallback(DecisionStore):
    """The decisions table as a callback: :class:`~dataeng_agents.core.lifecycle.state.DecisionStore`.

    Kept for callers of the first API; pass a store as ``rollout_check(..., store=...)`` instead, so
    the check also *reads* the rollout's history from it (stage starts, SRM since when).

    >>> import duckdb
    >>> cb = TableDecisionCallback(lambda: duckdb.connect("flags.duckdb"), table="rollout_decisions")
    >>> rollout_check("exp.yaml", stage=3, callback=cb)
    """


def rollout_check(
    config: ConfigSource,
    stage: int | None = None,
    warehouse: Warehouse | str | None = None,
    now: datetime | None = None,
    *,
    stage_started_at: datetime | None = None,
    store: DecisionStore | None = None,
    flag: FlagHook | None = None,
    callback: RolloutCallback | Iterable[RolloutCallback] | None = None,
    narrator: Narrator | None = None,
) -> RolloutDecision:
    """One scheduled check of a guarded rollout: ``advance``, ``hold`` or ``roll back``.

    With a ``store`` (the decisions table) the check reads the rollout's history — the live stage
    when ``stage`` is None, when each stage really started, since when the sample ratio is off — and
    the decision is recorded there *first*; then ``flag`` moves the feature flag (advance → next
    stage's percent, roll back → 0); then the callbacks run (see
    :func:`~dataeng_agents.core.lifecycle.actions.apply_decision`).

    :param stage: the stage to check (1-based); default the history's live stage (1 without a store).
    :param now: the check's time (default: the current UTC time); data after it is ignored, so a
        backfilled run reproduces the decision it would have made then.
    :param stage_started_at: overrides when the checked stage started.
    :param store: the decisions table (:class:`~dataeng_agents.core.lifecycle.state.DecisionStore`).
    :param flag: the flag hook (:class:`~dataeng_agents.core.lifecycle.actions.HttpFlagHook`, …).
    :param callback: called with the decision after it was recorded and the flag moved.
    :param narrator: writes the prose (default: the deterministic template).
    :raises RolloutFinishedError: no ``stage`` and the history says the rollout is over.
    :raises RolloutActionError: the flag hook or a callback failed (the decision is recorded).
    """
    cfg, life = load_configs(config)
    life.require_rollout()
    wh = resolve_warehouse(cfg, warehouse)
    history = store.history(cfg.id) if store is not None else None
    decision = check_rollout(
        cfg, life, wh, stage=stage, now=now, stage_started_at=stage_started_at, history=history
    )
    narrative = (narrator or TemplateNarrator()).narrate(rollout_narration_task(decision))
    decision = decision.model_copy(update={"narrative": narrative.model_dump(mode="json")})
    return apply_decision(decision, store=store, flag=flag, callbacks=callback)


def rollout_narration_task(decision: RolloutDecision) -> NarrationTask[ExperimentNarrative]:
    """Narration of a decision: the facts are the decision and its evidence (ids ``guardrail:<metric>``)."""

    def template() -> ExperimentNarrative:
        verb = {"advance": "Advance", "hold": "Hold", "roll back": "Roll back"}[decision.decision]
        target = (
            f" to {decision.next_stage_percent:g}%"
            if decision.decision == "advance" and decision.next_stage_percent is not None
            else (" — the rollout is complete" if decision.complete else "")
        )
        points = []
        for g in decision.guardrails:
            if g.lift is None:
                text = f"{g.metric}: not enough data yet ({g.units['treatment']} treatment units)."
            else:
                lo, hi = g.ci
                text = (
                    f"{g.metric}: {g.lift:+.2%} (always-valid CI {lo:+.2%} … {hi:+.2%}; tolerance "
                    f"-{g.tolerance:.1%}) — {g.status}."
                )
            points.append(NarrativePoint(text=text, refs=[g.id]))
        return ExperimentNarrative(
            headline=f"{verb} stage {decision.stage} ({decision.stage_percent:g}%){target}",
            summary="; ".join(decision.reasons) or "No guardrail shows harm yet; the stage is still running.",
            key_points=points,
            recommendation={
                "advance": "Move the flag to the next stage."
                if not decision.complete
                else "Keep the feature on for everyone.",
                "hold": "Keep the flag where it is and check again at the next scheduled run.",
                "roll back": "Turn the flag off now and investigate the regressed guardrail.",
            }[decision.decision],
            caveats=[
                "Confidence sequences stay valid under hourly checks; a guardrail that is not harmed yet "
                "may still be, at a size below what this stage can detect."
            ],
        )

    return NarrationTask(
        kind="rollout",
        subject_id=decision.experiment_id,
        facts=decision.model_dump(mode="json", exclude={"narrative"}),
        output_model=ExperimentNarrative,
        template=template,
        persona="data-engineer",
    )


# ------------------------------------------------------------------------------------------- reports
def _markdown(report: BaseModel) -> str:
    if isinstance(report, RolloutDecision):
        return rollout_markdown(report)
    to_md: Callable[[], str] | None = getattr(report, "to_markdown", None)
    if to_md is None:
        raise InputError("report", f"{type(report).__name__} has no Markdown rendering")
    return to_md()


def rollout_markdown(d: RolloutDecision) -> str:
    lines = [
        f"# Rollout check — {d.experiment_id}, stage {d.stage} ({d.stage_percent:g}%)",
        "",
        f"**Decision: {d.decision}**"
        + (f" → {d.next_stage_percent:g}%" if d.decision == "advance" and d.next_stage_percent else "")
        + f" (checked {d.checked_at.isoformat()}; stage running {d.stage_hours:.1f} h of at least "
        f"{d.stage_min_duration:g} h; {d.stage_units['treatment']:,} treatment / {d.stage_units['control']:,} control "
        "units in this stage).",
        "",
    ]
    if d.page:
        lines += ["**A human must look at this rollout (page).**", ""]
    lines += [f"- {r}" for r in d.reasons]
    lines += [f"- warning: {w}" for w in d.warnings]
    lines += [
        "",
        f"Flag after this decision: {d.flag_percent:g}%. Units exposed to both arms (left out): "
        f"{d.units_in_both_arms:,}.",
        "",
        "| guardrail | status | control | treatment | lift | always-valid CI | tolerance | p (vs tolerance) | units t/c |",
        "|---|---|---:|---:|---:|---|---:|---:|---:|",
    ]
    for g in d.guardrails:
        ci = "—" if g.ci[0] is None or g.ci[1] is None else f"[{g.ci[0]:+.2%}, {g.ci[1]:+.2%}]"
        lift = "—" if g.lift is None else f"{g.lift:+.2%}"
        p = "—" if g.p_value is None else f"{g.p_value:.3g}"
        cm = "—" if g.control_mean is None else f"{g.control_mean:.4g}"
        tm = "—" if g.treatment_mean is None else f"{g.treatment_mean:.4g}"
        lines.append(
            f"| {g.metric}{'' if g.higher_is_better else ' (lower is better)'} | {g.status} | {cm} | {tm} | {lift} | {ci} | "
            f"-{g.tolerance:.1%} | {p} | {g.units['treatment']:,}/{g.units['control']:,} |"
        )
    lines += ["", f"Method: {d.method}; " + ", ".join(f"{k} = {v}" for k, v in d.settings.items()) + "."]
    if d.srm_p_value is not None:
        lines.append(f"Sample ratio against the planned stage shares: p = {d.srm_p_value:.3g}.")
    if d.narrative:
        lines += ["", f"## {d.narrative.get('headline', '')}", "", str(d.narrative.get("summary", ""))]
        if d.narrative.get("recommendation"):
            lines += ["", f"**Recommendation:** {d.narrative['recommendation']}"]
    return "\n".join(lines) + "\n"


_STEMS: dict[str, str] = {
    "RolloutDecision": "rollout",
    "TrackingCheckReport": "tracking",
    "ExplorationReport": "exploration",
    "HypothesisPlan": "hypothesis",
}


def write_lifecycle_report(
    report: BaseModel,
    out_dir: str | os.PathLike[str],
    formats: Iterable[str] = ("json", "md"),
    *,
    writer: Callable[[str, bytes], None] | None = None,
) -> dict[str, str]:
    """Writes a lifecycle result as JSON and Markdown; returns ``{format: path}``.

    Everything is rendered before anything is written; local files go through a temporary sibling
    directory and ``os.replace`` so ``out_dir`` is never half-written. ``writer(path, bytes)``
    targets other storage (an Airflow ``ObjectStoragePath``, fsspec).
    """
    stem = _STEMS.get(type(report).__name__, "lifecycle")
    files: dict[str, tuple[str, bytes]] = {}
    for fmt in formats:
        if fmt == "json":
            files[fmt] = (f"{stem}.json", (report.model_dump_json(indent=2) + "\n").encode())
        elif fmt in ("md", "markdown"):
            files["md"] = (f"{stem}.md", _markdown(report).encode())
        else:
            raise InputError("formats", f"unknown format {fmt!r}: lifecycle reports are json or md")
    if not files:
        raise InputError("formats", "no format given")
    from dataeng_agents.core.report.writer import write_files

    return write_files(files, out_dir, writer=writer)
