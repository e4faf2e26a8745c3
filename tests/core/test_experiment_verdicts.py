"""Issue 13 at the experiment level: intervals consistent with verdicts, truthful D5, typed bad inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from dataeng_agents.core.cli import app
from dataeng_agents.core.errors import ConfigError, WarehouseError
from dataeng_agents.core.experiment import analyze_experiment, load_experiment_config
from dataeng_agents.core.report import to_markdown
from dataeng_agents.core.warehouse import DuckDBWarehouse
from dataeng_agents.core.warehouse.runners import Row
from test_experiment_support import demo_config, sample
from typer.testing import CliRunner


def test_report_intervals_agree_with_the_adjusted_verdicts(tmp_path: Path) -> None:
    s = sample(tmp_path, users=20_000, seed=7)
    report = analyze_experiment(demo_config(), DuckDBWarehouse(s.path))
    corrected = [r for r in report.results if r.adjusted_p_value is not None and r.error is None]
    assert corrected  # goals and secondary metrics are Holm-corrected by default
    for r in corrected:
        excludes = (r.adjusted_ci_lower is not None and r.adjusted_ci_lower > 0) or (
            r.adjusted_ci_upper is not None and r.adjusted_ci_upper < 0)
        assert excludes == r.significant, r.id
        # never narrower than the unadjusted interval; a relative interval never crosses -100%
        assert r.adjusted_ci_lower is not None and r.ci_lower is not None and r.adjusted_ci_lower <= r.ci_lower + 1e-12
        assert r.adjusted_ci_lower > -1.0
    md = to_markdown(report)
    assert "adjusted;" in md and "unadjusted" in md
    assert "always-valid p" in md  # the sequential default's p-value says what it is


def test_d5_says_what_the_data_show(tmp_path: Path) -> None:
    s = sample(tmp_path, users=4000, seed=3, aa=True)
    cfg = demo_config()
    cfg.setdefault("decision", {})["planned_units_per_variant"] = 100
    report = analyze_experiment(cfg, DuckDBWarehouse(s.path))
    d5 = [r for r in report.decision.reasons if r.rule == "D5"]
    assert d5, [r.rule for r in report.decision.reasons]
    for reason in d5:
        assert "no goal metric is significant" in reason.text and "not excluded" in reason.text
        assert "moved by the minimum detectable effect" not in reason.text


def test_start_after_end_is_rejected() -> None:
    cfg = demo_config(start="2024-03-10", end="2024-03-01")
    with pytest.raises(ConfigError, match="end"):
        load_experiment_config(cfg)


class _Tampered:
    """DuckDB's answer with one value replaced, as a misbehaving warehouse would return it."""

    dialect = "duckdb"

    def __init__(self, path: str, column: str, value: Any) -> None:
        self.duck, self.column, self.value = DuckDBWarehouse(path), column, value

    def query(self, sql: str) -> list[Row]:
        rows = self.duck.query(sql)
        for row in rows:
            if row.get("variant") is not None and self.column in row:
                row[self.column] = self.value
                break
        return rows


@pytest.mark.parametrize("column,value,words", [
    ("units", "5200", "unit count"),
    ("units", True, "unit count"),
])
def test_counts_must_be_numbers(tmp_path: Path, column: str, value: Any, words: str) -> None:
    s = sample(tmp_path, users=2000, seed=4)
    with pytest.raises(WarehouseError, match=words):
        analyze_experiment(demo_config(), _Tampered(s.path, column, value))


def test_nan_in_a_sum_names_metric_variant_and_column(tmp_path: Path) -> None:
    s = sample(tmp_path, users=2000, seed=4)
    probe = DuckDBWarehouse(s.path)
    seen: list[str] = []

    class Spy:
        dialect = "duckdb"

        def query(self, sql: str) -> list[Row]:
            rows = probe.query(sql)
            seen.extend(k for k in rows[0] if k.endswith("_sum"))
            return rows

    analyze_experiment(demo_config(), Spy())
    column = seen[0]
    with pytest.raises(WarehouseError) as info:
        analyze_experiment(demo_config(), _Tampered(s.path, column, float("nan")))
    message = str(info.value)
    assert column in message and "metric" in message and "variant" in message and "nan" in message


def test_design_has_no_progress_option(tmp_path: Path) -> None:
    s = sample(tmp_path, users=2000, seed=4)
    config = tmp_path / "exp.yaml"
    config.write_text(yaml.safe_dump(demo_config()))
    result = CliRunner().invoke(app, ["experiment", "design", str(config), "--warehouse", s.path, "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "units per variant" in result.stdout
