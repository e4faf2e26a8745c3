"""Shared by the experiment entry-point tests of the core, Airflow and Prefect suites (issue 12: one
config loader): the bundled checkout demo config with lifecycle sections next to its experiment keys,
and the comparison of two analyses of it.

``tests/`` is on ``sys.path`` (its conftest), so every suite imports it as ``from
experiment_entry_support import ...``.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
import yaml

#: the bundled checkout demo config
CHECKOUT_DEMO = str(files("dataeng_agents.core.examples") / "experiments" / "checkout_demo.yaml")

#: Valid lifecycle sections for the checkout demo (its variants and metrics), as YAML text.
LIFECYCLE_SECTIONS = """
hypothesis:
  change: One-click checkout and recommendations
  because: Fewer steps to pay
  direction: increase
  primary_metric: conversion
  guardrails: [page_latency]
  mde: 0.05
  duration_days: 14
tracking:
  events:
    - name: checkout_started
      table: sessions
      unit_column: unit_id
      timestamp_column: started_at
rollout:
  treatment: one_click
  stages: [{percent: 10, min_duration: 24h}, {percent: 100, min_duration: 24h}]
  guardrails: [{metric: page_latency, tolerance: 0.05}]
"""


def lifecycle_sections() -> dict[str, Any]:
    """:data:`LIFECYCLE_SECTIONS` as a fresh dict."""
    sections: dict[str, Any] = yaml.safe_load(LIFECYCLE_SECTIONS)
    return sections


def lifecycle_demo_raw(warehouse: str | None = None) -> dict[str, Any]:
    """The checkout demo config plus the lifecycle sections, its ``warehouse:`` replaced by
    ``warehouse`` (removed when ``None``)."""
    raw: dict[str, Any] = yaml.safe_load(Path(CHECKOUT_DEMO).read_text(encoding="utf-8"))
    raw.pop("warehouse", None)
    if warehouse is not None:
        raw["warehouse"] = warehouse
    raw.update(lifecycle_sections())
    return raw


def assert_same_results(got: Any, expected: Any) -> None:
    """Same rows and numbers (to rounding: DuckDB's parallel sums add in a varying order)."""
    assert [r.id for r in got.results] == [r.id for r in expected.results]
    for g, e in zip(got.results, expected.results, strict=True):
        for field in ("estimate", "ci_lower", "ci_upper", "p_value"):
            want = getattr(e, field)
            assert getattr(g, field) == (None if want is None else pytest.approx(want, rel=1e-9, abs=1e-12))
    assert got.decision.verdict == expected.decision.verdict
