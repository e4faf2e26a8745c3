"""Warehouse-native experiment analysis: config, SQL builder, runners, sample data.

Row data never leaves the database: one query per analysis returns per-variant sufficient
statistics (see :mod:`dataeng_agents.core.warehouse.sql`).
"""

from __future__ import annotations

from dataeng_agents.core.warehouse.aggregates import ExperimentAggregates, GroupStats, parse_rows
from dataeng_agents.core.warehouse.config import (
    DIALECTS,
    AnalysisConfig,
    Assignment,
    Capping,
    Cuped,
    DecisionConfig,
    DesignConfig,
    Dimension,
    ExperimentConfig,
    Metric,
    Source,
    Variant,
)
from dataeng_agents.core.warehouse.runners import (
    DbApiWarehouse,
    DuckDBWarehouse,
    SqlAlchemyWarehouse,
    Warehouse,
    redact_url,
    warehouse_from_url,
)
from dataeng_agents.core.warehouse.sql import (
    ExperimentQuery,
    build_experiment_query,
    parse_scalar,
    parse_select,
)

__all__ = [
    "DIALECTS",
    "AnalysisConfig",
    "Assignment",
    "Capping",
    "Cuped",
    "DbApiWarehouse",
    "DecisionConfig",
    "DesignConfig",
    "Dimension",
    "DuckDBWarehouse",
    "ExperimentAggregates",
    "ExperimentConfig",
    "ExperimentQuery",
    "GroupStats",
    "Metric",
    "Source",
    "SqlAlchemyWarehouse",
    "Variant",
    "Warehouse",
    "build_experiment_query",
    "parse_rows",
    "parse_scalar",
    "parse_select",
    "redact_url",
    "warehouse_from_url",
]
