"""Provider metadata Airflow reads through the ``apache_airflow_provider`` entry point.

Airflow's ``ProvidersManager`` calls :func:`get_provider_info` for every installed distribution that
declares the entry point, validates the dict against ``airflow/provider_info.schema.json`` and
checks that ``package-name`` matches the distribution name (``dataeng-agents``). The Anthropic
connection type is *not* declared here on purpose: credentials come from the official
``apache-airflow-providers-anthropic`` connection type ``anthropic``.
"""

from __future__ import annotations

from typing import Any

PACKAGE = "dataeng_agents.airflow_provider"
INTEGRATION = "Dataeng Agents"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("dataeng-agents")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0.0.0"


def get_provider_info() -> dict[str, Any]:
    """Return the provider description in the runtime ``provider_info.schema.json`` format."""
    return {
        "package-name": "dataeng-agents",
        "name": INTEGRATION,
        "description": (
            "Experiment analysis, experiment design, pipeline review and data-engineering agents "
            "(Claude personas) as Airflow operators, on a deterministic statistics and review core."
        ),
        "versions": [_version()],
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
    }
