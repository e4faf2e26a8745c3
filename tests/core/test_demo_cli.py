"""`dataeng demo` and `dataeng experiment analyze|design` as a user runs them (real subprocesses)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_experiment_support import demo_config, sample

DATAENG = str(Path(sys.executable).parent / "dataeng")


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(cwd or Path.cwd()),
        "MPLBACKEND": "Agg",
        "DATAENG_NARRATOR": "template",
    }
    return subprocess.run(
        [DATAENG, *args], capture_output=True, text=True, timeout=300, cwd=cwd, env=env, check=False
    )


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr and lines[0].startswith("error: ")
    return lines[0]


def test_demo_generates_analyses_and_writes_the_report(tmp_path: Path) -> None:
    proc = run("demo", "--out", str(tmp_path / "demo"), "--users", "30000", "--seed", "3", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["experiment_id"] == "checkout-2024-03"
    assert out["verdict"] in ("ship", "do not ship", "keep running", "investigate")
    assert Path(out["warehouse"]).name == "demo.duckdb"
    assert sorted(Path(p).name for p in out["files"].values()) == ["report.html", "report.json", "report.md"]
    html = (tmp_path / "demo" / "report" / "report.html").read_text()
    assert html.count("<svg") == 3
    assert out["seconds"] < 120
    # the default demo: the planted winner ships, the latency regression is caught
    full = run("demo", "--out", str(tmp_path / "full"))
    assert full.returncode == 0, full.stderr
    assert "SHIP one_click" in full.stdout and "recommendations: do not ship" in full.stdout
    assert (tmp_path / "full" / "report" / "report.md").exists()


def test_demo_default_output_paths(tmp_path: Path) -> None:
    proc = run("demo", "--users", "5000", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "dataeng-demo" / "demo.duckdb").exists()
    assert (tmp_path / "dataeng-demo" / "report" / "report.html").exists()
    assert one_error_line(run("demo", "--users", "10", cwd=tmp_path)).startswith("error: --users")


def _config_file(tmp_path: Path, raw: dict[str, object]) -> Path:
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def test_experiment_analyze_and_design(tmp_path: Path) -> None:
    s = sample(tmp_path, users=20_000, seed=9)
    url = f"duckdb:///{s.path}"  # absolute path: four slashes
    cfg = _config_file(tmp_path, demo_config())
    out = tmp_path / "out"
    proc = run(
        "experiment", "analyze", str(cfg), "--warehouse", url, "--out", str(out), "--json", "--no-progress"
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["units"]["control"] > 5000 and set(summary["files"]) == {"json", "md", "html"}
    # the warehouse can come from the config, relative to the config file
    raw = demo_config(warehouse=f"duckdb:///{Path(s.path).name}")
    (tmp_path / "rel").mkdir()
    rel_cfg = tmp_path / "rel" / "exp.yaml"
    rel_cfg.write_text(yaml.safe_dump(raw))
    Path(s.path).rename(tmp_path / "rel" / Path(s.path).name)
    proc = run(
        "experiment",
        "analyze",
        str(rel_cfg),
        "--format",
        "md",
        "--start",
        "2024-03-01",
        "--end",
        "2024-03-08",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "dataeng-reports" / "checkout-2024-03" / "report.md").exists()
    proc = run("experiment", "design", str(rel_cfg))
    assert proc.returncode == 0, proc.stderr
    assert "## Metric plan" in proc.stdout and "units/day" in proc.stdout


@pytest.mark.parametrize(
    ("mutate", "warehouse", "expected"),
    [
        (
            lambda r: r["metrics"][2].update(window="a week"),
            None,
            "error: metrics[2].window: 'a week' is not a duration",
        ),
        (
            lambda r: r["sources"]["orders"].update(table="orders; DROP TABLE users"),
            None,
            "error: sources.orders.table:",
        ),
        (lambda r: r["sources"]["sessions"].update(table="pageviews"), None, "pageviews does not exist"),
        (
            lambda r: r["variants"].append({"name": "ghost"}),
            None,
            "error: variants[3]: variant 'ghost' has no exposed units",
        ),
        (
            lambda r: r.update(start="2023-01-01", end="2023-02-01"),
            None,
            "error: assignment: experiment 'checkout-2024-03' has no exposures",
        ),
        (lambda r: None, "duckdb:////nowhere/none.duckdb", "error: duckdb: database file not found"),
        (lambda r: None, "postgresql://nobody@127.0.0.1:1/x", "error: postgres: cannot connect"),
    ],
)
def test_errors_are_one_line_exit_2_and_nothing_is_written(
    tmp_path: Path, mutate: object, warehouse: str | None, expected: str
) -> None:
    s = sample(tmp_path, users=3000, seed=10)
    raw = demo_config(warehouse=f"duckdb:///{s.path}")
    mutate(raw)  # type: ignore[operator]
    cfg = _config_file(tmp_path, raw)
    out = tmp_path / "out"
    args = ["experiment", "analyze", str(cfg), "--out", str(out), "--no-progress"]
    if warehouse:
        args += ["--warehouse", warehouse]
    line = one_error_line(run(*args))
    assert expected in line, line
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("sample_")) == [
        "experiment.yaml"
    ]


def test_bad_cli_input(tmp_path: Path) -> None:
    assert "not found" in one_error_line(run("experiment", "analyze", str(tmp_path / "missing.yaml")))
    (tmp_path / "bad.yaml").write_text("id: [oops\n")
    assert "not valid YAML" in one_error_line(run("experiment", "analyze", str(tmp_path / "bad.yaml")))
    cfg = _config_file(tmp_path, demo_config())
    assert "--format" in one_error_line(run("experiment", "analyze", str(cfg), "--format", "pdf"))
    assert "--start" in one_error_line(
        run("experiment", "analyze", str(cfg), "--start", "yesterday", "--end", "2024-01-01")
    )
    assert "warehouse" in one_error_line(run("experiment", "analyze", str(cfg)))
