"""The data-driven-feature lifecycle: exploration, hypothesis, tracking plan, guarded rollout.

The facades live in :mod:`dataeng_agents.core.commands.lifecycle`; this package holds the parts:

* :mod:`.config` — the ``exploration:``, ``hypothesis:``, ``tracking:``, ``rollout:`` sections;
* :mod:`.exploration` — pre-period statistics from the warehouse;
* :mod:`.hypothesis` — the hypothesis checked against the exploration, with narration;
* :mod:`.tracking` — the JSON Schema tracking plan and its warehouse check;
* :mod:`.rollout` / :mod:`.rollout_sql` / :mod:`.sequential` — the guarded-rollout decision engine;
* :mod:`.guarded` — one check against the warehouse with the rollout's history;
* :mod:`.state` — the decisions table: every decision recorded, the history read back;
* :mod:`.actions` — record, move the flag (flag hooks, an HTTP one), run the callbacks;
* :mod:`.demo_data` — a seeded product with known truth, for tests and demos, and
  :class:`~.demo_data.RolloutWorld`, a product whose flag the rollout moves (closed loop).
"""

from __future__ import annotations

from dataeng_agents.core.lifecycle.config import (
    EventSpec,
    ExplorationSpec,
    GuardrailSpec,
    HypothesisSpec,
    LifecycleConfig,
    PropertySpec,
    RolloutPlan,
    RolloutStage,
    TrackingSpec,
)
from dataeng_agents.core.lifecycle.rollout import GuardrailEvidence, RolloutDecision

__all__ = [
    "EventSpec",
    "ExplorationSpec",
    "GuardrailEvidence",
    "GuardrailSpec",
    "HypothesisSpec",
    "LifecycleConfig",
    "PropertySpec",
    "RolloutDecision",
    "RolloutPlan",
    "RolloutStage",
    "TrackingSpec",
]
