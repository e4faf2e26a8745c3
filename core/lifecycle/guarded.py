"""One check of a guarded rollout against the warehouse, with the rollout's history.

:func:`check_rollout` is the engine behind ``rollout_check`` (CLI, Airflow, Prefect): it takes the
stage and the stage start times from the decisions table (:class:`~.state.RolloutHistory`) unless
told otherwise, runs the per-stage query and the crossover count, and builds the decision with the
plan's SRM policy. Acting on the decision is :func:`~.actions.apply_decision`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from dataeng_agents.core.errors import InputError
from dataeng_agents.core.lifecycle.config import LifecycleConfig, as_utc
from dataeng_agents.core.lifecycle.rollout import RolloutDecision, build_decision
from dataeng_agents.core.lifecycle.rollout_sql import (
    crossover_query,
    first_treatment_exposure,
    resolve_rollout,
    rollout_query,
    stage_starts,
    stage_stats_from_rows,
)
from dataeng_agents.core.lifecycle.state import RolloutHistory

if TYPE_CHECKING:
    from dataeng_agents.core.experiment.config import ExperimentConfig
    from dataeng_agents.core.warehouse import Warehouse


def check_rollout(
    cfg: ExperimentConfig,
    life: LifecycleConfig,
    warehouse: Warehouse,
    *,
    stage: int | None = None,
    now: datetime | None = None,
    stage_started_at: datetime | None = None,
    history: RolloutHistory | None = None,
) -> RolloutDecision:
    """Decides ``advance`` / ``hold`` / ``roll back`` for the live stage.

    :param stage: the stage to check (1-based); default the history's current stage (1 without one).
    :param now: the check's time (default the current UTC time); later data is ignored.
    :param stage_started_at: overrides the start of the checked stage.
    :param history: the recorded decisions of this rollout (stage starts, SRM since when).
    :raises RolloutFinishedError: no stage given and the history says the rollout is over.
    """
    plan = life.require_rollout()
    resolved = resolve_rollout(cfg, plan)
    checked_at = as_utc(now) if now is not None else datetime.now(UTC)
    history = history or RolloutHistory(cfg.id)
    if stage is None:
        stage = history.current_stage(len(plan.stages))
    if not 1 <= stage <= len(plan.stages):
        raise InputError("stage", f"stage must be between 1 and {len(plan.stages)}, got {stage}")
    first = None
    if not plan.stage_started_at and plan.started_at is None:
        first = next(
            (r.stage_started_at for r in history.records if r.stage == 1 and r.stage_started_at), None
        )
        first = first or first_treatment_exposure(cfg, resolved.treatment, warehouse)
    if history.records:
        base = stage_starts(plan, 1, first_exposure=first)[0]
        starts = history.stage_starts(plan, stage, base)
        if stage_started_at is not None:
            starts[-1] = as_utc(stage_started_at)
        for k in range(1, len(starts)):
            if starts[k] <= starts[k - 1]:
                raise InputError("stage_started_at", f"stage {k + 1} starts before stage {k}")
    else:
        starts = stage_starts(plan, stage, first_exposure=first, current_stage_started_at=stage_started_at)
    if checked_at <= starts[-1]:
        raise InputError(
            "now",
            f"the check at {checked_at.isoformat()} is before stage {stage} started ({starts[-1].isoformat()})",
        )
    dialect = warehouse.dialect
    rows = warehouse.query(rollout_query(cfg, resolved, starts, checked_at, dialect).sql(dialect=dialect))
    stats = stage_stats_from_rows(rows, resolved, len(plan.stages))
    crossed = warehouse.query(
        crossover_query(cfg, resolved, starts[0], checked_at, dialect).sql(dialect=dialect)
    )
    return build_decision(
        experiment_id=cfg.id,
        plan=plan,
        rules=resolved.rules,
        stage=stage,
        stats=stats,
        checked_at=checked_at,
        stage_started_at=starts[-1],
        stage_hours=(checked_at - starts[-1]).total_seconds() / 3600.0,
        stage_starts=starts,
        units_in_both_arms=int(crossed[0]["units"] or 0) if crossed else 0,
        srm_since=history.srm_since(),
        actions=[g.action for g in plan.guardrails],
        detectable_harm=[g.detectable_harm or plan.detectable_harm for g in plan.guardrails],
    )
