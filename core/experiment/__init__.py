"""Experiments, findable in one hop: the facade the CLI, the Airflow operators and the Prefect tasks call.

* :func:`analyze_experiment` — one warehouse query -> sufficient statistics -> the statistics engine
  -> health checks -> a decision by written rules -> :class:`~dataeng_agents.core.report.ExperimentReport`
  (+ narrative). :func:`analysis_interval` turns a scheduled run's window into its data interval.
* :func:`design_experiment` — baseline query -> power -> :class:`~dataeng_agents.core.report.ExperimentDesignReport`.
* :func:`load_configs` / :func:`load_experiment_config` — THE config loader (an experiment YAML,
  with or without the lifecycle sections); :func:`resolve_warehouse` — THE warehouse resolver.
* :func:`experiment_narration_task` / :func:`design_narration_task` — the narration tasks whose
  templates are the offline prose.

The parts: :mod:`.config` (the YAML model and its loader), :mod:`.query` (the one SQL query, built
step by step), :mod:`.aggregates` (its rows as sufficient statistics), :mod:`.contract` (the
statistics engine's input), :mod:`.health` (health checks), :mod:`.decision` (the written decision
rules), :mod:`.narrative` (facts and templates), :mod:`.window` (a scheduled run's data interval),
:mod:`.analysis` and :mod:`.design` (the facades).

Names are imported on first use, so ``import dataeng_agents.core.experiment`` stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dataeng_agents.core.experiment.analysis import analyze_experiment
    from dataeng_agents.core.experiment.config import (
        LIFECYCLE_KEYS,
        AnalysisConfig,
        Assignment,
        Capping,
        ConfigSource,
        Cuped,
        DecisionConfig,
        DesignConfig,
        Dimension,
        ExperimentConfig,
        Metric,
        Source,
        Variant,
        load_configs,
        load_experiment_config,
        resolve_warehouse,
    )
    from dataeng_agents.core.experiment.design import design_experiment
    from dataeng_agents.core.experiment.narrative import design_narration_task, experiment_narration_task
    from dataeng_agents.core.experiment.query import ExperimentQuery, build_experiment_query
    from dataeng_agents.core.experiment.window import (
        ANALYSIS_WINDOWS,
        AnalysisWindow,
        DataInterval,
        analysis_interval,
    )

_HOMES: dict[str, str] = {
    "analyze_experiment": "analysis",
    **dict.fromkeys(("ANALYSIS_WINDOWS", "AnalysisWindow", "DataInterval", "analysis_interval"), "window"),
    **dict.fromkeys(
        (
            "LIFECYCLE_KEYS",
            "AnalysisConfig",
            "Assignment",
            "Capping",
            "ConfigSource",
            "Cuped",
            "DecisionConfig",
            "DesignConfig",
            "Dimension",
            "ExperimentConfig",
            "Metric",
            "Source",
            "Variant",
            "load_configs",
            "load_experiment_config",
            "resolve_warehouse",
        ),
        "config",
    ),
    "design_experiment": "design",
    "design_narration_task": "narrative",
    "experiment_narration_task": "narrative",
    "ExperimentQuery": "query",
    "build_experiment_query": "query",
}

__all__ = [
    "ANALYSIS_WINDOWS",
    "LIFECYCLE_KEYS",
    "AnalysisConfig",
    "AnalysisWindow",
    "Assignment",
    "Capping",
    "ConfigSource",
    "Cuped",
    "DataInterval",
    "DecisionConfig",
    "DesignConfig",
    "Dimension",
    "ExperimentConfig",
    "ExperimentQuery",
    "Metric",
    "Source",
    "Variant",
    "analysis_interval",
    "analyze_experiment",
    "build_experiment_query",
    "design_experiment",
    "design_narration_task",
    "experiment_narration_task",
    "load_configs",
    "load_experiment_config",
    "resolve_warehouse",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
