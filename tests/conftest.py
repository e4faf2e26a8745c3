"""Fixtures shared by the core, airflow and prefect suites.

PostgreSQL comes from ``DATAENG_TEST_POSTGRES_URL`` (``.ci/run`` sets it), else from testcontainers
when a Docker engine answers, else the test *fails*: the database tests are never skipped silently.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

POSTGRES_ENV = "DATAENG_TEST_POSTGRES_URL"


def _docker_answers() -> bool:
    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env(timeout=3).ping()
    except Exception:
        return False
    return True


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A ``postgresql://`` URL of a real, running PostgreSQL server."""
    url = os.environ.get(POSTGRES_ENV)
    if url:
        yield url
        return
    if _docker_answers():
        from testcontainers.postgres import PostgresContainer  # type: ignore[import-untyped]

        with PostgresContainer("postgres:16-alpine", driver=None) as pg:
            yield pg.get_connection_url()
        return
    pytest.fail(
        f"PostgreSQL tests need a server: set {POSTGRES_ENV}=postgresql://user@host:port/db "
        "or run a Docker engine for testcontainers. These tests are never skipped.",
        pytrace=False,
    )


@pytest.fixture
def postgres_schema(postgres_url: str) -> Iterator[tuple[str, str]]:
    """A fresh schema in the test database, dropped afterwards: ``(url, schema_name)``."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield postgres_url, schema
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
