"""Pipeline review: a static rule engine over Airflow DAG files, Prefect flows and pipeline specs.

Public API: :func:`review_paths`, :class:`ReviewResult`, :class:`Finding`, :data:`RULES`,
:func:`load_config`. Nothing here imports Airflow or Prefect; ``runtime=True`` loads DAGs with
Airflow's DagBag in a separate interpreter.
"""

from __future__ import annotations

from dataeng_agents.core.review.config import PROFILES, ReviewConfig, load_config, resolve_config
from dataeng_agents.core.review.engine import review_paths
from dataeng_agents.core.review.models import FileReport, Finding, ReviewResult, Severity, Unresolved
from dataeng_agents.core.review.rules import RULES, Rule, write_rule_docs

__all__ = [
    "PROFILES",
    "RULES",
    "FileReport",
    "Finding",
    "ReviewConfig",
    "ReviewResult",
    "Rule",
    "Severity",
    "Unresolved",
    "load_config",
    "resolve_config",
    "review_paths",
    "write_rule_docs",
]
