"""One config loader and one warehouse resolver behind every experiment entry point (issue 12).

Regression tests for two drift bugs, through the core facades and the ``dataeng`` CLI (the Airflow
and Prefect entry points have theirs in tests/airflow and tests/prefect):

* a lifecycle YAML (``hypothesis:``/``tracking:``/``rollout:`` next to the experiment keys) was
  rejected by ``analyze_experiment`` and ``ExperimentConfig.load`` with "tracking: unknown key";
* ``--warehouse duckdb:///x.duckdb`` resolved against the working directory for analyze/design but
  against the config's folder for explore/hypothesis/tracking-plan/rollout-check.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from dataeng_agents.core.cli import app
from dataeng_agents.core.errors import ConfigError, InputError
from dataeng_agents.core.experiment import (
    ExperimentConfig,
    analysis_interval,
    analyze_experiment,
    design_experiment,
    load_configs,
    load_experiment_config,
    resolve_warehouse,
)
from dataeng_agents.core.warehouse import DuckDBWarehouse
from experiment_entry_support import assert_same_results, lifecycle_sections
from test_experiment_support import demo_config, sample
from typer.testing import CliRunner


def _lifecycle_config() -> dict[str, Any]:
    return {**demo_config(), **lifecycle_sections()}


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> str:
    return sample(tmp_path_factory.mktemp("entry"), users=20_000, seed=8).path


# ---------------------------------------------------------------------------------- the one loader
def test_every_core_reader_accepts_a_lifecycle_yaml(tmp_path: Path, checkout: str) -> None:
    path = tmp_path / "lifecycle.yaml"
    text = yaml.safe_dump(_lifecycle_config(), sort_keys=False)
    path.write_text(text, encoding="utf-8")
    plain = load_experiment_config(demo_config())

    for source in (path, str(path), text, _lifecycle_config()):
        cfg = load_experiment_config(source)
        assert cfg.id == plain.id and cfg.metrics == plain.metrics
        assert cfg.hypothesis == "One-click checkout and recommendations"  # the mapping's `change`
        assert ExperimentConfig.load(source) == cfg
        cfg2, life = load_configs(source)
        assert cfg2 == cfg and life.rollout is not None and life.experiment_id == plain.id
    assert load_experiment_config(path).base_dir == str(tmp_path.resolve())

    wh = DuckDBWarehouse(checkout)
    assert_same_results(analyze_experiment(str(path), wh), analyze_experiment(demo_config(), wh))
    assert design_experiment(path, wh).per_variant == design_experiment(demo_config(), wh).per_variant


def test_bad_lifecycle_sections_are_named_by_every_reader(tmp_path: Path, checkout: str) -> None:
    raw = _lifecycle_config()
    raw["rollout"]["stages"][0]["percent"] = 0
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    for call in (
        lambda: load_experiment_config(path),
        lambda: analyze_experiment(path, DuckDBWarehouse(checkout)),
        lambda: design_experiment(str(path), DuckDBWarehouse(checkout)),
    ):
        with pytest.raises(ConfigError) as info:
            call()
        assert info.value.field == "rollout.stages[0].percent"
    res = CliRunner().invoke(app, ["experiment", "analyze", str(path), "-w", str(checkout), "--json"])
    assert res.exit_code == 2 and "rollout.stages[0].percent" in res.output


def test_yaml_errors_name_the_line_and_missing_files_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"not valid YAML \(line 3, column 1\)"):
        load_experiment_config("id: x\nmetrics: [\n")
    with pytest.raises(ConfigError, match="file not found"):
        load_experiment_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="file not found"):
        load_experiment_config(str(tmp_path / "missing.yml"))


def test_cli_analyze_and_design_accept_a_lifecycle_yaml(tmp_path: Path, checkout: str) -> None:
    path = tmp_path / "lifecycle.yaml"
    path.write_text(yaml.safe_dump(_lifecycle_config()), encoding="utf-8")
    runner = CliRunner()
    res = runner.invoke(
        app,
        ["experiment", "analyze", str(path), "-w", str(checkout), "-o", str(tmp_path / "r"), "--json"],
    )
    assert res.exit_code == 0, res.output
    assert (
        json.loads(res.stdout)["verdict"] == analyze_experiment(demo_config(), str(checkout)).decision.verdict
    )
    res = runner.invoke(app, ["experiment", "design", str(path), "-w", str(checkout), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["experiment_id"] == "checkout-2024-03"


# ---------------------------------------------------------------------------- the one resolver
@pytest.fixture(scope="module")
def lifecycle_dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, Any]]:
    """``work/x.duckdb`` (a clean lifecycle product) and ``configs/`` (where the YAMLs go)."""
    from dataeng_agents.core.lifecycle.demo_data import generate_lifecycle_data, lifecycle_demo_config

    root = tmp_path_factory.mktemp("resolve")
    work, configs = root / "work", root / "configs"
    work.mkdir()
    configs.mkdir()
    truth = generate_lifecycle_data(work / "x.duckdb", users=4000, bug_variant=None)
    raw = lifecycle_demo_config(truth, "unused.duckdb")
    raw.pop("warehouse")
    return work, configs, raw


def _lifecycle_commands(config: Path, stage_check_at: str) -> list[tuple[list[str], set[int]]]:
    """Every experiment command on ``config``, with the exit codes of a run that read the data
    (exit code 2 is an error, e.g. a database that is not there)."""
    c = str(config)
    return [
        (["analyze", c, "-o", "reports", "--json"], {0}),
        (["design", c, "--json"], {0}),
        (["explore", c, "--json"], {0}),
        (["hypothesis", c, "--json"], {0, 1}),  # 1: the plan has problems (4,000 users is small)
        (["tracking-plan", c, "--check", "--json"], {0}),
        (["rollout-check", c, "--stage", "1", "--now", stage_check_at, "--json"], {0}),
    ]


def _run_all(commands: list[tuple[list[str], set[int]]], extra: list[str]) -> None:
    runner = CliRunner()
    for args, codes in commands:
        res = runner.invoke(app, ["experiment", *args, *extra])
        assert res.exit_code in codes, (args[0], res.output)
        assert json.loads(res.stdout), args[0]


@pytest.mark.parametrize("url", ["duckdb:///x.duckdb", "x.duckdb"])
def test_a_typed_relative_warehouse_is_relative_to_the_working_directory_for_every_command(
    lifecycle_dirs: tuple[Path, Path, dict[str, Any]], monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    work, configs, raw = lifecycle_dirs
    config = configs / "no_warehouse.yaml"
    config.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    monkeypatch.chdir(work)
    _run_all(_lifecycle_commands(config, f"{raw['end']}T12:00"), ["--warehouse", url])
    assert not (configs / "x.duckdb").exists()  # nothing looked for the database next to the config

    cfg = load_experiment_config(config)
    wh = resolve_warehouse(cfg, url)
    assert isinstance(wh, DuckDBWarehouse) and wh.path == str(work / "x.duckdb")
    # an absolute path stays absolute, with or without the scheme (a bare one lost its leading /)
    for absolute in (str(work / "x.duckdb"), f"duckdb:///{work / 'x.duckdb'}"):
        wh = resolve_warehouse(cfg, absolute)
        assert isinstance(wh, DuckDBWarehouse) and wh.path == str(work / "x.duckdb")


def test_the_configs_own_warehouse_is_relative_to_the_config_file_for_every_command(
    lifecycle_dirs: tuple[Path, Path, dict[str, Any]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    work, configs, raw = lifecycle_dirs
    config = configs / "with_warehouse.yaml"
    config.write_text(yaml.safe_dump({**raw, "warehouse": "duckdb:///../work/x.duckdb"}), encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    _run_all(_lifecycle_commands(config, f"{raw['end']}T12:00"), [])
    wh = resolve_warehouse(load_experiment_config(config), None)
    assert isinstance(wh, DuckDBWarehouse)
    assert os.path.realpath(wh.path) == os.path.realpath(work / "x.duckdb")


def test_no_warehouse_anywhere_is_a_config_error(lifecycle_dirs: tuple[Path, Path, dict[str, Any]]) -> None:
    _work, _configs, raw = lifecycle_dirs
    with pytest.raises(ConfigError) as info:
        resolve_warehouse(load_experiment_config(raw), None)
    assert info.value.field == "warehouse"


# ----------------------------------------------------------------------- a scheduled run's window
def test_analysis_interval_of_each_window() -> None:
    cfg = load_experiment_config(demo_config())  # start: 2024-03-01 (a date)
    run_start, run_end = datetime(2024, 3, 8, tzinfo=UTC), datetime(2024, 3, 9, tzinfo=UTC)
    assert analysis_interval(cfg, "cumulative", run_start, run_end) == (
        datetime(2024, 3, 1, tzinfo=UTC),
        run_end,
    )
    assert analysis_interval(cfg, "data_interval", run_start, run_end) == (run_start, run_end)
    assert analysis_interval(cfg, "all", run_start, run_end) is None
    assert analysis_interval(cfg, "cumulative", None, None) is None
    assert analysis_interval(cfg, "data_interval", None, run_end) == (date(2024, 3, 1), run_end)
    naive = load_experiment_config(demo_config(start="2024-03-01T06:00:00"))
    assert analysis_interval(naive, "cumulative", run_start, run_end) == (
        datetime(2024, 3, 1, 6, tzinfo=UTC),
        run_end,
    )
    unbounded = load_experiment_config(demo_config(start=None))
    assert analysis_interval(unbounded, "cumulative", run_start, run_end) == (run_start, run_end)
    with pytest.raises(InputError) as info:
        analysis_interval(cfg, "weekly", run_start, run_end)  # type: ignore[arg-type]
    assert info.value.field == "window"
