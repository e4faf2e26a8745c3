"""`dataeng experiment explore | hypothesis | tracking-plan | rollout-check | lifecycle-demo`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dataeng_agents.core.cli import app
from typer.testing import CliRunner


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "demo"
    result = CliRunner().invoke(app, ["experiment", "lifecycle-demo", str(out), "--seed", "4"])
    assert result.exit_code == 0, result.output
    return out


def test_explore_and_hypothesis(demo: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["experiment", "explore", str(demo / "lifecycle.yaml"), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert {m["metric"] for m in data["metrics"]} == {"engagement_minutes", "conversion", "revenue"}
    res = runner.invoke(
        app, ["experiment", "hypothesis", str(demo / "lifecycle.yaml"), "--out", str(tmp_path / "o")]
    )
    assert res.exit_code == 0, res.output
    assert "# Hypothesis and plan" in res.stdout and (tmp_path / "o" / "hypothesis.md").exists()


def test_tracking_plan_and_check_exit_codes(demo: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["experiment", "tracking-plan", str(demo / "lifecycle.yaml")])
    assert res.exit_code == 0
    assert json.loads(res.stdout)["$schema"].endswith("2020-12/schema")
    res = runner.invoke(app, ["experiment", "tracking-plan", str(demo / "lifecycle.yaml"), "--check"])
    assert res.exit_code == 1  # the demo's treatment drops checkout_started.price
    assert "missing_property:price" in res.stdout


def test_rollout_check_writes_the_decision(demo: Path) -> None:
    import duckdb

    runner = CliRunner()
    flags = demo / "flags.duckdb"
    args = [
        "experiment",
        "rollout-check",
        str(demo / "rollout.yaml"),
        "--stage",
        "3",
        "--now",
        "2025-03-05T14:00",
    ]
    res = runner.invoke(app, [*args, "--decisions-db", f"duckdb:///{flags}", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["decision"] == "roll back"
    res = runner.invoke(app, [*args, "--fail-on-rollback"])
    assert res.exit_code == 1
    assert duckdb.connect(str(flags)).execute("SELECT decision FROM rollout_decisions").fetchall() == [
        ("roll back",)
    ]


def test_rollout_check_runs_unattended_from_its_history(demo: Path, tmp_path: Path) -> None:
    """No --stage: each run takes the live stage and the stage starts from the decisions table."""
    runner = CliRunner()
    db = f"duckdb:///{tmp_path / 'history.duckdb'}"
    seen = []
    for now in ("2025-03-04T00:00", "2025-03-05T00:00", "2025-03-05T14:00"):
        res = runner.invoke(
            app,
            [
                "experiment",
                "rollout-check",
                str(demo / "rollout.yaml"),
                "--now",
                now,
                "--decisions-db",
                db,
                "--json",
            ],
        )
        assert res.exit_code == 0, res.output
        d = json.loads(res.stdout)
        seen.append((d["stage"], d["decision"], d["flag_percent"]))
    # the demo's flag moved at 24 h and 48 h, as the advances recorded; conversion is harmed by 30%
    assert seen == [(1, "advance", 5.0), (2, "advance", 20.0), (3, "roll back", 0.0)]
    res = runner.invoke(
        app,
        [
            "experiment",
            "rollout-check",
            str(demo / "rollout.yaml"),
            "--now",
            "2025-03-05T15:00",
            "--decisions-db",
            db,
        ],
    )
    assert res.exit_code == 2 and "was rolled back at stage 3" in res.output
    res = runner.invoke(app, ["experiment", "rollout-check", str(demo / "rollout.yaml")])
    assert res.exit_code == 2 and "--decisions-db" in res.output


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--stage", "7"], "stage: stage must be between 1 and 5"),
        (["--stage", "1", "--now", "yesterday"], "now: 'yesterday' is not an ISO datetime"),
        (["--stage", "1", "--decisions-db", "mysql://x"], "decisions_db"),
    ],
)
def test_rollout_check_errors_are_one_line(demo: Path, args: list[str], needle: str) -> None:
    res = CliRunner().invoke(app, ["experiment", "rollout-check", str(demo / "rollout.yaml"), *args])
    assert res.exit_code == 2
    assert needle in res.output and "Traceback" not in res.output


def test_analyze_and_design_accept_the_lifecycle_yaml(demo: Path, tmp_path: Path) -> None:
    """One YAML serves the whole lifecycle: the final analysis and the design read it as is."""
    runner = CliRunner()
    res = runner.invoke(
        app, ["experiment", "analyze", str(demo / "lifecycle.yaml"), "--out", str(tmp_path / "report")]
    )
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["results"], "the analysis of the lifecycle YAML produced no results"
    res = runner.invoke(app, ["experiment", "design", str(demo / "lifecycle.yaml")])
    assert res.exit_code == 0, res.output
    assert "# Experiment design" in res.stdout
