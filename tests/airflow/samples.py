"""Sample warehouse for the DAG tests: the seeded checkout experiment in DuckDB (``warehouse_copy`` copies it
into PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

#: small enough to generate and copy in a few seconds, large enough for every metric to have data
SAMPLE_USERS = 20_000


def generate_checkout_sample(path: Path) -> Path:
    from dataeng_agents.core.warehouse.sample_data import generate

    generate(path, users=SAMPLE_USERS)
    return path
