"""Experiment config: loading, and errors that name the config path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from dataeng_agents.core.errors import ConfigError
from dataeng_agents.core.experiment import ExperimentConfig
from dataeng_agents.core.experiment.config import parse_duration_hours
from test_experiment_support import DEMO_YAML, demo_config


def _err(raw: Any) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        ExperimentConfig.load(raw)
    return info.value


def test_bundled_config_loads_from_path_and_dict() -> None:
    cfg = ExperimentConfig.load(DEMO_YAML)
    assert cfg.id == "checkout-2024-03"
    assert cfg.control_name == "control"
    assert cfg.analysis.method == "sequential"  # scheduled reports peek daily
    assert cfg.base_dir == str(DEMO_YAML.parent)
    assert [m.name for m in cfg.metrics][:2] == ["conversion", "revenue"]
    assert cfg.metrics[0].window == 168.0
    assert ExperimentConfig.load(demo_config()).metrics[1].capping is not None


@pytest.mark.parametrize(
    ("mutate", "path", "fragment"),
    [
        (lambda r: r["metrics"][2].update(window="seven days"), "metrics[2].window", "not a duration"),
        (lambda r: r["metrics"][1].update(kind="median"), "metrics[1].kind", "proportion"),
        (lambda r: r["metrics"][3].pop("value"), "metrics[3]", "needs `value`"),
        (lambda r: r["metrics"][2].pop("denominator"), "metrics[2]", "needs `denominator`"),
        (lambda r: r["metrics"][0].update(capping={"value": 5}), "metrics[0]", "cannot be capped"),
        (
            lambda r: r["metrics"][1].update(capping={"value": 5, "percentile": 0.9}),
            "metrics[1].capping",
            "exactly one",
        ),
        (
            lambda r: r["metrics"][1].update(capping={"percentile": 1.5}),
            "metrics[1].capping.percentile",
            "less than 1",
        ),
        (
            lambda r: r["metrics"][4].update(source="payments"),
            "metrics[4].source",
            "unknown source 'payments'",
        ),
        (lambda r: r["metrics"][0].update(colour="red"), "metrics[0].colour", "unknown key"),
        (lambda r: r.update(control="treatment"), "control", "not one of the variants"),
        (lambda r: r["variants"].append({"name": "control"}), "variants", "unique"),
        (lambda r: r["variants"][1].update(weight=-1), "variants[1].weight", "greater than 0"),
        (lambda r: r.update(variants=[{"name": "control"}]), "variants", "at least 2"),
        (lambda r: r["analysis"].update(alpha=2), "analysis.alpha", "less than 1"),
        (lambda r: r["analysis"].update(method="magic"), "analysis.method", "sequential"),
        (lambda r: r.pop("assignment"), "assignment", "required"),
        (lambda r: r["assignment"].update(sql="SELECT 1"), "assignment", "exactly one of"),
        (lambda r: r["metrics"].append(dict(r["metrics"][0])), "metrics", "duplicate"),
        (lambda r: r["dimensions"][1].pop("column"), "dimensions[1].column", "required"),
    ],
)
def test_errors_name_the_config_path(mutate: Any, path: str, fragment: str) -> None:
    raw = demo_config()
    mutate(raw)
    err = _err(raw)
    assert err.field == path, str(err)
    assert fragment in err.message, str(err)


@pytest.mark.parametrize(
    ("where", "value"),
    [
        ("table", 'orders"; DROP TABLE users; --'),
        ("table", "orders; DELETE FROM users"),
        ("table", "orders -- comment"),
        ("table", "orders /* x */"),
        ("table", "a.b.c.d"),
        ("table", "my table"),
        ("unit", 'unit_id"'),
        ("unit", "unit_id; drop"),
        ("timestamp", "ts--"),
        ("timestamp", "`ts`"),
    ],
)
def test_identifiers_with_quotes_semicolons_or_comments_are_rejected(where: str, value: str) -> None:
    raw = demo_config()
    raw["sources"]["orders"][where] = value
    err = _err(raw)
    assert err.field == f"sources.orders.{where}"
    assert "plain" in err.message


def test_assignment_variant_column_is_checked() -> None:
    raw = demo_config()
    raw["assignment"]["variant"] = "variant'--"
    assert _err(raw).field == "assignment.variant"


def test_yaml_errors_and_missing_files(tmp_path: Path) -> None:
    assert "not valid YAML" in _err("id: [unclosed\nmetrics: x\n").message
    err = _err(tmp_path / "nope.yaml")
    assert err.field == "config" and "not found" in err.message
    assert _err("- just\n- a list\n").message == "expected a mapping at the top level"


def test_durations() -> None:
    assert parse_duration_hours("7d") == 168
    assert parse_duration_hours("36h") == 36
    assert parse_duration_hours("90m") == 1.5
    assert parse_duration_hours(12) == 12
    for bad in ("0d", "-1h", "1w", "", True):
        with pytest.raises(ValueError):
            parse_duration_hours(bad)
