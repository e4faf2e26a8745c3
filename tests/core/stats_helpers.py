"""Helpers of the statistics tests: the reference numbers, the CLI runner, raw-row aggregation."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from dataeng_agents.core.cli import app
from typer.testing import CliRunner

# gbstats and spotify-confidence values in the `dataeng stats` contract (provenance in its "about"),
# kept in the repository so a clone runs every test
REFERENCE_FILE = Path(__file__).resolve().parents[1] / "data" / "stats_reference.json"


def load_reference() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(REFERENCE_FILE.read_text(encoding="utf-8"))
    return data


def run_cli(
    tmp_path: Path, command: str, payload: Any, *, raw_text: str | None = None
) -> tuple[int, str, str]:
    """Run ``dataeng stats COMMAND FILE`` in-process; returns (exit code, stdout, stderr)."""
    path = tmp_path / f"{command}_input.json"
    path.write_text(raw_text if raw_text is not None else json.dumps(payload))
    result = CliRunner().invoke(app, ["stats", command, str(path)])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def assert_close(got: Any, expected: Any, rel: float = 1e-6, path: str = "") -> None:
    """Recursive comparison: numbers to relative ``rel``, None must be None, keys of ``expected`` only."""
    if expected is None:
        assert got is None, f"{path}: expected null, got {got!r}"
    elif isinstance(expected, dict):
        assert isinstance(got, dict), f"{path}: expected an object, got {got!r}"
        for k, v in expected.items():
            assert k in got, f"{path}.{k} missing"
            assert_close(got[k], v, rel, f"{path}.{k}")
    elif isinstance(expected, list):
        assert isinstance(got, list) and len(got) == len(expected), f"{path}: {got!r} vs {expected!r}"
        for i, (g, e) in enumerate(zip(got, expected, strict=True)):
            assert_close(g, e, rel, f"{path}[{i}]")
    elif isinstance(expected, float | int) and not isinstance(expected, bool):
        assert isinstance(got, float | int) and not isinstance(got, bool), f"{path}: {got!r}"
        assert math.isclose(got, expected, rel_tol=rel, abs_tol=1e-300), f"{path}: {got!r} != {expected!r}"
    else:
        assert got == expected, f"{path}: {got!r} != {expected!r}"


def mean_stats(y: npt.NDArray[np.float64], x: npt.NDArray[np.float64] | None = None) -> dict[str, float]:
    """Sufficient statistics of raw per-unit values (and an optional covariate)."""
    out = {"n": float(y.size), "sum": float(y.sum()), "sum_squares": float((y * y).sum())}
    if x is not None:
        out |= {
            "covariate_sum": float(x.sum()),
            "covariate_sum_squares": float((x * x).sum()),
            "sum_product_covariate": float((x * y).sum()),
        }
    return out


def ratio_stats(y: npt.NDArray[np.float64], d: npt.NDArray[np.float64]) -> dict[str, float]:
    return {
        "n": float(y.size),
        "sum": float(y.sum()),
        "sum_squares": float((y * y).sum()),
        "denominator_sum": float(d.sum()),
        "denominator_sum_squares": float((d * d).sum()),
        "sum_product_denominator": float((y * d).sum()),
    }


def two_arm(
    kind: str, control: Mapping[str, float], treatment: Mapping[str, float], **settings: Any
) -> dict[str, Any]:
    return {
        "control": "control",
        "variants": [{"name": "control"}, {"name": "treatment"}],
        "settings": settings,
        "metrics": [{"name": "m", "kind": kind, "stats": {"control": control, "treatment": treatment}}],
    }
