"""design_experiment: baselines from a pre-period query, traffic, sample size and duration."""

from __future__ import annotations

import math
from pathlib import Path

import duckdb
import pytest
from dataeng_agents.core.errors import InputError
from dataeng_agents.core.experiment import design_experiment
from dataeng_agents.core.report import to_markdown
from dataeng_agents.core.stats import analysis_power, analysis_sample_size, sample_size_per_variant
from dataeng_agents.core.warehouse import DuckDBWarehouse
from test_experiment_support import demo_config, sample


def test_design_measures_the_baseline_and_sizes_the_goals(tmp_path: Path) -> None:
    s = sample(tmp_path, users=20_000, seed=12)
    design = design_experiment(demo_config(), DuckDBWarehouse(s.path))
    # the population: users with a session in the baseline period (their first one = "exposure")
    con = duckdb.connect(s.path, read_only=True)
    units, conversions = con.execute(
        """
        WITH firsts AS (
          SELECT unit_id, min(started_at) AS first FROM sessions
          WHERE started_at >= TIMESTAMP '2024-02-01' AND started_at < TIMESTAMP '2024-03-01' GROUP BY unit_id)
        SELECT count(*), count(*) FILTER (WHERE EXISTS (
          SELECT 1 FROM orders o WHERE o.unit_id = f.unit_id AND o.ordered_at >= f.first
            AND o.ordered_at < f.first + INTERVAL 7 DAY))
        FROM firsts f
        """
    ).fetchone()  # type: ignore[misc]
    con.close()
    assert design.baseline_units == units
    assert design.baseline_days == 29
    assert design.traffic_per_day == pytest.approx(units / 29)
    conv = next(m for m in design.metrics if m.name == "conversion")
    p = conversions / units
    assert conv.baseline_mean == pytest.approx(p)
    assert conv.baseline_variance == pytest.approx(p * (1 - p))
    # sized for the analysis the report runs: sequential, Holm over (goal + secondary metrics) x 2 arms,
    # relative lift on the log ratio, min_conversions 150 (issue 13: the fixed-horizon size promised 80%)
    cfg = demo_config()
    tests = sum(1 for m in cfg["metrics"] if m.get("role", "secondary") != "guardrail") * 2
    expected_n = analysis_sample_size(
        kind="proportion", baseline_mean=p, mde=0.05, mde_type="relative", alpha=0.05, power=0.8,
        method="sequential", tests=tests, sequential_tuning=5000, min_conversions=150,
    )
    assert conv.per_variant == expected_n and conv.total == 3 * expected_n
    assert conv.power is not None and 0.8 <= conv.power < 0.81
    assert conv.note is not None and "sequential" in conv.note and f"Holm over {tests}" in conv.note
    fixed_n = sample_size_per_variant(
        kind="proportion", baseline_mean=p, mde=0.05, mde_type="relative", alpha=0.05, power=0.8, variants=3
    )
    assert fixed_n < expected_n
    assert analysis_power(kind="proportion", baseline_mean=p, mde=0.05, n_per_variant=fixed_n, method="sequential",
                          tests=tests, min_conversions=150) < 0.5
    assert conv.days == pytest.approx(expected_n / (units / 29 / 3))
    revenue = next(m for m in design.metrics if m.name == "revenue")
    assert revenue.per_variant is not None and revenue.baseline_variance is not None and revenue.baseline_variance > 0
    assert design.per_variant == max(conv.per_variant, revenue.per_variant)
    assert design.duration_days == pytest.approx(design.per_variant / (units / 29 / 3))
    unsized = [m for m in design.metrics if m.mde is None]
    assert unsized and all(m.per_variant is None and m.note for m in unsized)
    doc = to_markdown(design)
    assert design.hypothesis[:40] in doc and f"{design.per_variant:,} units per variant" in doc
    assert design.narrative is not None and design.duration_days is not None
    assert str(math.ceil(design.duration_days)) in design.narrative.headline


def test_traffic_fraction_and_allocation_stretch_the_duration(tmp_path: Path) -> None:
    s = sample(tmp_path, users=20_000, seed=12)
    base = design_experiment(demo_config(), DuckDBWarehouse(s.path))
    raw = demo_config()
    raw["design"]["traffic_fraction"] = 0.5
    raw["variants"][0]["weight"] = 2  # control gets half: each treatment arm a quarter
    half = design_experiment(raw, DuckDBWarehouse(s.path))
    assert half.per_variant == base.per_variant
    assert half.duration_days == pytest.approx(base.duration_days * 2 * (1 / 3) / (1 / 4))  # type: ignore[operator]


def test_empty_baseline_is_a_clear_error(tmp_path: Path) -> None:
    s = sample(tmp_path, users=3000, seed=12)
    raw = demo_config()
    raw["design"].update(baseline_start="2020-01-01", baseline_end="2020-02-01")
    with pytest.raises(InputError) as info:
        design_experiment(raw, DuckDBWarehouse(s.path))
    assert info.value.field == "design.population" and "no units in the baseline period" in info.value.message
