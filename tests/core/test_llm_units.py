"""Units of the LLM plumbing: default model, prices, budget estimate, grounding rule, redaction."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest
from dataeng_agents.core.errors import BudgetExceededError, ConfigError
from dataeng_agents.core.llm import (
    Budget,
    PriceTable,
    RunUsage,
    TokenUsage,
    check_grounding,
    default_model,
    estimate_call,
    extract_numbers,
    newest_sonnet,
    redact,
    sanitize,
    sdk_model_ids,
)
from dataeng_agents.core.narrative import (
    AgentAnswer,
    ExperimentNarrative,
    NarrativePoint,
    ReviewAdvice,
    ReviewPriority,
)


def test_default_model_is_the_newest_sonnet_in_the_installed_sdk() -> None:
    from anthropic.types import Model

    literal_ids = [a for a in typing.get_args(typing.get_args(Model)[0])]
    assert set(literal_ids) <= set(sdk_model_ids())
    sonnets = [m for m in literal_ids if m.startswith("claude-sonnet-")]
    assert default_model() in sonnets
    assert default_model() == "claude-sonnet-5-5"  # anthropic 2.14.0 lists sonnet 5-5, 5, 4-6, 4-5
    assert (
        newest_sonnet(
            ["claude-sonnet-4-5-20250929", "claude-sonnet-4-5", "claude-sonnet-4-6", "claude-opus-9"]
        )
        == "claude-sonnet-4-6"
    )
    assert newest_sonnet(["claude-sonnet-4-5-20250929"]) == "claude-sonnet-4-5-20250929"
    assert newest_sonnet(["claude-sonnet-10", "claude-sonnet-9-9"]) == "claude-sonnet-10"


def test_price_lookup_exact_pattern_dated_and_unknown() -> None:
    prices = PriceTable.load()
    assert prices.lookup("claude-sonnet-5-5")[0].input == 2.0
    assert prices.lookup("claude-sonnet-4-5-20250929")[0].input == 3.0
    assert prices.lookup("claude-opus-4-6")[0].output == 25.0
    assert prices.lookup("claude-opus-4-1")[0].output == 75.0
    price, known = prices.lookup("claude-unreleased-9")
    assert not known and price.output == 75.0  # unknown models are priced conservatively


def test_price_table_errors_name_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "p.yaml"
    bad.write_text("models:\n  claude-x: {input: -1, output: 1, cache_write_5m: 1, cache_read: 1}\n")
    with pytest.raises(ConfigError) as exc:
        PriceTable.load(bad)
    assert exc.value.field == "prices.models.claude-x.input"
    with pytest.raises(ConfigError):
        PriceTable.load(tmp_path / "missing.yaml")


def test_usage_from_api_splits_cache_writes_by_ttl() -> None:
    u = TokenUsage.from_api(
        {
            "input_tokens": 10,
            "output_tokens": 5,
            "cache_creation_input_tokens": 100,
            "cache_read_input_tokens": 7,
            "cache_creation": {"ephemeral_5m_input_tokens": 60, "ephemeral_1h_input_tokens": 40},
        }
    )
    assert (u.cache_write_5m_tokens, u.cache_write_1h_tokens, u.cache_read_tokens) == (60, 40, 7)
    run = RunUsage(model="claude-sonnet-5-5")
    cost = run.add(u, PriceTable.load())
    assert cost == pytest.approx((10 * 2 + 5 * 10 + 60 * 2.5 + 40 * 4 + 7 * 0.1) / 1e6)


def test_budget_estimate_is_an_upper_bound_and_blocks() -> None:
    prices = PriceTable.load()
    body = {"model": "claude-sonnet-5-5", "messages": [{"role": "user", "content": "x" * 10_000}]}
    est = estimate_call(body, "claude-sonnet-5-5", prices, max_tokens=1000)
    assert est.input_tokens >= 10_000 / 4  # English runs ~4 chars/token; the estimate assumes 2.5
    assert est.usd == pytest.approx((est.input_tokens * 2.5 + 1000 * 10) / 1e6)
    spent = RunUsage(model="claude-sonnet-5-5")
    Budget(max_usd=1.0).check(spent, est)
    with pytest.raises(BudgetExceededError):
        Budget(max_usd=est.usd * 0.99).check(spent, est)
    with pytest.raises(ValueError):
        Budget(max_usd=-1)


FACTS = {
    "results": [{"id": "m1", "lift": 0.0321, "p_value": 0.0004, "n": 12345, "ci": [-0.0112, 0.0746]}],
    "findings": [{"id": "AF001-x"}, {"id": "AF002-y"}, {"id": "AF003-z"}],
    "notes": "Runs daily at 02:00 for 14 days.",
}


@pytest.mark.parametrize(
    "prose",
    [
        "Conversion rose 3.2% (p < 0.001).",
        "Conversion rose 3.21 percent, p = 0.0004.",
        "Lift 0.032; interval -1.1% to 7.5%.",
        "12,345 users; 12.3k users; 12k users.",
        "3 findings need attention.",  # length of the findings list
        "The run window is 14 days.",  # a number written inside a fact string
        "In 2026, rule R012 on metric_2 (p95, v1.2) at 02:30 is the 1st item.",
        "1. Fix retries.\n2. Move Variable.get.",
        "Ship it: 0 blockers, 1 decision.",
        "p = 4e-4, n = 1.2345e4.",
    ],
)
def test_grounded_prose_passes(prose: str) -> None:
    r = check_grounding(ExperimentNarrative(headline="h", summary=prose), FACTS)
    assert r.ok, r.describe()


@pytest.mark.parametrize(
    ("prose", "bad"),
    [
        ("Conversion rose 4.5%.", "4.5"),
        ("Conversion rose 3.3%.", "3.3"),  # 3.21 does not round to 3.3
        ("We saw 17 users.", "17"),
        ("Revenue will grow by $2.4M.", "2.4"),
        ("5 findings need attention.", "5"),
        ("p < 0.2 overall.", "0.2"),  # only conventional thresholds are exempt after '<'
        ("p = 5e-4.", "5e-4"),
    ],
)
def test_invented_numbers_are_caught(prose: str, bad: str) -> None:
    r = check_grounding(ExperimentNarrative(headline="h", summary=prose), FACTS)
    assert not r.ok and [n.text for n in r.unmatched] == [bad]


def test_refs_must_be_known_ids_and_are_not_read_as_numbers() -> None:
    ok = ReviewAdvice(
        summary="Fix these.", priorities=[ReviewPriority(finding_ids=["AF001-x"], why="w", how_to_fix="h")]
    )
    assert check_grounding(ok, FACTS).ok
    bad = ExperimentNarrative(
        headline="h", summary="s", key_points=[NarrativePoint(text="t", refs=["m1", "m9"])]
    )
    assert check_grounding(bad, FACTS).unknown_refs == ["m9"]


def test_numbers_from_the_question_ground_nothing_but_advice_may_repeat_them() -> None:
    a = ExperimentNarrative(headline="h", summary="With 40 partitions the job fits.")
    assert not check_grounding(a, FACTS).ok
    assert not check_grounding(a, FACTS, question="We have 40 partitions; is that enough?").ok
    advice = AgentAnswer(answer="Keep the 40 partitions and set `retries=3` with a retry_delay of 5 minutes.")
    assert check_grounding(advice, FACTS, question="We have 40 partitions; is that enough?").ok


def test_exponent_overflow_in_facts_or_prose_is_no_crash() -> None:
    # A hash or path such as "ab3e405c" in a finding id reads as 3 x 10^405: float power overflows.
    facts = {
        **FACTS,
        "findings": [{"id": "SCH001-3e405c"}, {"id": "x-1e-999"}],
        "path": "/tmp/run_9e999/dag.py",
    }
    assert check_grounding(ExperimentNarrative(headline="h", summary="Lift 0.032 on 12,345 users."), facts).ok
    r = check_grounding(ExperimentNarrative(headline="h", summary="p = 1e999 and q = 2e-999."), facts)
    assert [n.text for n in r.unmatched] == ["1e999", "2e-999"]


def test_extract_numbers_skips_ids_and_reads_suffixes() -> None:
    nums = extract_numbers("a 2.5x speed-up, 3rd run, id R-012, 1.5k rows, 45%")
    assert [(n.text, n.multiplier, n.percent) for n in nums] == [
        ("2.5", 1.0, False),
        ("1.5", 1000.0, False),
        ("45", 1.0, True),
    ]


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ('engine = create_engine("postgresql://etl:Sup3r-s3cret@db:5432/prod")', "Sup3r-s3cret"),
        ("snowflake://user:pa55word@acct/db?warehouse=wh", "pa55word"),
        ('password = "hunter2!"', "hunter2!"),
        ("DB_PASSWORD=hunter22", "hunter22"),
        ('{"aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}', "wJalrXUtnFEMI"),
        ("key: sk-ant-api03-abcdefghijklmnopqrstu", "sk-ant-api03-abcdefghijklmnopqrstu"),
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl", "eyJhbGciOiJIUzI1NiJ9"),
        ("token ghp_abcdefghijklmnopqrstuvwxyz0123456789", "ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
        (
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
            "MIIEpAIBAAKCAQEA",
        ),
        ("slack: xoxb-123456789012-abcdefghij", "xoxb-123456789012-abcdefghij"),
        ("AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
        ("CREATE USER etl IDENTIFIED BY 'Xy-77-pw';", "Xy-77-pw"),
        ("ALTER ROLE app WITH PASSWORD 'S3cr3t-pw';", "S3cr3t-pw"),
    ],
)
def test_redaction_removes_secrets(text: str, secret: str) -> None:
    out = redact(text)
    assert secret not in out and "REDACTED" in out


def test_redaction_keeps_ordinary_code() -> None:
    code = 'pw = Variable.get("db_password")\nconn_id = "warehouse"\nurl = "https://example.com/path"'
    assert redact(code) == code


def test_sanitize_redacts_by_key_caps_lists_and_drops_rows() -> None:
    out = sanitize(
        {"password": "x1", "items": list(range(500)), "records": [{"a": 1}], "nested": {"api_key": "k"}}
    )
    assert out["password"] == "[REDACTED]" and out["nested"]["api_key"] == "[REDACTED]"
    assert len(out["items"]) == 201 and "300 more items" in out["items"][-1]
    assert out["records"].startswith("[omitted: 1 raw rows")


def test_usage_of_an_unknown_model_is_flagged_as_estimated() -> None:
    run = RunUsage(model="claude-unreleased-9")
    run.add(TokenUsage(input_tokens=1_000_000), PriceTable.load())
    d = run.as_dict()
    assert d["price_estimated"] == 1.0 and d["usd"] == pytest.approx(15.0)
    known = RunUsage(model="claude-sonnet-5-5")
    known.add(TokenUsage(input_tokens=10), PriceTable.load())
    assert "price_estimated" not in known.as_dict()
