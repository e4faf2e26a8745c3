"""The scaffold's Prefect flow, for each architecture and the two example requests, runs in the
Prefect test harness: extract-load, dbt build (the dbt CLI: prefect-dbt is not installed here) and
the checks, against DuckDB; a failing check fails the flow run."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from scaffold_support import ALL_KEYS, build, isolated_pipeline


@pytest.fixture
def isolated() -> Iterator[None]:
    with isolated_pipeline(("scaffold_flow_",)):
        yield


def _flow(out: Path, name: str) -> Any:
    path = out / "flows" / f"{name}_flow.py"
    spec = importlib.util.spec_from_file_location(f"scaffold_flow_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return getattr(module, f"{name}_flow")


@pytest.mark.parametrize("key", ALL_KEYS)
def test_scaffold_flow_runs(key: str, tmp_path: Path, prefect_server: str, isolated: None) -> None:
    built = build(key, tmp_path)
    flow = _flow(tmp_path, built.project.name)
    result = flow(start=built.start, end=built.end)
    cfg = built.module("pipeline_config")
    assert set(result["loaded"]) == set(cfg.SOURCES) and all(v > 0 for v in result["loaded"].values())
    assert set(result["checks"]) == set(cfg.SINKS)
    assert all(c["row_count"] > 0 for c in result["checks"].values())
    if key == "iot_kappa":
        # an interval with no data fails its row-count check, and so the flow run
        module: Any = sys.modules[f"scaffold_flow_{built.project.name}"]
        module.check_sink = module.check_sink.with_options(retries=0)  # fail now, not after the retry delay
        state = flow.with_options(retries=0)(
            start=built.end, end=built.end + (built.end - built.start), return_state=True
        )
        assert state.is_failed()
