"""Every rule flags its labelled bad fixture and stays quiet on its good one.

Fixtures live in tests/core/fixtures/review/<RULE>/{bad,good}.<ext>.txt (data, not collected).
They are copied to a temp dir with their real suffix and reviewed at the strict profile.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from dataeng_agents.core.review import RULES, review_paths
from dataeng_agents.core.review.models import Severity

FIXTURES = Path(__file__).parent / "fixtures" / "review"


def _fixture(rule_id: str, label: str) -> Path:
    found = sorted((FIXTURES / rule_id).glob(f"{label}.*.txt"))
    assert found, f"no {label} fixture for {rule_id}"
    return found[0]


def _review(src: Path, tmp_path: Path) -> list[str]:
    target = tmp_path / src.name.removesuffix(".txt")
    shutil.copyfile(src, target)
    result = review_paths([target], profile="strict", airflow_version="3.3")
    assert all(f.status == "reviewed" for f in result.files), [f.error for f in result.files]
    return [f.rule_id for f in result.findings]


def test_every_rule_has_labelled_fixtures() -> None:
    missing = [
        r
        for r in RULES
        if not list((FIXTURES / r).glob("bad.*.txt")) or not list((FIXTURES / r).glob("good.*.txt"))
    ]
    assert missing == []
    assert len(RULES) >= 40


def test_fixture_folders_name_real_rules() -> None:
    assert sorted(p.name for p in FIXTURES.iterdir() if p.is_dir()) == sorted(RULES)


@pytest.mark.parametrize("rule_id", sorted(RULES))
def test_bad_fixture_is_flagged(rule_id: str, tmp_path: Path) -> None:
    assert rule_id in _review(_fixture(rule_id, "bad"), tmp_path)


@pytest.mark.parametrize("rule_id", sorted(RULES))
def test_good_fixture_is_not_flagged(rule_id: str, tmp_path: Path) -> None:
    assert rule_id not in _review(_fixture(rule_id, "good"), tmp_path)


#: the review's categories, as the docs list them
CATEGORIES = {
    "reliability",
    "scheduling",
    "performance",
    "data quality",
    "security",
    "cost",
    "observability",
    "architecture",
}


@pytest.mark.parametrize("rule_id", sorted(RULES))
def test_rule_metadata_and_doc_page(rule_id: str) -> None:
    rule = RULES[rule_id]
    assert rule.category in CATEGORIES
    assert rule.severity in {Severity.error, Severity.warn, Severity.info}
    assert len(rule.rationale) > 40 and len(rule.fix) > 20
    page = rule.to_markdown()
    assert page.startswith(f"# {rule_id}: {rule.title}")
    assert rule.rationale in page and rule.fix in page


def test_categories_are_all_covered() -> None:
    assert {r.category for r in RULES.values()} == CATEGORIES


def test_generated_rule_docs_are_current(tmp_path: Path) -> None:
    from dataeng_agents.core.review import write_rule_docs

    committed = Path(__file__).resolve().parents[2] / "docs" / "rules"
    for page in write_rule_docs(str(tmp_path), str(FIXTURES)):
        name = Path(page).name
        assert (committed / name).read_text() == Path(page).read_text(), (
            f"docs/rules/{name} is stale: run `dataeng pipeline rules --write-docs docs/rules "
            "--examples tests/core/fixtures/review`"
        )
        if name != "index.md":  # every rule page shows a flagged and a fixed example
            text = Path(page).read_text()
            assert "Flagged:" in text and "Not flagged" in text and text.count("```") == 4, name
