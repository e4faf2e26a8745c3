"""Every API rule fires on its bad fixture and stays silent on its good one (strict profile)."""

from __future__ import annotations

from pathlib import Path

import pytest
from dataeng_agents.core.api import API_RULES, review_api_paths

FIXTURES = Path(__file__).parent / "api_fixtures"
SUFFIX = {"openapi": "yaml", "graphql": "graphql", "proto": "proto"}


def _fixture(rule_id: str, kind: str) -> Path:
    target = API_RULES[rule_id].targets[0]
    return FIXTURES / f"{rule_id}.{kind}.{SUFFIX[target]}"


def _rules_fired(path: Path) -> set[str]:
    result = review_api_paths([path], profile="strict")
    assert all(f.status == "reviewed" for f in result.files), result.files
    return {f.rule_id for f in result.findings}


def test_catalogue_has_at_least_30_rules_with_text() -> None:
    assert len(API_RULES) >= 30
    for rule in API_RULES.values():
        assert rule.title and rule.rationale and rule.fix
        assert rule.id in rule.to_markdown()


@pytest.mark.parametrize("rule_id", sorted(API_RULES))
def test_bad_fixture_fires(rule_id: str) -> None:
    assert rule_id in _rules_fired(_fixture(rule_id, "bad"))


@pytest.mark.parametrize("rule_id", sorted(API_RULES))
def test_good_fixture_is_clean_for_the_rule(rule_id: str) -> None:
    assert rule_id not in _rules_fired(_fixture(rule_id, "good"))


def test_good_bases_are_clean_for_every_rule() -> None:
    # the good fixtures share a base that passes the whole catalogue at strict
    for name in ("OAS002.good.yaml", "GQL001.good.graphql", "PB003.good.proto"):
        assert _rules_fired(FIXTURES / name) == set(), name


REAL = Path(__file__).parent / "api_specs" / "buf_lint"


def test_buf_lint_quickstart_files_get_buf_s_findings() -> None:
    start = review_api_paths([REAL / "start_weather.proto"], profile="strict")
    by_rule: dict[str, list[str]] = {}
    for f in start.findings:
        by_rule.setdefault(f.rule_id, []).append(f.message)
    assert set(by_rule) == {"PB004", "PB005", "PB007", "PB009"}
    assert any("CONDITION_UNSPECIFIED" in m for m in by_rule["PB004"])
    assert sorted(m.split()[2] for m in by_rule["PB007"]) == ["RAINY", "SUNNY"]
    assert any("request type Location" in m for m in by_rule["PB009"])
    finish = review_api_paths([REAL / "finish_weather.proto"], profile="strict")
    assert finish.findings == [] and finish.files[0].operations == 1


def test_valid_protobuf_with_comments_inside_field_options_parses() -> None:
    result = review_api_paths([REAL / "protovalidate_invoice.proto"], profile="strict")
    assert result.files[0].status == "reviewed", result.files[0].error
    assert result.files[0].title == "invoice.v1"
