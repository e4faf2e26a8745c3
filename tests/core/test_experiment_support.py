"""Shared helpers of the experiment/warehouse/report tests (no tests in this module).

Imported by plain name (``from test_experiment_support import ...``) like ``stats_helpers``.
"""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from dataeng_agents.core.warehouse.sample_data import SampleExperiment, generate

REPO = Path(__file__).resolve().parents[2]
DEMO_YAML = REPO / "core" / "examples" / "experiments" / "checkout_demo.yaml"


@cache
def _demo_raw() -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load(DEMO_YAML.read_text(encoding="utf-8"))
    raw.pop("warehouse", None)
    return raw


def demo_config(schema: str | None = None, **overrides: Any) -> dict[str, Any]:
    """The bundled demo config as a dict, tables optionally qualified with ``schema``."""
    raw = copy.deepcopy(_demo_raw())
    if schema:
        raw["assignment"]["table"] = f"{schema}.exposures"
        for src in raw["sources"].values():
            src["table"] = f"{schema}.{src['table']}"
        if raw.get("design", {}).get("population"):
            raw["design"]["population"]["table"] = f"{schema}.sessions"
    raw.update(overrides)
    return raw


def planted_config(schema: str | None = None) -> dict[str, Any]:
    """Demo config whose revenue is uncapped, so its true lift is exactly the planted one."""
    raw = demo_config(schema)
    for m in raw["metrics"]:
        if m["name"] == "revenue":
            m.pop("capping", None)
    return raw


_CACHE: dict[tuple[int, int, bool], SampleExperiment] = {}


def sample(tmp_root: Path, *, users: int, seed: int, aa: bool = False) -> SampleExperiment:
    """Generate (once per session and parameter set) a sample experiment under ``tmp_root``."""
    key = (users, seed, aa)
    if key not in _CACHE:
        from dataeng_agents.core.warehouse.sample_data import DEFAULT_EFFECTS, aa_effects

        effects = aa_effects(tuple(DEFAULT_EFFECTS)) if aa else DEFAULT_EFFECTS
        path = tmp_root / f"sample_{users}_{seed}_{int(aa)}.duckdb"
        _CACHE[key] = generate(path, users=users, seed=seed, effects=effects)
    return _CACHE[key]
