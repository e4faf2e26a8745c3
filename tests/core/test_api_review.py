"""API review engine: suppressions, config, profiles, bad input, renderers, narration, the CLI; the designer."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from dataeng_agents.core.api import (
    API_RULES,
    design_serving_api,
    load_api_config,
    narrate_api_review,
    narrate_serving_design,
    parse_document,
    review_api_paths,
    write_api_review,
)
from dataeng_agents.core.api.loader import OpenApiDocument, openapi_validation_errors
from dataeng_agents.core.cli import app
from dataeng_agents.core.errors import ConfigError
from typer.testing import CliRunner

FIXTURES = Path(__file__).parent / "api_fixtures"
MUSEUM = Path(__file__).parent / "api_specs" / "museum"
SPECS = sorted((Path(__file__).parents[2] / "core" / "examples" / "specs").glob("*.yaml"))


def test_museum_review_findings_point_at_real_lines() -> None:
    result = review_api_paths([MUSEUM / "museum-1.2.1.yaml"])
    assert result.files[0].status == "reviewed" and result.files[0].operations == 8
    lines = (MUSEUM / "museum-1.2.1.yaml").read_text().splitlines()
    for f in result.findings:
        if f.rule_id == "OAS007":
            assert lines[f.line - 1].strip() == "post:"
    rules = {f.rule_id for f in result.findings}
    assert {"OAS003", "OAS007", "OAS008"} <= rules
    assert "OAS004" not in rules  # the museum answers errors with application/problem+json


def test_inline_and_file_suppressions(tmp_path: Path) -> None:
    text = (FIXTURES / "OAS019.bad.yaml").read_text()
    marked = text.replace(
        "  /get-orders/{order_id}:\n", "  /get-orders/{order_id}:  # dataeng: ignore[OAS019]\n"
    )
    p = tmp_path / "api.yaml"
    p.write_text(marked)
    r = review_api_paths([p], profile="strict")
    assert "OAS019" not in {f.rule_id for f in r.findings} and r.suppressed == 1
    p.write_text("# dataeng: ignore-file[OAS019,OAS013]\n" + text)
    r = review_api_paths([p], profile="strict")
    assert not {"OAS019", "OAS013"} & {f.rule_id for f in r.findings}
    proto = tmp_path / "x.proto"
    proto.write_text(
        (FIXTURES / "PB005.bad.proto")
        .read_text()
        .replace("package acme.orders;", "// dataeng: ignore[PB005]\npackage acme.orders;")
    )
    assert "PB005" not in {f.rule_id for f in review_api_paths([proto]).findings}


def test_config_from_pyproject_and_exceptions_file(tmp_path: Path) -> None:
    (tmp_path / "api-exceptions.txt").write_text("legacy/*.yaml OAS019\n")
    (tmp_path / "pyproject.toml").write_text(
        '[tool.dataeng.api]\nprofile = "strict"\nexceptions_file = "api-exceptions.txt"\n'
        '[tool.dataeng.api.severity]\nOAS003 = "error"\nOAS013 = "off"\n'
    )
    (tmp_path / "legacy").mkdir()
    (tmp_path / "legacy" / "a.yaml").write_text((FIXTURES / "OAS019.bad.yaml").read_text())
    cfg = load_api_config(search_from=tmp_path / "legacy" / "a.yaml")
    assert cfg.profile == "strict" and cfg.severity_of("OAS003").value == "error"
    r = review_api_paths([tmp_path / "legacy"], config=cfg)
    rules = {f.rule_id for f in r.findings}
    assert "OAS019" not in rules and "OAS013" not in rules and r.suppressed >= 1
    with pytest.raises(ConfigError, match=r"severity\.NOPE"):
        load_api_config(overrides={"severity": {"NOPE": "off"}})
    (tmp_path / "bad.toml").write_text('[tool.dataeng.api]\nprofile = "loose"\n')
    with pytest.raises(ConfigError, match="profile"):
        load_api_config(pyproject=tmp_path / "bad.toml")


def test_profiles_change_severity() -> None:
    path = FIXTURES / "OAS016.bad.yaml"
    default = review_api_paths([path])
    strict = review_api_paths([path], profile="strict")
    examples = review_api_paths([path], profile="examples")
    assert {f.severity.value for f in default.findings if f.rule_id == "OAS016"} == {"info"}
    assert {f.severity.value for f in strict.findings if f.rule_id == "OAS016"} == {"warn"}
    assert "OAS016" not in {f.rule_id for f in examples.findings}  # production-only rule
    assert strict.exit_code("warn") == 1 and default.exit_code("error") == 0


def test_bad_input_is_a_file_error_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("openapi: 3.1.0\npaths: [\n")
    (tmp_path / "swagger.json").write_text('{"swagger": "2.0", "info": {}}')
    (tmp_path / "broken.proto").write_text("message { int32 = ; }")
    (tmp_path / "broken.graphql").write_text("type Query { a: }")
    r = review_api_paths(
        [tmp_path / n for n in ("broken.yaml", "swagger.json", "broken.proto", "broken.graphql")]
        + [tmp_path / "missing.yaml"]
    )
    errors = {Path(f.path).name: f.error for f in r.files}
    assert all(f.status == "error" for f in r.files)
    assert (
        "line" in str(errors["broken.yaml"])
        or ":2" in str(errors["broken.yaml"])
        or ":3" in str(errors["broken.yaml"])
    )
    assert "Swagger 2.0" in str(errors["swagger.json"])
    assert "broken.proto:1" in str(errors["broken.proto"])
    assert "broken.graphql:1" in str(errors["broken.graphql"])
    assert errors["missing.yaml"] == "file not found"
    assert r.exit_code("never") == 0 and r.exit_code("error") == 1
    # the pipeline review's exit_code: a fail_on that is no severity is refused before the files decide
    with pytest.raises(ValueError, match="'bogus' is not a valid Severity"):
        r.exit_code("bogus")  # type: ignore[arg-type]


def test_walked_folder_skips_non_contract_yaml(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("name: not an api  # documented in openapi.yaml\n")
    (tmp_path / "api.yaml").write_text((FIXTURES / "OAS002.good.yaml").read_text())
    (tmp_path / "schema.graphql").write_text((FIXTURES / "GQL001.good.graphql").read_text())
    (tmp_path / "openapi.yaml").write_text("openapi: 3.1.0\npaths: [\n")  # a broken contract is reported
    r = review_api_paths([tmp_path])
    assert sorted(Path(f.path).name for f in r.files) == ["api.yaml", "openapi.yaml", "schema.graphql"]
    assert [Path(f.path).name for f in r.files if f.status == "error"] == ["openapi.yaml"]
    named = review_api_paths([tmp_path / "config.yaml"])  # named explicitly: an error, not a skip
    assert named.files[0].status == "error" and "not an OpenAPI" in str(named.files[0].error)


def test_renderers_and_report_files(tmp_path: Path) -> None:
    r = review_api_paths([MUSEUM / "museum-1.2.1.yaml", FIXTURES / "PB001.bad.proto"], profile="strict")
    sarif = r.to_sarif()
    run = sarif["runs"][0]
    assert run["tool"]["driver"]["name"] == "dataeng-api-review"
    assert {x["id"] for x in run["tool"]["driver"]["rules"]} == {f.rule_id for f in r.findings}
    assert len(run["results"]) == len(r.findings)
    md = r.to_markdown()
    assert "# API contract review" in md and "PB001" in md
    advice = narrate_api_review(r)
    ids = {f.id for f in r.findings}
    assert all(set(p.finding_ids) <= ids for p in advice.priorities)
    assert advice.priorities[0].finding_ids[0].startswith("PB001")  # the only error-level rule fired
    paths = write_api_review(r, advice, tmp_path / "out")
    assert sorted(Path(p).name for p in paths.values()) == [
        "api-review.html",
        "api-review.json",
        "api-review.md",
        "api-review.sarif",
    ]
    doc = json.loads(Path(paths["json"]).read_text())
    assert doc["advice"]["provenance"]["narrator"] == "template" and len(doc["findings"]) == len(r.findings)


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_designed_api_passes_strict_review_and_validator(spec: Path, tmp_path: Path) -> None:
    design = design_serving_api(spec)
    assert design.review_findings == 0, design.review_rules
    out = tmp_path / "serving.yaml"
    out.write_text(design.openapi_yaml())
    doc = parse_document(str(out), out.read_text())
    assert isinstance(doc, OpenApiDocument)
    assert list(openapi_validation_errors(doc)) == []
    # reviewed again from the written file, through the public entry point, at strict
    result = review_api_paths([out], profile="strict")
    assert result.findings == [] and result.files[0].operations >= len(design.resources)
    assert {n.area for n in design.notes} >= {"timeouts", "resilience", "slo", "observability"}


def test_design_sizes_follow_the_declared_volume() -> None:
    small = design_serving_api(SPECS[0].parent / "daily_sales_batch.yaml")
    big = design_serving_api(SPECS[0].parent / "events_lakehouse.yaml")
    assert big.resources[0].rows_per_day > small.resources[0].rows_per_day
    assert big.resources[0].rate_limit_per_minute > small.resources[0].rate_limit_per_minute
    # cache max-age follows the freshness SLO (1440 min -> clamp 3600 s; 60 min -> 900 s)
    assert small.resources[0].cache_max_age_seconds == 3600 and big.resources[0].cache_max_age_seconds == 900
    advice = narrate_serving_design(big)
    refs = {ref for p in [*advice.rationale, *advice.risks] for ref in p.refs}
    assert refs <= {r.id for r in big.resources} | {n.id for n in big.notes}


def test_design_rejects_a_bad_spec(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nsources: []\nsinks: []\nfreshness_slo_minutes: 5\n")
    with pytest.raises(ConfigError, match="sources"):
        design_serving_api(bad)
    res = CliRunner().invoke(app, ["api", "design", str(bad)])
    assert res.exit_code == 2


def test_cli_review_formats_and_gate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAENG_NARRATOR", "template")  # --explain below: never a real Claude call
    runner = CliRunner()
    bad = str(FIXTURES / "PB001.bad.proto")
    assert runner.invoke(app, ["api", "review", bad]).exit_code == 1
    assert runner.invoke(app, ["api", "review", bad, "--fail-on", "never"]).exit_code == 0
    res = runner.invoke(
        app, ["api", "review", str(FIXTURES / "OAS002.good.yaml"), "-f", "json", "--profile", "strict"]
    )
    assert res.exit_code == 0 and json.loads(res.output)["findings"] == []
    out = tmp_path / "r.sarif"
    res = runner.invoke(app, ["api", "review", bad, "-f", "sarif", "-o", str(out), "--explain"])
    assert res.exit_code == 1 and json.loads(out.read_text())["version"] == "2.1.0"
    res = runner.invoke(app, ["api", "design", str(SPECS[0]), "-f", "openapi"])
    assert res.exit_code == 0 and res.output.startswith("openapi: 3.1.0")
    res = runner.invoke(app, ["api", "rules", "--json"])
    assert len(json.loads(res.output)) == len(API_RULES)


HELDOUT = Path(__file__).parent / "api_specs" / "heldout"


def _subjects(result: object, rule: str) -> set[str]:
    return {f.subject for f in result.findings if f.rule_id == rule}  # type: ignore[attr-defined]


def test_stripe_session_filter_is_not_a_credential_but_client_secret_is() -> None:
    # Stripe's `session` query parameter filters accounts by a Financial Connections session, which
    # the same API serves at /v1/financial_connections/sessions/{session}; `client_secret` is a secret
    result = review_api_paths([HELDOUT / "stripe_v516_min.yaml"])
    assert _subjects(result, "OAS020") == {"GET /v1/payment_intents/{intent}"}


def test_list_endpoint_rule_skips_singletons_with_array_attributes() -> None:
    stripe = review_api_paths([HELDOUT / "stripe_v516_min.yaml"])
    assert _subjects(stripe, "OAS002") == {
        "GET /v1/financial_connections/accounts",
        "GET /v1/reporting/report_types",
    }
    hellosign = review_api_paths([HELDOUT / "hellosign_min.yaml"])
    assert _subjects(hellosign, "OAS002") == {"GET /team/invites"}


def test_operations_in_other_files_of_the_spec_are_reviewed(tmp_path: Path) -> None:
    """digitalocean/openapi: every operation is a `$ref` into resources/...; reviewing the root file
    reviewed 659 empty operations (no operationId, no responses). The operation is read from its file;
    the `$ref` itself is still an OAS001 error (an Operation Object has no `$ref`)."""
    shutil.copytree(HELDOUT / "digitalocean", tmp_path / "do")
    result = review_api_paths([tmp_path / "do" / "DigitalOcean-public.v2.yaml"], config={})
    rules = {f.rule_id for f in result.findings}
    assert "OAS017" not in rules  # the operationId is in resources/account/account_get.yml
    assert "OAS001" in rules
    assert result.files[0].operations == 1
    # a spec given as text alone (no folder to read from) keeps such references opaque
    doc = parse_document(
        "nowhere/spec.yaml", (HELDOUT / "digitalocean" / "DigitalOcean-public.v2.yaml").read_text()
    )
    assert isinstance(doc, OpenApiDocument)
    assert doc.resolve({"$ref": "resources/account/account_get.yml"}) == {
        "$ref": "resources/account/account_get.yml"
    }


def test_a_url_in_a_ref_is_never_fetched_and_does_not_stop_the_review(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """openapi-spec-validator's default handlers fetch any http(s) $ref: a contract under review in CI
    could make the runner call a cloud metadata address. The review reads local spec files only,
    and an unreadable reference is an OAS001 error instead of an exception that ended the run."""
    import socket

    def refuse(self: socket.socket, address: object) -> None:
        raise AssertionError(f"the review opened a connection to {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        """
openapi: 3.0.0
info: {title: t, version: "1"}
paths:
  /x:
    get:
      operationId: x
      summary: x
      responses:
        "200":
          description: ok
          content:
            application/json:
              schema: {$ref: "http://169.254.169.254/latest/meta-data/spec.yaml#/X"}
"""
    )
    result = review_api_paths([spec], config={})
    assert result.files[0].status == "reviewed"
    errors = [f.message for f in result.findings if f.rule_id == "OAS001"]
    assert len(errors) == 1 and "cannot resolve $ref http://169.254.169.254/" in errors[0]
    res = CliRunner().invoke(app, ["api", "review", str(spec), "-f", "json"])
    assert res.exit_code == 1 and "Unresolvable" not in res.output
