"""Warehouse access: runners (DuckDB, DB-API, SQLAlchemy), safe SQL building blocks, sample data.

Row data never leaves the database: every query returns aggregates. The experiment config and the
experiment query live in :mod:`dataeng_agents.core.experiment`.
"""

from __future__ import annotations

from dataeng_agents.core.warehouse.identifiers import check_identifier
from dataeng_agents.core.warehouse.runners import (
    DbApiWarehouse,
    DuckDBWarehouse,
    SqlAlchemyWarehouse,
    Warehouse,
    redact_url,
    warehouse_from_url,
)
from dataeng_agents.core.warehouse.sql import (
    DIALECTS,
    Dialect,
    parse_scalar,
    parse_select,
    source_from,
    ts_literal,
)

__all__ = [
    "DIALECTS",
    "DbApiWarehouse",
    "Dialect",
    "DuckDBWarehouse",
    "SqlAlchemyWarehouse",
    "Warehouse",
    "check_identifier",
    "parse_scalar",
    "parse_select",
    "redact_url",
    "source_from",
    "ts_literal",
    "warehouse_from_url",
]
