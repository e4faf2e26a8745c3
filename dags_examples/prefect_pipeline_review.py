"""Weekly pipeline review on Prefect 3: review DAGs/flows/specs, publish findings, fail on errors.

Run ``python dags_examples/prefect_pipeline_review.py`` to serve the flow every Monday at 07:00,
or ``... --once`` for a single run now. ``REVIEW_PATHS`` defaults to this examples folder; point it
at your DAG and flow repositories.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from dataeng_agents.prefect_integration.flows import pipeline_review_flow

REVIEW_PATHS = os.environ.get("REVIEW_PATHS", str(Path(__file__).resolve().parent)).split(os.pathsep)
PARAMETERS = {
    "paths": REVIEW_PATHS,
    "pipeline_id": "dags-examples",
    "report_dir": str(Path.home() / ".dataeng" / "reports" / "pipeline-review"),
    "fail_on": "error",
}

if __name__ == "__main__":
    if "--once" in sys.argv:
        print(pipeline_review_flow(**PARAMETERS))
    else:
        pipeline_review_flow.serve(
            name="weekly-pipeline-review",
            cron="0 7 * * 1",
            parameters=PARAMETERS,
            tags=["dataeng", "review"],
            description="Weekly review of the DAGs and flows against the dataeng rules.",
        )
