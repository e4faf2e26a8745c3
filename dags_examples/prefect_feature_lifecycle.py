"""The data-driven-feature lifecycle on Prefect 3: design → tracking check → staged rollout checks →
final analysis, served hourly.

Every hour the flow reads the live rollout stage from the Prefect Variable ``<id>-rollout-stage``,
runs ``feature_lifecycle_flow`` (hypothesis + power plan, tracking check, rollout check of that
stage, and the final analysis once the last stage may advance) and, on ``advance``, moves the
Variable to the next stage — standing in for your flag system. A ``roll back`` decision or a broken
tracking plan fails the run (after publishing the artifacts), which is what alerting hooks onto.

Run ``python dags_examples/prefect_feature_lifecycle.py`` to serve it, or ``... --once`` for one
check now. The first start writes the core's seeded lifecycle demo (a checkout redesign with a
planted tracking bug) into ``~/.dataeng/lifecycle.duckdb`` and its YAML next to it — so the demo
run fails on purpose, with the ``checkout-redesign-tracking`` artifact naming the dropped ``price``
property of the treatment's ``checkout_started`` events.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from dataeng_agents.prefect_integration.artifacts import artifact_key
from dataeng_agents.prefect_integration.flows import feature_lifecycle_flow
from prefect import flow, get_run_logger
from prefect.variables import Variable

HOME = Path.home() / ".dataeng"
CONFIG = HOME / "lifecycle.yaml"


def ensure_demo() -> str:
    """Writes the seeded lifecycle demo data and its experiment YAML, once."""
    if not CONFIG.exists():
        import yaml
        from dataeng_agents.core.lifecycle.demo_data import generate_lifecycle_data, lifecycle_demo_config

        HOME.mkdir(parents=True, exist_ok=True)
        db = HOME / "lifecycle.duckdb"
        truth = generate_lifecycle_data(db)
        CONFIG.write_text(yaml.safe_dump(lifecycle_demo_config(truth, str(db)), sort_keys=False))
    return str(CONFIG)


@flow(name="feature-rollout", retries=0, timeout_seconds=3 * 3600)
def feature_rollout(config: str, experiment_id: str, report_dir: str | None = None) -> dict[str, Any]:
    """One scheduled lifecycle check at the stage stored in the Prefect Variable."""
    logger = get_run_logger()
    variable = artifact_key(experiment_id, "rollout-stage")
    stage = int(Variable.get(variable, default=1))
    result = feature_lifecycle_flow(config=config, stage=stage, report_dir=report_dir)
    rollout = result["rollout"]
    if rollout["decision"] == "advance" and not rollout["complete"]:
        Variable.set(variable, stage + 1, overwrite=True)
        logger.info("%s: stage %d done, now at %s%%", experiment_id, stage, rollout["next_stage_percent"])
    return result


if __name__ == "__main__":
    parameters = {
        "config": ensure_demo(),
        "experiment_id": "checkout-redesign",
        "report_dir": str(HOME / "reports" / "checkout-redesign"),
    }
    if "--once" in sys.argv:
        print(feature_rollout(**parameters))
    else:
        feature_rollout.serve(
            name="checkout-redesign-rollout",
            cron="0 * * * *",
            parameters=parameters,
            tags=["dataeng", "rollout"],
            description="Hourly guarded-rollout check of the checkout redesign.",
        )
