"""Provider metadata Airflow reads through the ``apache_airflow_provider`` entry point.

Airflow's ``ProvidersManager`` calls :func:`get_provider_info` for every installed distribution that
declares the entry point, validates the dict against ``airflow/provider_info.schema.json`` and
checks that ``package-name`` matches the distribution name (``dataeng-agents``). The Anthropic
connection type is *not* declared here on purpose: credentials come from the official
``apache-airflow-providers-anthropic`` connection type ``anthropic``.
"""

from __future__ import annotations

from typing import Any

from dataeng_agents.core import __version__

PACKAGE = "dataeng_agents.airflow_provider"
INTEGRATION = "Dataeng Agents"

#: The ``[dataeng]`` section of airflow.cfg (``AIRFLOW__DATAENG__REPORTS_ROOT``), read by
#: ``operators._narrated.default_reports_root``; ``airflow config list`` shows it with its default.
CONFIG: dict[str, Any] = {
    "dataeng": {
        "description": "Reports written by the dataeng-agents operators.",
        "options": {
            "reports_root": {
                "description": (
                    "Root of the reports the operators write when a task gives no ``output_path``: an "
                    "ObjectStoragePath URL, one folder per ``<dag_id>/<task_id>/<run_id>`` below it. "
                    "Empty: ``file://$AIRFLOW_HOME/dataeng_reports``.\n"
                ),
                "version_added": "0.1.0",
                "type": "string",
                "example": "s3://aws_default@analytics-reports/experiments",
                "default": "",
            },
        },
    },
}


def get_provider_info() -> dict[str, Any]:
    """Return the provider description in the runtime ``provider_info.schema.json`` format.

    :return: the provider's metadata: package name, version, integrations, modules and config.
    """
    return {
        "package-name": "dataeng-agents",
        "name": INTEGRATION,
        "description": (
            "Experiment analysis, experiment design, pipeline review and design, and data-engineering agents "
            "(Claude personas) as Airflow operators, on a deterministic statistics and review core."
        ),
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": INTEGRATION,
                "external-doc-url": "https://github.com/dataeng-agents/dataeng-agents/blob/main/docs/airflow.md",
                "tags": ["ai", "software"],
            }
        ],
        "hooks": [
            {
                "integration-name": INTEGRATION,
                "python-modules": [f"{PACKAGE}.hooks.warehouse", f"{PACKAGE}.hooks.narrator"],
            }
        ],
        "operators": [
            {
                "integration-name": INTEGRATION,
                "python-modules": [
                    f"{PACKAGE}.operators.experiment",
                    f"{PACKAGE}.operators.review",
                    f"{PACKAGE}.operators.agent",
                    f"{PACKAGE}.operators.api_contract",
                    f"{PACKAGE}.operators.rollout",
                    f"{PACKAGE}.operators.design",
                ],
            }
        ],
        "triggers": [
            {
                "integration-name": INTEGRATION,
                "python-modules": [f"{PACKAGE}.triggers.narration"],
            }
        ],
        "extra-links": [f"{PACKAGE}.links.report.ReportLink"],
        "config": CONFIG,
    }
