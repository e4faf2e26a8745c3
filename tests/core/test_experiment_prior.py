"""``analysis.prior`` in the experiment YAML: a proper Gaussian prior for the Bayesian analysis."""

from __future__ import annotations

from pathlib import Path

import pytest
from dataeng_agents.core.errors import ConfigError
from dataeng_agents.core.experiment import analyze_experiment, load_experiment_config
from dataeng_agents.core.report import ExperimentReport
from dataeng_agents.core.warehouse import DuckDBWarehouse
from test_experiment_support import demo_config, sample


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> DuckDBWarehouse:
    return DuckDBWarehouse(sample(tmp_path_factory.mktemp("prior"), users=20_000, seed=8).path)


def _bayesian(warehouse: DuckDBWarehouse, prior: dict[str, float] | None) -> ExperimentReport:
    raw = demo_config()
    raw["analysis"] = {**raw.get("analysis", {}), "method": "bayesian", "correction": "none"}
    if prior is not None:
        raw["analysis"]["prior"] = prior
    return analyze_experiment(raw, warehouse)


def test_a_tight_prior_at_zero_shrinks_every_lift_towards_zero(warehouse: DuckDBWarehouse) -> None:
    flat = _bayesian(warehouse, None)
    tight = _bayesian(warehouse, {"mean": 0.0, "stddev": 0.005})
    wide = _bayesian(warehouse, {"mean": 0.0, "stddev": 10.0})
    for r in flat.results:
        if r.estimate is None or r.error:
            continue
        t, w = tight.result(r.metric, r.variant), wide.result(r.metric, r.variant)
        assert t.estimate is not None and w.estimate is not None
        assert abs(t.estimate) < abs(r.estimate), r.id
        assert abs(t.chance_to_win - 0.5) <= abs(r.chance_to_win - 0.5) + 1e-12  # type: ignore[operator]
        # a very wide prior is the flat prior's answer
        assert w.estimate == pytest.approx(r.estimate, rel=1e-3, abs=1e-6)
    # one_click's real conversion gain is less certain under a sceptical prior
    f, t = flat.result("conversion", "one_click"), tight.result("conversion", "one_click")
    assert f.chance_to_win is not None and t.chance_to_win is not None
    assert 0.5 < t.chance_to_win < f.chance_to_win
    assert sum(r.significant for r in tight.results) <= sum(r.significant for r in flat.results)


def test_a_prior_on_a_frequentist_analysis_is_a_config_error_naming_the_field(tmp_path: Path) -> None:
    raw = demo_config()
    raw["analysis"] = {**raw.get("analysis", {}), "method": "sequential", "prior": {"stddev": 0.1}}
    with pytest.raises(ConfigError, match=r"analysis.*prior.*bayesian"):
        load_experiment_config(raw)
    raw["analysis"] = {"method": "bayesian", "prior": {"stddev": 0}}
    with pytest.raises(ConfigError, match=r"prior.*stddev"):
        load_experiment_config(raw)
