"""Copy DuckDB test warehouses into PostgreSQL: the one helper the core, Airflow and Prefect suites share.

``tests/`` is on ``sys.path`` (its conftest), so every suite imports it as ``from warehouse_copy import
copy_duckdb_to_postgres``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

# DuckDB's information_schema data types -> PostgreSQL; anything else travels as text
PG_TYPES = {
    "VARCHAR": "text",
    "TINYINT": "bigint",
    "SMALLINT": "bigint",
    "INTEGER": "bigint",
    "BIGINT": "bigint",
    "HUGEINT": "numeric",
    "DOUBLE": "double precision",
    "FLOAT": "double precision",
    "DECIMAL": "numeric",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
    "DATE": "date",
    "BOOLEAN": "boolean",
}


def copy_duckdb_to_postgres(
    duckdb_path: str | Path, postgres_url: str, schema: str, tables: Sequence[str] | None = None
) -> dict[str, int]:
    """Copy ``tables`` (default: every table) of a DuckDB file into ``schema``; returns ``{table: rows}``.

    Column names and order are kept, types mapped through :data:`PG_TYPES`. Rows go through COPY as
    Python values (floats exactly, so PostgreSQL and DuckDB sums can be compared for equality), and
    each table is ANALYZEd: without planner statistics a freshly loaded table gets nested-loop joins.
    """
    import duckdb
    import psycopg

    counts: dict[str, int] = {}
    src = duckdb.connect(str(duckdb_path), read_only=True)
    try:
        if tables is None:
            tables = [
                t for (t,) in src.execute("SELECT table_name FROM information_schema.tables").fetchall()
            ]
        with psycopg.connect(postgres_url, autocommit=False) as pg:
            for table in tables:
                columns = src.execute(
                    "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? "
                    "ORDER BY ordinal_position",
                    [table],
                ).fetchall()
                if not columns:
                    raise ValueError(f"{duckdb_path}: no table {table!r}")
                ddl = ", ".join(f'"{name}" {_pg_type(dtype)}' for name, dtype in columns)
                pg.execute(f'CREATE TABLE "{schema}"."{table}" ({ddl})')
                names = ", ".join(f'"{name}"' for name, _ in columns)
                rows = src.execute(f'SELECT {names} FROM "{table}"').fetchall()
                with pg.cursor() as cur, cur.copy(f'COPY "{schema}"."{table}" ({names}) FROM STDIN') as copy:
                    for row in rows:
                        copy.write_row(row)
                counts[table] = len(rows)
            pg.commit()
            pg.autocommit = True  # ANALYZE after the commit, outside a transaction block
            for table in tables:
                pg.execute(f'ANALYZE "{schema}"."{table}"')
    finally:
        src.close()
    return counts


def _pg_type(duckdb_type: str) -> str:
    base = duckdb_type.upper().split("(", 1)[0]
    return PG_TYPES.get(base, "text")
