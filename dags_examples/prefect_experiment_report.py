"""Daily experiment report on Prefect 3: analyse, publish artifacts, emit the decision event.

Run ``python dags_examples/prefect_experiment_report.py`` to serve the flow on a daily cron schedule
(06:00), or ``... --once`` for a single run now. The first start writes the bundled sample
experiment (a seeded e-commerce test with planted effects) into ``~/.dataeng/demo.duckdb`` and saves
an ``ExperimentWarehouse`` block named ``dataeng-demo`` pointing at it; point the block at your own
warehouse (or a prefect-sqlalchemy ``SqlAlchemyConnector``) for real experiments.

Save an ``AgentSettings`` block named ``data-engineer`` with ``AnthropicCredentials`` to have Claude
write the prose; without it the deterministic template does, offline.
"""

from __future__ import annotations

import sys
from importlib.resources import files
from pathlib import Path

from dataeng_agents.prefect_integration import ExperimentWarehouse
from dataeng_agents.prefect_integration.flows import experiment_report_flow

CONFIG = str(files("dataeng_agents.core.examples.experiments").joinpath("checkout_demo.yaml"))
WAREHOUSE_BLOCK = "dataeng-demo"
REPORT_DIR = str(Path.home() / ".dataeng" / "reports" / "checkout")
PARAMETERS = {
    "config": CONFIG,
    "warehouse": WAREHOUSE_BLOCK,
    "report_dir": REPORT_DIR,
    # The sample plants a latency regression in `recommendations`: fail only on a broken split.
    "fail_on": ["srm"],
}


def ensure_demo_warehouse() -> None:
    """Writes the sample experiment and saves the warehouse block, once."""
    from prefect.exceptions import ObjectNotFound

    try:
        ExperimentWarehouse.load(WAREHOUSE_BLOCK)
        return
    except (ValueError, ObjectNotFound):
        pass
    from dataeng_agents.core.warehouse.sample_data import generate

    path = Path.home() / ".dataeng" / "demo.duckdb"
    path.parent.mkdir(parents=True, exist_ok=True)
    generate(path)
    ExperimentWarehouse(duckdb_path=str(path)).save(WAREHOUSE_BLOCK, overwrite=True)


if __name__ == "__main__":
    ensure_demo_warehouse()
    if "--once" in sys.argv:
        print(experiment_report_flow(**PARAMETERS))
    else:
        experiment_report_flow.serve(
            name="checkout-daily-report",
            cron="0 6 * * *",
            parameters=PARAMETERS,
            tags=["dataeng", "experiment"],
            description="Daily sequential analysis of the checkout experiment.",
        )
