"""The provider is registered with Airflow and its modules import light."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import EXAMPLES, REPO

AIRFLOW = str(Path(sys.executable).with_name("airflow"))
HEAVY = ("anthropic", "scipy", "duckdb", "sqlglot", "numpy", "matplotlib", "pandas")


def test_provider_info_validates_against_airflow_schema() -> None:
    import jsonschema
    from airflow.providers_manager import ProvidersManager
    from dataeng_agents.airflow_provider.get_provider_info import get_provider_info

    info = get_provider_info()
    airflow_init = importlib.import_module("airflow").__file__
    assert airflow_init is not None
    schema = json.loads((Path(airflow_init).parent / "provider_info.schema.json").read_text())
    jsonschema.validate(info, schema)
    # Every module the metadata names imports, and the extra link is a real class.
    for section in ("hooks", "operators", "triggers"):
        for entry in info[section]:
            for module in entry["python-modules"]:
                importlib.import_module(module)
    module, _, cls = info["extra-links"][0].rpartition(".")
    assert getattr(importlib.import_module(module), cls).name == "Report"

    providers = ProvidersManager().providers
    assert "dataeng-agents" in providers
    assert providers["dataeng-agents"].data["name"] == info["name"]


def test_airflow_providers_list_shows_the_provider() -> None:
    proc = subprocess.run(
        [AIRFLOW, "providers", "list", "--output", "json"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    listed = {p["package_name"]: p for p in json.loads(proc.stdout[proc.stdout.index("[") :])}
    assert "dataeng-agents" in listed
    from importlib.metadata import version

    assert listed["dataeng-agents"]["version"] == version("dataeng-agents")


def test_no_second_anthropic_connection_type() -> None:
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    anthropic_hook = ProvidersManagerTaskRuntime().hooks["anthropic"]
    assert anthropic_hook is not None and anthropic_hook.package_name == "apache-airflow-providers-anthropic"
    from dataeng_agents.airflow_provider.get_provider_info import get_provider_info

    assert "connection-types" not in get_provider_info()


PROVIDER_MODULES = [
    "dataeng_agents.airflow_provider.operators.experiment",
    "dataeng_agents.airflow_provider.operators.review",
    "dataeng_agents.airflow_provider.operators.agent",
    "dataeng_agents.airflow_provider.operators.design",
    "dataeng_agents.airflow_provider.hooks.warehouse",
    "dataeng_agents.airflow_provider.hooks.narrator",
    "dataeng_agents.airflow_provider.links.report",
]


def test_importing_the_operator_modules_imports_no_heavy_library() -> None:
    # One fresh interpreter (this test process has long since imported everything); modules are
    # imported one after the other and the heavy modules new after each are attributed to it.
    code = (
        "import importlib, json, sys\n"
        "import airflow.sdk\n"
        f"heavy = {HEAVY!r}\n"
        "seen = {m for m in heavy if m in sys.modules}\n"
        "out = {}\n"
        f"for name in {PROVIDER_MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "    new = sorted(m for m in heavy if m in sys.modules and m not in seen)\n"
        "    seen.update(new)\n"
        "    out[name] = new\n"
        "print(json.dumps({'before': sorted(m for m in heavy if m in sys.modules), 'per_module': out}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=os.environ.copy()
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["per_module"] == {m: [] for m in PROVIDER_MODULES}, result


def test_ruff_air_rules_clean_on_provider_and_examples() -> None:
    ruff = Path(sys.executable).with_name("ruff")
    targets = [str(REPO / "airflow_provider"), *map(str, sorted(EXAMPLES.glob("airflow*")))]
    assert len(targets) > 1, "no Airflow example DAGs found"
    proc = subprocess.run(
        [str(ruff), "check", "--select", "AIR", "--preview", "--no-cache", *targets],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_reports_root_is_a_declared_config_option() -> None:
    # Declared in get_provider_info()["config"]: Airflow lists it and `conf` knows its default.
    proc = subprocess.run(
        [AIRFLOW, "config", "list", "--section", "dataeng", "--include-descriptions", "--include-examples"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "[dataeng]" in proc.stdout and "reports_root" in proc.stdout, proc.stdout[-2000:]
    assert "analytics-reports/experiments" in proc.stdout  # the declared example


def test_reports_root_setting_and_default(monkeypatch: pytest.MonkeyPatch) -> None:
    from dataeng_agents.airflow_provider.operators._narrated import default_reports_root

    monkeypatch.setenv("AIRFLOW__DATAENG__REPORTS_ROOT", "s3://aws_default@bucket/reports/")
    assert default_reports_root() == "s3://aws_default@bucket/reports"
    monkeypatch.delenv("AIRFLOW__DATAENG__REPORTS_ROOT")
    monkeypatch.setenv("AIRFLOW_HOME", "/opt/airflow")
    assert default_reports_root() == "file:///opt/airflow/dataeng_reports"
