"""The Prefect experiment task and flow read configs through the core's one loader (issue 12).

A lifecycle YAML (``hypothesis:``/``tracking:``/``rollout:`` next to the experiment keys) used to be
rejected by the ``analyze_experiment`` task and ``experiment_report_flow`` with "tracking: unknown
key"; it must give the same report as the plain experiment config, as a path, as YAML text and as a
dict, and the config's own relative ``warehouse:`` resolves against the config file's folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from experiment_entry_support import CHECKOUT_DEMO, assert_same_results, lifecycle_demo_raw


def test_analyze_task_reads_a_lifecycle_yaml_and_its_relative_warehouse(
    prefect_server: str, sample_duckdb: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataeng_agents.core.experiment import analyze_experiment as core_analyze
    from dataeng_agents.core.warehouse import DuckDBWarehouse
    from dataeng_agents.prefect_integration.tasks import analyze_experiment, design_experiment

    # the config sits next to its database and names it relatively; the worker runs elsewhere
    os.symlink(sample_duckdb, tmp_path / "warehouse.duckdb")
    path = tmp_path / "lifecycle.yaml"
    path.write_text(yaml.safe_dump(lifecycle_demo_raw("duckdb:///warehouse.duckdb")), encoding="utf-8")
    elsewhere = tmp_path / "worker"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    direct = core_analyze(CHECKOUT_DEMO, DuckDBWarehouse(sample_duckdb))
    for source in (str(path), path):
        report = analyze_experiment(source)
        assert_same_results(report, direct)
        assert report.hypothesis == "One-click checkout and recommendations"
    design = design_experiment(str(path))
    assert design.experiment_id == direct.experiment_id and design.per_variant is not None


@pytest.mark.parametrize("form", ["path", "text", "dict"])
def test_experiment_report_flow_accepts_a_lifecycle_yaml(
    prefect_server: str, sample_duckdb: str, tmp_path: Path, form: str
) -> None:
    from dataeng_agents.core.experiment import analyze_experiment as core_analyze
    from dataeng_agents.core.warehouse import DuckDBWarehouse
    from dataeng_agents.prefect_integration import ExperimentWarehouse
    from dataeng_agents.prefect_integration.flows import experiment_report_flow

    raw = lifecycle_demo_raw()
    path = tmp_path / "lifecycle.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    config: Any = {"path": str(path), "text": yaml.safe_dump(raw), "dict": raw}[form]

    state = experiment_report_flow(
        config=config,
        warehouse=ExperimentWarehouse(duckdb_path=sample_duckdb),
        report_dir=str(tmp_path / "report"),
        fail_on=[],
        return_state=True,
    )
    assert state.is_completed(), state.message
    result = state.result()
    direct = core_analyze(CHECKOUT_DEMO, DuckDBWarehouse(sample_duckdb))
    assert result["experiment_id"] == direct.experiment_id
    assert result["verdict"] == direct.decision.verdict
    assert [g["id"] for g in result["goals"]] == [r.id for r in direct.results if r.role == "goal"]


def test_a_bad_lifecycle_section_fails_the_task_naming_the_field(
    prefect_server: str, sample_duckdb: str
) -> None:
    from dataeng_agents.core.errors import ConfigError
    from dataeng_agents.prefect_integration import ExperimentWarehouse
    from dataeng_agents.prefect_integration.tasks import analyze_experiment

    raw = lifecycle_demo_raw()
    raw["rollout"]["stages"][0]["percent"] = 0
    with pytest.raises(ConfigError) as info:
        analyze_experiment(raw, ExperimentWarehouse(duckdb_path=sample_duckdb))
    assert info.value.field == "rollout.stages[0].percent"
