"""One review-config path and one renderer for every entry point (core, CLI); the Airflow and
Prefect suites check their adapters against the same project (issue 12's drift bugs)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from dataeng_agents.core.commands.data_pipeline import narrate_review, render_review, review_paths
from dataeng_agents.core.errors import ConfigError
from dataeng_agents.core.review import Severity, load_config, resolve_config
from review_project import make_project
from typer.testing import CliRunner


def test_resolve_config_profile_precedence(tmp_path: Path) -> None:
    dags = make_project(tmp_path)
    found = resolve_config(search_from=dags)
    assert found.profile == "strict" and found.severity_of("REL003").value == "error"
    # an explicit profile wins over the file's, the file's other settings stay
    assert resolve_config(search_from=dags, profile="examples").profile == "examples"
    assert resolve_config(tmp_path / "pyproject.toml").profile == "strict"
    assert resolve_config({"profile": "strict"}).profile == "strict"
    assert resolve_config({}, profile=None).profile == "default"
    given = load_config(profile="strict")
    assert resolve_config(given) is given
    assert resolve_config(given, profile="default").profile == "default"
    with pytest.raises(ConfigError) as exc:
        resolve_config(profile="lenient")
    assert exc.value.field == "profile"


def test_review_paths_and_cli_read_the_project_config(tmp_path: Path) -> None:
    from dataeng_agents.core.cli import app

    dags = make_project(tmp_path)
    direct = review_paths([str(dags)])
    assert direct.profile == "strict"
    assert {f.severity.value for f in direct.findings if f.rule_id == "REL003"} == {"error"}

    res = CliRunner().invoke(app, ["review", str(dags), "--format", "json", "--fail-on", "never"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["profile"] == "strict"
    assert sorted((f["id"], f["severity"]) for f in doc["findings"]) == sorted(
        (f.id, f.severity.value) for f in direct.findings
    )


def test_cli_explain_markdown_is_the_core_renderer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dataeng_agents.core.cli import app

    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    dags = make_project(tmp_path)
    res = CliRunner().invoke(app, ["review", str(dags), "--explain", "-f", "markdown", "--fail-on", "never"])
    assert res.exit_code == 0, res.output
    result = review_paths([str(dags)])
    expected = render_review(result, narrate_review(result), "md")
    assert res.output.strip() == expected.strip()
    assert "## Advice" in expected and "Advice written by" in expected
    # without --explain: the findings only, as the core renders them
    plain = CliRunner().invoke(app, ["review", str(dags), "-f", "markdown", "--fail-on", "never"])
    assert plain.output.strip() == render_review(result, None, "md").strip()
    assert "## Advice" not in plain.output


def test_review_models_allow_copy_and_assignment(tmp_path: Path) -> None:
    """Findings are ordinary dataclasses and file reports ordinary pydantic models (no slot bypass)."""
    dags = make_project(tmp_path)
    result = review_paths([str(dags)])
    finding, report = result.findings[0], result.files[0]
    copied = dataclasses.replace(finding, message="changed")
    assert copied.message == "changed" and copied.id == finding.id and finding.message != "changed"
    finding.line = 99
    assert finding.line == 99 and dataclasses.asdict(finding)["line"] == 99
    report.error = "x"
    assert report.model_copy(update={"tasks": 7}).tasks == 7
    assert result.model_copy(update={"profile": "default"}).profile == "default"
    # round trip through JSON stays equal
    back = type(result).model_validate_json(result.to_json())
    assert back.findings[0].line == 99 and back.findings[0] == finding
    assert isinstance(back.findings[0].severity, Severity)
