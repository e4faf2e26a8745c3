"""Shared by the scaffold tests of the three suites: build a project, find dbt, generate sample data.

dbt runs as a subprocess from its own virtualenv: dbt-core pins (pathspec, protobuf,
python-dateutil) would downgrade mypy and Airflow's dependencies if it shared their environment,
and the generated DAG/flow call the ``dbt`` CLI (``DBT_EXECUTABLE``) anyway. The virtualenv is
``$DATAENG_DBT`` (a dbt binary) if set, else ``<repo>/.venv-dbt``, created on first use from
:data:`DBT_REQUIREMENTS` (pip, PyPI).
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import venv
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

from dataeng_agents.core.design import design_pipeline, extract_spec, load_spec
from dataeng_agents.core.scaffold import Project, scaffold_project

REPO = Path(__file__).resolve().parents[1]
SPECS = REPO / "core" / "examples" / "specs"
#: the seed's two example requests
REQUESTS = {
    "kafka_bigquery": "Design a real-time streaming pipeline from Kafka to BigQuery",
    "postgres_snowflake": "Build a daily batch ELT pipeline from PostgreSQL orders to Snowflake with dbt",
}
EXAMPLES = {p.stem: p for p in sorted(SPECS.glob("*.yaml"))}
DBT_REQUIREMENTS = ["dbt-core>=1.10,<1.12", "dbt-duckdb>=1.9", "dbt-postgres>=1.9"]
#: every run's data interval ends here (UTC); the sample data is generated for that interval
INTERVAL_END = datetime(2025, 3, 4)


#: the environment a scaffolded pipeline reads (isolated per test by :func:`isolated_pipeline`)
PIPELINE_ENV = (
    "PIPELINE_WAREHOUSE_URL",
    "PIPELINE_SOURCE_URL",
    "PIPELINE_LANDING_DIR",
    "PIPELINE_SAMPLE_API_DIR",
    "PIPELINE_SCHEMA_PREFIX",
    "PIPELINE_DBT_TARGET",
    "DBT_EXECUTABLE",
)


@contextmanager
def isolated_pipeline(module_prefixes: tuple[str, ...] = ()) -> Iterator[None]:
    """Restore :data:`PIPELINE_ENV` and ``sys.path`` afterwards, and forget the generated packages
    (``*_pipeline``) and the modules starting with ``module_prefixes`` that were imported meanwhile."""
    saved = {k: os.environ.get(k) for k in PIPELINE_ENV}
    path = list(sys.path)
    before = set(sys.modules)
    yield
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    sys.path[:] = path
    for m in set(sys.modules) - before:
        if m.split(".")[0].endswith("_pipeline") or m.startswith(module_prefixes):
            del sys.modules[m]


def dbt_executable() -> str:
    """Path of a dbt binary with the duckdb and postgres adapters (creating .venv-dbt if needed)."""
    given = os.environ.get("DATAENG_DBT")
    if given:
        return given
    env = REPO / ".venv-dbt"
    dbt = env / "bin" / "dbt"
    if not dbt.exists():
        venv.create(env, with_pip=True)
        subprocess.run(
            [str(env / "bin" / "python"), "-m", "pip", "install", "-q", *DBT_REQUIREMENTS],
            check=True,
            timeout=900,
        )
    return str(dbt)


def spec_for(key: str) -> object:
    """An example spec by file stem, or the spec the extractor drafts from one of the two requests."""
    if key in REQUESTS:
        return extract_spec(REQUESTS[key]).spec
    return load_spec(EXAMPLES[key])


ALL_KEYS = [*EXAMPLES, *REQUESTS]


def scalar(conn: Any, sql: str) -> Any:
    """The first column of the one row ``sql`` returns on the DB-API connection ``conn``."""
    row = conn.execute(sql).fetchone()
    assert row is not None, sql
    return row[0]


@dataclass
class Built:
    project: Project
    root: Path
    start: datetime
    end: datetime

    def module(self, name: str) -> ModuleType:
        return importlib.import_module(f"{self.project.package}.{name}")


def build(key: str, out: Path, *, warehouse_url: str | None = None, schema_prefix: str = "") -> Built:
    """Write the project for ``key`` under ``out``, point it at ``warehouse_url`` and generate sample data."""
    spec = spec_for(key)
    design = design_pipeline(spec)  # type: ignore[arg-type]
    project = scaffold_project(spec, design)  # type: ignore[arg-type]
    project.write(out)
    os.environ["PIPELINE_WAREHOUSE_URL"] = warehouse_url or f"duckdb:///{out / 'warehouse.duckdb'}"
    os.environ.pop("PIPELINE_SOURCE_URL", None)
    os.environ["PIPELINE_LANDING_DIR"] = str(out / "landing")
    os.environ["PIPELINE_SAMPLE_API_DIR"] = str(out / "landing" / "_api")
    os.environ["PIPELINE_SCHEMA_PREFIX"] = schema_prefix
    os.environ["PIPELINE_DBT_TARGET"] = (
        "postgres" if warehouse_url and warehouse_url.startswith("postgres") else "duckdb"
    )
    os.environ["DBT_EXECUTABLE"] = dbt_executable()
    if str(out) not in sys.path:
        sys.path.insert(0, str(out))
    for mod in [m for m in sys.modules if m == project.package or m.startswith(project.package + ".")]:
        del sys.modules[mod]  # a fresh copy per project folder
    config = importlib.import_module(f"{project.package}.pipeline_config")
    end = INTERVAL_END
    start = end - timedelta(minutes=config.INTERVAL_MINUTES)
    importlib.import_module(f"{project.package}.sample_data").generate(start, end)
    return Built(project, out, start, end)
