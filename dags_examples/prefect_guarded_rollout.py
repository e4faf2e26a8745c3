"""A guarded rollout on Prefect 3 that runs unattended: an hourly flow advances the feature flag.

Each run of ``guarded_rollout`` calls :func:`advance_rollout`: the rollout's history comes from the
decisions table (the live stage, when each stage really started, since when the sample ratio is
off), the guardrails are checked with always-valid confidence sequences, the decision is recorded,
then the flag service is told the new percentage (advance → next stage, roll back → 0). A roll back
fails the run after the flag moved, which is what alerting hooks onto; a finished rollout returns
``None``.

Blocks (create them once, in the UI or in code):

* ``RolloutDecisionsTable`` ``rollout-decisions`` — a DuckDB file or a PostgreSQL DSN;
* ``FeatureFlagService`` ``checkout-flag`` — the flag service's endpoint, method, token and body.

Run ``python dags_examples/prefect_guarded_rollout.py`` to serve it hourly, or ``... --once``.
"""

from __future__ import annotations

import sys
from typing import Any

from dataeng_agents.prefect_integration.rollout_tasks import (
    FeatureFlagService,
    RolloutDecisionsTable,
    advance_rollout,
)
from prefect import flow

CONFIG = "experiments/checkout.yaml"


@flow(name="guarded-rollout", log_prints=True, timeout_seconds=3600)
def guarded_rollout(
    config: str = CONFIG,
    decisions_block: str = "rollout-decisions",
    flag_block: str = "checkout-flag",
) -> dict[str, Any] | None:
    """One scheduled check of the live stage: record the decision, move the flag."""
    return advance_rollout(
        config,
        decisions=RolloutDecisionsTable.load(decisions_block),
        flag_service=FeatureFlagService.load(flag_block),
    )


if __name__ == "__main__":
    if "--once" in sys.argv:
        print(guarded_rollout())
    else:
        guarded_rollout.serve(name="guarded-rollout-hourly", cron="5 * * * *")
