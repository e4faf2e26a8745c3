"""Every case of tests/data/stats_reference.json (gbstats, spotify-confidence) through the CLI, to 1e-6."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from stats_helpers import assert_close, load_reference, run_cli

REFERENCE = load_reference()


def _ids(cases: list[dict[str, Any]]) -> list[str]:
    return [c["id"] for c in cases]


def _gbstats_convention(inp: dict[str, Any]) -> dict[str, Any]:
    """The input with gbstats' relative interval (linear delta method) selected.

    The default relative interval is on the log ratio (it cannot cross -100%); gbstats' numbers are
    reproduced with ``relative_method: delta``.
    """
    return {**inp, "settings": {**inp.get("settings", {}), "relative_method": "delta"}}


@pytest.mark.parametrize("case", REFERENCE["analyze_cases"], ids=_ids(REFERENCE["analyze_cases"]))
def test_analyze_reference_case(case: dict[str, Any], tmp_path: Path) -> None:
    code, out, err = run_cli(tmp_path, "analyze", _gbstats_convention(case["input"]))
    assert code == 0, err
    results = json.loads(out)["results"]
    assert len(results) == len(case["expected"])
    for got, expected in zip(results, case["expected"], strict=True):
        assert got["error"] is None
        assert_close(got, expected, rel=1e-6, path=case["id"])
        # Bayesian results carry no p-value; frequentist/sequential carry no chance to win.
        if case["input"]["settings"]["method"] == "bayesian":
            assert got["p_value"] is None
        else:
            assert got["chance_to_win"] is None and got["risk"] is None


@pytest.mark.parametrize("case", REFERENCE["power_cases"], ids=_ids(REFERENCE["power_cases"]))
def test_power_reference_case(case: dict[str, Any], tmp_path: Path) -> None:
    code, out, err = run_cli(tmp_path, "power", case["input"])
    assert code == 0, err
    assert json.loads(out) == case["expected"]


@pytest.mark.parametrize("case", REFERENCE["srm_cases"], ids=_ids(REFERENCE["srm_cases"]))
def test_srm_reference_case(case: dict[str, Any], tmp_path: Path) -> None:
    names = [f"v{i}" for i in range(len(case["units"]))]
    payload = {
        "control": names[0],
        "variants": [
            {"name": n, "units": u, "weight": w}
            for n, u, w in zip(names, case["units"], case["weights"], strict=True)
        ],
        "metrics": [],
    }
    code, out, err = run_cli(tmp_path, "analyze", payload)
    assert code == 0, err
    srm = json.loads(out)["srm"]
    assert_close(srm["p_value"], case["p_value"], rel=1e-6)
    assert srm["mismatch"] is (case["p_value"] < 0.001)


def test_real_console_script_runs_a_reference_case(tmp_path: Path) -> None:
    """One real subprocess of the installed ``dataeng`` script (the CliRunner tests run in-process)."""
    case = REFERENCE["analyze_cases"][0]
    path = tmp_path / "in.json"
    path.write_text(json.dumps(_gbstats_convention(case["input"])))
    exe = Path(sys.executable).with_name("dataeng")
    proc = subprocess.run(
        [str(exe), "stats", "analyze", str(path)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert_close(json.loads(proc.stdout)["results"][0], case["expected"][0])
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**case["input"], "control": "nope"}))
    proc = subprocess.run(
        [str(exe), "stats", "analyze", str(bad)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1 and "control" in proc.stderr


def test_bundled_example_runs(tmp_path: Path) -> None:
    from importlib.resources import files

    text = files("dataeng_agents.core.examples").joinpath("stats_analyze_example.json").read_text()
    code, out, err = run_cli(tmp_path, "analyze", None, raw_text=text)
    assert code == 0, err
    data = json.loads(out)
    assert data["srm"] is not None and len(data["results"]) == 4
    assert all(r["error"] is None and r["adjusted_p_value"] >= r["p_value"] for r in data["results"])
