"""The bundled checkout demo config with lifecycle sections next to its experiment keys: shared by the
experiment entry-point tests of the core, Airflow and Prefect suites (issue 12: one config loader).

``tests/`` is on ``sys.path`` (its conftest), so every suite imports it as ``from lifecycle_sections
import ...``.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

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
