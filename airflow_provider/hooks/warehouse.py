"""The warehouse an experiment is analysed on: any common-sql ``DbApiHook`` connection, or DuckDB.

This hook defines no connection type of its own. ``conn_id`` names any Airflow connection whose
hook is a :class:`~airflow.providers.common.sql.hooks.sql.DbApiHook` (``postgres``, ``snowflake``,
``mysql``, ``trino``, ...); the core runs its SQL through that hook's DB-API connection, so the
deployment's credentials, SSL settings and secrets backend apply unchanged. Without a ``conn_id``
the hook opens a DuckDB file (the bundled sample by default).
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

if TYPE_CHECKING:
    from airflow.providers.common.sql.hooks.sql import DbApiHook
    from dataeng_agents.core.warehouse import Warehouse

#: Airflow connection types / SQLAlchemy dialect names -> the sqlglot dialect the core writes SQL in.
SQLGLOT_DIALECTS: dict[str, str] = {
    "postgres": "postgres",
    "postgresql": "postgres",
    "redshift": "redshift",
    "mysql": "mysql",
    "mariadb": "mysql",
    "snowflake": "snowflake",
    "bigquery": "bigquery",
    "gcpbigquery": "bigquery",
    "google_cloud_platform": "bigquery",
    "trino": "trino",
    "presto": "presto",
    "databricks": "databricks",
    "mssql": "tsql",
    "oracle": "oracle",
    "sqlite": "sqlite",
    "duckdb": "duckdb",
    "clickhouse": "clickhouse",
    "vertica": "postgres",
    "exasol": "exasol",
}


def sqlglot_dialect(conn_type: str | None, dialect_name: str | None = None) -> str:
    """Map an Airflow ``conn_type`` (or a SQLAlchemy dialect name) to a sqlglot dialect name.

    :param conn_type: The Airflow connection type, e.g. ``postgres``.
    :param dialect_name: The hook's SQLAlchemy dialect name, used when the connection type is unknown.
    :raises ValueError: when neither is a dialect the core can write SQL for.
    """
    for name in (conn_type, dialect_name):
        if name and name.lower() in SQLGLOT_DIALECTS:
            return SQLGLOT_DIALECTS[name.lower()]
    raise ValueError(
        f"Cannot tell the SQL dialect of connection type {conn_type!r} (dialect {dialect_name!r}); "
        f"pass dialect= explicitly (one of {sorted(set(SQLGLOT_DIALECTS.values()))})."
    )


class ExperimentWarehouseHook(BaseHook):
    """
    Give the core a :class:`~dataeng_agents.core.warehouse.Warehouse` for an Airflow connection.

    :param conn_id: Any Airflow connection whose hook is a common-sql ``DbApiHook``
        (for example a ``postgres`` connection). ``None`` means DuckDB at ``duckdb_path``.
    :param duckdb_path: DuckDB database file used when ``conn_id`` is ``None``. ``None`` (and no
        ``conn_id``) means the warehouse URL in the experiment config.
    :param dialect: sqlglot dialect the core writes SQL in; inferred from the connection type
        when ``None``.
    :param hook_params: Extra keyword arguments for the connection's hook (e.g. ``{"database": "x"}``).
    """

    conn_name_attr = "conn_id"
    hook_name = "Dataeng experiment warehouse"

    def __init__(
        self,
        conn_id: str | None = None,
        duckdb_path: str | None = None,
        dialect: str | None = None,
        hook_params: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.conn_id = conn_id
        self.duckdb_path = duckdb_path
        self.dialect = dialect
        self.hook_params = hook_params or {}

    @cached_property
    def dbapi_hook(self) -> DbApiHook:
        """The connection's own hook; must be a common-sql ``DbApiHook``."""
        from airflow.providers.common.sql.hooks.sql import DbApiHook

        if self.conn_id is None:
            raise ValueError("dbapi_hook needs a conn_id; without one the warehouse is DuckDB.")
        hook = self.get_connection(self.conn_id).get_hook(hook_params=self.hook_params)
        if not isinstance(hook, DbApiHook):
            raise TypeError(
                f"Connection {self.conn_id!r} has hook {type(hook).__name__}, which is not a common-sql "
                "DbApiHook; use a SQL connection (postgres, snowflake, mysql, trino, ...)."
            )
        return hook

    def sql_dialect(self) -> str:
        """The sqlglot dialect of the warehouse."""
        if self.dialect:
            return self.dialect
        if self.conn_id is None:
            return "duckdb"
        hook = self.dbapi_hook
        conn_type = getattr(hook, "conn_type", None)
        try:
            dialect_name = hook.dialect_name
        except Exception:  # a hook without SQLAlchemy support still has a conn_type
            dialect_name = None
        return sqlglot_dialect(conn_type, dialect_name)

    def get_conn(self) -> Warehouse | None:
        """Return the core warehouse, or ``None`` when the experiment config's own URL should be used.

        ``conn_id`` wins, then ``duckdb_path``; with neither, ``None`` lets the core open the
        config's ``warehouse:`` URL (the bundled sample points at a DuckDB file next to it).
        """
        from dataeng_agents.core.warehouse import DbApiWarehouse, DuckDBWarehouse

        if self.conn_id is None:
            return DuckDBWarehouse(self.duckdb_path) if self.duckdb_path else None
        # A factory, not an open connection: the core opens and closes one per query, so a long
        # deferral never holds a database connection.
        return DbApiWarehouse(self.dbapi_hook.get_conn, self.sql_dialect())

    def test_connection(self) -> tuple[bool, str]:
        """Run ``SELECT 1`` through the warehouse."""
        try:
            warehouse = self.get_conn()
            if warehouse is None:
                return False, "No conn_id and no duckdb_path: the experiment config names the warehouse."
            rows = warehouse.query("SELECT 1 AS ok")
            return bool(rows), "Warehouse answered SELECT 1."
        except Exception as e:
            return False, str(e)
