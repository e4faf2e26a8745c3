"""Nightly API contract-drift check on Prefect 3: the deployed contract against the repository's.

Run ``python dags_examples/prefect_api_contract_drift.py`` to serve the flow every night at 02:30,
or ``... --once`` for a single run now. ``DEPLOYED_SPEC_URL`` is where the running service serves its
contract (e.g. ``https://api.example.com/openapi.yaml``); ``REPO_SPEC_PATH`` is the repository's copy.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from dataeng_agents.prefect_integration.api_tasks import api_contract_drift_flow

PARAMETERS = {
    "repo_spec_path": os.environ.get("REPO_SPEC_PATH", "api/openapi.yaml"),
    "deployed_spec_url": os.environ.get("DEPLOYED_SPEC_URL", "https://api.example.com/openapi.yaml"),
    "contract_id": "public-api",
    "review_profile": "strict",
    "report_dir": str(Path.home() / ".dataeng" / "reports" / "api-contract-drift"),
    "fail_on": "breaking",
}

if __name__ == "__main__":
    if "--once" in sys.argv:
        print(api_contract_drift_flow(**PARAMETERS))
    else:
        api_contract_drift_flow.serve(
            name="nightly-api-contract-drift",
            cron="30 2 * * *",
            parameters=PARAMETERS,
            tags=["dataeng", "api"],
            description="Nightly breaking-change check between the deployed and the repository's API contract.",
        )
