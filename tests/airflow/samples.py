"""Sample warehouses for the DAG tests: the seeded checkout experiment in DuckDB and in PostgreSQL."""

from __future__ import annotations

from pathlib import Path

#: small enough to generate and copy in a few seconds, large enough for every metric to have data
SAMPLE_USERS = 20_000

_PG_TYPES = {
    "VARCHAR": "text",
    "BIGINT": "bigint",
    "INTEGER": "bigint",
    "DOUBLE": "double precision",
    "FLOAT": "double precision",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
    "DATE": "date",
    "BOOLEAN": "boolean",
}


def generate_checkout_sample(path: Path) -> Path:
    from dataeng_agents.core.warehouse.sample_data import generate

    generate(path, users=SAMPLE_USERS)
    return path


def copy_duckdb_to_postgres(duckdb_path: Path, postgres_url: str, schema: str) -> dict[str, int]:
    """Copy every table of the DuckDB file into ``schema`` (PostgreSQL COPY); ``{table: rows}``."""
    import duckdb
    import psycopg

    rows: dict[str, int] = {}
    src = duckdb.connect(str(duckdb_path), read_only=True)
    try:
        tables = [t for (t,) in src.execute("SELECT table_name FROM information_schema.tables").fetchall()]
        with psycopg.connect(postgres_url, autocommit=False) as pg:
            for table in tables:
                columns = src.execute(
                    "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? "
                    "ORDER BY ordinal_position",
                    [table],
                ).fetchall()
                ddl = ", ".join(f'"{c}" {_PG_TYPES.get(t.upper(), "text")}' for c, t in columns)
                pg.execute(f'CREATE TABLE "{schema}"."{table}" ({ddl})')
                names = ", ".join(f'"{c}"' for c, _ in columns)
                data = src.execute(f'SELECT {names} FROM "{table}"').fetchall()
                with pg.cursor().copy(f'COPY "{schema}"."{table}" ({names}) FROM STDIN') as copy:
                    for record in data:
                        copy.write_row(record)
                rows[table] = len(data)
            pg.commit()
    finally:
        src.close()
    return rows
