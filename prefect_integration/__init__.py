"""Prefect 3 integration of dataeng-agents: blocks, tasks, flows and artifacts.

Loaded by Prefect through the ``prefect.collections`` entry point, so this module only imports the
blocks (``prefect block register -m dataeng_agents.prefect_integration`` registers them). Tasks and
flows live in :mod:`.tasks` and :mod:`.flows` and are also reachable from here lazily.
"""

from __future__ import annotations

from typing import Any

from dataeng_agents.prefect_integration.blocks import AgentSettings, AnthropicCredentials, ExperimentWarehouse

__all__ = [
    "AgentSettings",
    "AnthropicCredentials",
    "ExperimentWarehouse",
    "analyze_experiment",
    "api_contract_drift_flow",
    "ask_agent",
    "design_experiment",
    "diff_api_contracts",
    "experiment_report_flow",
    "pipeline_review_flow",
    "review_api_contracts",
    "review_pipeline",
]

_LAZY = {
    "analyze_experiment": "tasks",
    "design_experiment": "tasks",
    "review_pipeline": "tasks",
    "ask_agent": "tasks",
    "experiment_report_flow": "flows",
    "pipeline_review_flow": "flows",
    "review_api_contracts": "api_tasks",
    "diff_api_contracts": "api_tasks",
    "api_contract_drift_flow": "api_tasks",
}


def __getattr__(name: str) -> Any:
    # Tasks and flows pull in the core; the entry point only needs the blocks.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"{__name__}.{module}"), name)
