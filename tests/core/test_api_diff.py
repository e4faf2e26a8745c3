"""Breaking-change detection: real published OpenAPI versions, GraphQL, protobuf, git refs, the CLI gate."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from dataeng_agents.core.api import diff_paths, narrate_api_diff, parse_document
from dataeng_agents.core.api.diff import diff_documents
from dataeng_agents.core.cli import app
from dataeng_agents.core.errors import InputError
from typer.testing import CliRunner

MUSEUM = Path(__file__).parent / "api_specs" / "museum"
FIXTURES = Path(__file__).parent / "api_fixtures"


def _pairs(result: object) -> set[tuple[str, str]]:
    return {(c.kind, c.subject) for c in result.changes if c.level == "breaking"}  # type: ignore[attr-defined]


def test_museum_1_1_1_to_1_2_1_breaking_changes_are_the_real_ones() -> None:
    result = diff_paths(MUSEUM / "museum-1.1.1.yaml", MUSEUM / "museum-1.2.1.yaml")
    assert _pairs(result) == {
        ("response-property-became-optional", "GET /special-events 200 response[].eventId"),
        ("response-property-became-optional", "GET /special-events/{eventId} 200 response.eventId"),
        ("response-property-became-optional", "PATCH /special-events/{eventId} 200 response.eventId"),
        ("response-property-became-optional", "POST /special-events 201 response.eventId"),
        ("response-property-removed", "POST /tickets 201 response.eventName"),
        ("response-property-became-optional", "POST /tickets 201 response.ticketId"),
    }
    warnings = {(c.kind, c.subject) for c in result.changes if c.level == "warning"}
    assert ("request-property-removed", "POST /tickets request body.phone") in warnings
    assert result.exit_code("breaking") == 1


def test_museum_reverse_direction_is_different() -> None:
    # going back, eventName reappears (additive) and the 1.1.1 request requires email again (breaking)
    result = diff_paths(MUSEUM / "museum-1.2.1.yaml", MUSEUM / "museum-1.1.1.yaml")
    assert ("response-property-removed", "POST /tickets 201 response.eventName") not in _pairs(result)
    assert ("request-property-became-required", "POST /tickets request body.email") in _pairs(result)


def test_same_spec_has_no_changes() -> None:
    result = diff_paths(MUSEUM / "museum-1.2.1.yaml", MUSEUM / "museum-1.2.1.yaml")
    assert result.changes == [] and result.exit_code() == 0


def _openapi(text_edit: tuple[str, str] | None = None) -> str:
    text = (FIXTURES / "OAS002.good.yaml").read_text()
    if text_edit:
        assert text_edit[0] in text
        text = text.replace(*text_edit)
    return text


def _rename_item_path(d: dict) -> None:
    d["paths"]["/orders-by-id/{order_id}"] = d["paths"].pop("/orders/{order_id}")


def _require_cursor(d: dict) -> None:
    d["paths"]["/orders"]["get"]["parameters"][1]["required"] = True


def _narrow_enum(d: dict) -> None:
    d["components"]["schemas"]["Order"]["properties"]["status"]["enum"] = ["open"]


def _change_auth(d: dict) -> None:
    d["security"] = [{"other": []}]


def _add_required_param(d: dict) -> None:
    d["paths"]["/orders"]["get"]["parameters"].append(
        {"name": "region", "in": "query", "required": True, "schema": {"type": "string", "maxLength": 8}}
    )


def _remove_success(d: dict) -> None:
    responses = d["paths"]["/orders"]["post"]["responses"]
    responses["200"] = responses.pop("201")


@pytest.mark.parametrize(
    ("mutate", "kind"),
    [
        (_rename_item_path, "path-removed"),
        (_require_cursor, "request-parameter-became-required"),
        (_narrow_enum, "request-enum-narrowed"),
        (_change_auth, "security-changed"),
        (_add_required_param, "new-required-request-parameter"),
        (_remove_success, "response-success-status-removed"),
    ],
)
def test_openapi_breaking_kinds(mutate: object, kind: str) -> None:
    import yaml

    new_doc = yaml.safe_load(_openapi())
    mutate(new_doc)  # type: ignore[operator]
    result = diff_documents(
        parse_document("old.yaml", _openapi()), parse_document("new.yaml", yaml.safe_dump(new_doc))
    )
    assert kind in {c.kind for c in result.breaking}, result.changes


def test_new_required_request_field_and_type_change() -> None:
    import yaml

    old_doc = yaml.safe_load(_openapi())
    new_doc = yaml.safe_load(_openapi())
    order = new_doc["components"]["schemas"]["Order"]
    order["required"] = ["order_id", "quantity"]
    order["properties"]["order_id"] = {"type": "integer", "minimum": 0, "maximum": 10}
    result = diff_documents(
        parse_document("o.yaml", yaml.safe_dump(old_doc)), parse_document("n.yaml", yaml.safe_dump(new_doc))
    )
    kinds = {c.kind for c in result.breaking}
    assert {"request-property-became-required", "request-type-changed", "response-type-changed"} <= kinds


def test_proto_removed_field_without_reserve_is_breaking_with_reserve_is_not() -> None:
    base = (FIXTURES / "PB003.good.proto").read_text()
    removed = base.replace("  int64 total_cents = 4;\n", "")
    reserved = base.replace("  reserved 3;\n", '  reserved 3, 4;\n  reserved "total_cents";\n').replace(
        "  int64 total_cents = 4;\n", ""
    )
    r1 = diff_documents(parse_document("a.proto", base), parse_document("b.proto", removed))
    assert [c.kind for c in r1.breaking] == ["field-removed-without-reserve"]
    r2 = diff_documents(parse_document("a.proto", base), parse_document("b.proto", reserved))
    assert r2.breaking == [] and "field-removed-reserved" in {c.kind for c in r2.changes}
    retyped = base.replace("int64 total_cents = 4;", "string total_cents = 4;")
    r3 = diff_documents(parse_document("a.proto", base), parse_document("b.proto", retyped))
    assert [c.kind for c in r3.breaking] == ["field-type-changed"]


def test_graphql_field_removal_and_nullability_change() -> None:
    base = (FIXTURES / "GQL001.good.graphql").read_text()
    removed = base.replace("  tags: [String!]!\n", "")
    nullable = base.replace("  status: OrderStatus!", "  status: OrderStatus")
    r1 = diff_documents(parse_document("a.graphql", base), parse_document("b.graphql", removed))
    assert {c.kind for c in r1.breaking} == {"field-removed"}
    r2 = diff_documents(parse_document("a.graphql", base), parse_document("b.graphql", nullable))
    assert {c.kind for c in r2.breaking} == {"field-changed-kind"}
    added = base.replace("  tags: [String!]!\n", "  tags: [String!]!\n  note: String\n")
    r3 = diff_documents(parse_document("a.graphql", base), parse_document("b.graphql", added))
    assert r3.breaking == [] and "field-added" in {c.kind for c in r3.changes}


def test_mixed_kinds_are_rejected() -> None:
    with pytest.raises(InputError):
        diff_documents(
            parse_document("a.proto", (FIXTURES / "PB003.good.proto").read_text()),
            parse_document("b.graphql", (FIXTURES / "GQL001.good.graphql").read_text()),
        )


def test_diff_advice_template_refers_only_to_change_ids() -> None:
    result = diff_paths(MUSEUM / "museum-1.1.1.yaml", MUSEUM / "museum-1.2.1.yaml")
    advice = narrate_api_diff(result)
    ids = {c.id for c in result.changes}
    assert advice.priorities and all(set(p.finding_ids) <= ids for p in advice.priorities)
    assert advice.priorities[0].finding_ids[0] in {c.id for c in result.breaking}


@pytest.mark.skipif(
    shutil.which("git") is None, reason="git is part of the CI image; never absent in practice"
)
def test_cli_diff_against_git_base(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    spec = repo / "openapi.yaml"
    spec.write_text((MUSEUM / "museum-1.1.1.yaml").read_text())

    def git(*args: str) -> None:
        subprocess.run(
            ["git", *args],
            cwd=repo,
            check=True,
            capture_output=True,
            env={
                "GIT_AUTHOR_NAME": "t",
                "GIT_AUTHOR_EMAIL": "t@x",
                "GIT_COMMITTER_NAME": "t",
                "GIT_COMMITTER_EMAIL": "t@x",
                "PATH": "/usr/bin:/bin:/usr/local/bin",
                "HOME": str(tmp_path),
            },
        )

    git("init", "-q", "-b", "main")
    git("add", "openapi.yaml")
    git("commit", "-qm", "v1.1.1")
    spec.write_text((MUSEUM / "museum-1.2.1.yaml").read_text())
    runner = CliRunner()
    res = runner.invoke(app, ["api", "diff", str(spec), "--base", "main", "--format", "json"])
    assert res.exit_code == 1, res.output
    assert '"response-property-removed"' in res.output
    res_ok = runner.invoke(
        app, ["api", "diff", str(spec), "--base", "main", "--fail-on", "never", "-f", "markdown"]
    )
    assert res_ok.exit_code == 0 and "breaking" in res_ok.output
    res_bad = runner.invoke(app, ["api", "diff", str(spec), "--base", "no-such-ref"])
    assert res_bad.exit_code == 2


def test_cli_diff_exit_codes() -> None:
    runner = CliRunner()
    same = runner.invoke(
        app, ["api", "diff", str(MUSEUM / "museum-1.2.1.yaml"), str(MUSEUM / "museum-1.2.1.yaml")]
    )
    assert same.exit_code == 0
    missing = runner.invoke(
        app, ["api", "diff", str(MUSEUM / "nope.yaml"), str(MUSEUM / "museum-1.2.1.yaml")]
    )
    assert missing.exit_code == 2


HELDOUT = Path(__file__).parent / "api_specs" / "heldout"


def test_openapi_30_nullable_response_property_is_breaking() -> None:
    result = diff_paths(HELDOUT / "hellosign_fax_2024-10-29.yaml", HELDOUT / "hellosign_fax_2024-11-27.yaml")
    kinds = {(c.kind, c.subject) for c in result.changes}
    for prop in ("subject", "message"):
        where = f"GET /fax/{{fax_id}} 200 response.fax.{prop}"
        assert ("response-became-nullable", where) in kinds
        assert ("response-property-became-optional", where) in kinds
    assert len(result.breaking) == 4
    # the reverse (nullable dropped, required again) narrows a response: nothing breaks for clients
    back = diff_paths(HELDOUT / "hellosign_fax_2024-11-27.yaml", HELDOUT / "hellosign_fax_2024-10-29.yaml")
    assert not back.breaking


def test_stripe_form_body_and_single_branch_anyof_are_compared(tmp_path: Path) -> None:
    old, new = HELDOUT / "stripe_v516_diff.yaml", HELDOUT / "stripe_v524_diff.yaml"
    result = diff_paths(old, new)
    assert {(c.level, c.kind, c.subject) for c in result.changes} == {
        ("info", "request-property-added", "POST /v1/ephemeral_keys request body.nonce"),
        (
            "info",
            "response-property-added",
            "GET /v1/issuing/authorizations/{authorization} 200 response.amount_details.cashback_amount",
        ),
    }
    # had the new form field been required, old clients would break
    required = tmp_path / "required.yaml"
    required.write_text(
        new.read_text().replace(
            "              type: object\n", "              required: [nonce]\n              type: object\n", 1
        )
    )
    kinds = {(c.level, c.kind) for c in diff_paths(old, required).changes}
    assert ("breaking", "new-required-request-property") in kinds


def test_multi_file_spec_is_compared_file_by_file(tmp_path: Path) -> None:
    # DigitalOcean keeps every operation in its own file (`get: {$ref: resources/...}`): a change
    # inside resources/... is a change of the contract, on disk and through git --base alike
    old, new = tmp_path / "old", tmp_path / "new"
    shutil.copytree(HELDOUT / "digitalocean", old)
    shutil.copytree(HELDOUT / "digitalocean", new)
    op_file = new / "resources" / "account" / "account_get.yml"
    op_file.write_text(op_file.read_text().replace("droplet_limit", "floating_ip_limit"))
    root = "DigitalOcean-public.v2.yaml"
    result = diff_paths(old / root, new / root)
    changes = {(c.level, c.kind, c.message) for c in result.changes}
    assert ("breaking", "response-property-removed") in {(lv, k) for lv, k, _ in changes}, changes
    assert any("'droplet_limit' was removed" in m for _, _, m in changes)
    assert not [c for c in result.changes if c.kind == "external-refs-not-compared"]
    runner = CliRunner()
    assert runner.invoke(app, ["api", "diff", str(old / root), str(new / root)]).exit_code == 1

    # the old side read from git: its other files come from the same commit
    repo = tmp_path / "repo"
    shutil.copytree(HELDOUT / "digitalocean", repo)
    git = ["git", "-c", "user.email=t@example.org", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    subprocess.run([*git, "add", "."], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "v1"], cwd=repo, check=True)
    repo_op = repo / "resources" / "account" / "account_get.yml"
    repo_op.write_text(repo_op.read_text().replace("droplet_limit", "floating_ip_limit"))
    based = diff_paths(repo / root, repo / root, base_ref="HEAD")
    assert {(c.kind, c.side) for c in based.changes if c.level == "breaking"} == {
        ("response-property-removed", "new")
    }

    # a file that cannot be read is said, per side
    (new / "resources" / "account" / "account_get.yml").unlink()
    result = diff_paths(old / root, new / root)
    warned = [c for c in result.changes if c.kind == "external-refs-not-compared"]
    assert [c.side for c in warned] == ["new"]
    assert "resources/account/account_get.yml" in warned[0].message
    # a single-file spec (examples and code samples in other files do not count) gets no such warning
    fax = HELDOUT / "hellosign_fax_2024-10-29.yaml"
    assert not [c for c in diff_paths(fax, fax).changes if c.kind == "external-refs-not-compared"]


def test_a_scope_added_to_a_security_requirement_is_breaking(tmp_path: Path) -> None:
    # digitalocean/openapi 0ddc604 -> 7c1300c: POST /v2/projects/{id}/resources went from
    # bearer_auth [project:update] to [project:assign_resource]; tokens without the new scope fail
    def spec(scopes: str) -> str:
        return f"""
openapi: 3.0.0
info: {{title: t, version: "1"}}
components:
  securitySchemes:
    bearer_auth: {{type: http, scheme: bearer}}
paths:
  /v2/projects/{{id}}/resources:
    post:
      parameters: [{{name: id, in: path, required: true, schema: {{type: string}}}}]
      security: [{{bearer_auth: [{scopes}]}}]
      responses: {{"200": {{description: ok}}}}
"""

    old, new, wider = tmp_path / "old.yaml", tmp_path / "new.yaml", tmp_path / "wider.yaml"
    old.write_text(spec("'project:update'"))
    new.write_text(spec("'project:assign_resource'"))
    wider.write_text(spec(""))
    changed = [c for c in diff_paths(old, new).changes if c.kind.startswith("security")]
    assert [(c.level, c.kind) for c in changed] == [("breaking", "security-changed")]
    assert "bearer_auth[project:update]" in changed[0].message
    # asking for fewer scopes accepts every old client
    narrower = [c for c in diff_paths(old, wider).changes if c.kind.startswith("security")]
    assert [(c.level, c.kind) for c in narrower] == [("info", "security-alternative-added")]
