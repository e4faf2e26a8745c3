"""Prefect 3 integration of dataeng-agents: blocks, tasks, flows and artifacts.

Loaded by Prefect through the ``prefect.collections`` entry point, so this module only imports the
blocks (``prefect block register -m dataeng_agents.prefect_integration`` registers them). Every flow
and public task of :mod:`.tasks`, :mod:`.flows`, :mod:`.api_tasks` and :mod:`.pipeline_tasks` is also
importable from here; they are loaded on first access, since they pull in the core (numpy, scipy,
duckdb) and Prefect loads this package for every block lookup.
"""

from __future__ import annotations

from typing import Any

from dataeng_agents.prefect_integration.blocks import AgentSettings, AnthropicCredentials, ExperimentWarehouse

_LAZY = {
    # tasks
    "analyze_experiment": "tasks",
    "design_experiment": "tasks",
    "review_pipeline": "tasks",
    "ask_agent": "tasks",
    "design_hypothesis": "tasks",
    "check_tracking": "tasks",
    "rollout_check": "tasks",
    # flows
    "experiment_report_flow": "flows",
    "pipeline_review_flow": "flows",
    "feature_lifecycle_flow": "flows",
    # pipeline design from a request in a sentence: task and flow
    "design_pipeline_from_request": "pipeline_tasks",
    "pipeline_design_flow": "pipeline_tasks",
    # API contract review: tasks and flow
    "review_api_contracts": "api_tasks",
    "diff_api_contracts": "api_tasks",
    "api_contract_drift_flow": "api_tasks",
}

__all__ = ["AgentSettings", "AnthropicCredentials", "ExperimentWarehouse", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    # Tasks and flows pull in the core; the entry point only needs the blocks.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"{__name__}.{module}"), name)
