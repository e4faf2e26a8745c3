"""The one secret detector: every corpus shape found and gone after redaction; no false positives."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import yaml
from dataeng_agents.core.security import (
    REDACTED,
    find_secrets,
    is_placeholder,
    is_secret_name,
    literal_secret,
    redact,
)

CORPUS: dict[str, list[dict[str, Any]]] = yaml.safe_load(
    (Path(__file__).parent / "data" / "secret_corpus.yaml").read_text(encoding="utf-8")
)
POSITIVE = CORPUS["positive"]
NEGATIVE = CORPUS["negative"]


def test_the_corpus_is_large_enough() -> None:
    assert len(POSITIVE) >= 40 and len(NEGATIVE) >= 20
    assert len({e["id"] for e in POSITIVE + NEGATIVE}) == len(POSITIVE) + len(NEGATIVE)


@pytest.mark.parametrize("entry", POSITIVE, ids=[e["id"] for e in POSITIVE])
def test_every_secret_shape_is_found_and_redacted(entry: dict[str, Any]) -> None:
    text, secret = entry["text"], str(entry["secret"])
    assert secret in text, "corpus entry must contain its secret"
    spans = find_secrets(text)
    assert any(s.start <= text.index(secret) < s.end for s in spans), spans
    out = redact(text)
    assert secret not in out
    assert "REDACTED" in out
    assert redact(out) == out  # idempotent: redacted text holds nothing more to redact


@pytest.mark.parametrize("entry", NEGATIVE, ids=[e["id"] for e in NEGATIVE])
def test_no_secret_is_reported_in_ordinary_text(entry: dict[str, Any]) -> None:
    assert find_secrets(entry["text"]) == []
    assert redact(entry["text"]) == entry["text"]


def test_spans_cover_the_value_only_so_redacted_text_still_reads() -> None:
    assert redact('engine = create_engine("postgresql://etl:pw-123x@db/wh")') == (
        f'engine = create_engine("postgresql://etl:{REDACTED}@db/wh")'
    )
    assert redact('DB_PASS = "x9-secret"') == f'DB_PASS = "{REDACTED}"'
    assert (
        redact("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----")
        == "[REDACTED PRIVATE KEY]"
    )


def test_spans_are_sorted_disjoint_and_carry_kind_confidence_name() -> None:
    text = 'DB_PASSWORD="Pw-1x"\nurl = "postgresql://u:Pw-2y@h/db"\nkey = "sk-ant-api03-abcdefghijklmnop"'
    spans = find_secrets(text)
    assert [text[s.start : s.end] for s in spans] == ["Pw-1x", "Pw-2y", "sk-ant-api03-abcdefghijklmnop"]
    assert spans[0].kind == "key_value" and spans[0].name == "DB_PASSWORD"
    assert spans[1].kind == "uri_credentials" and spans[2].kind == "token:anthropic"
    assert all(0 < s.confidence <= 1 for s in spans)
    assert all(a.end <= b.start for a, b in itertools.pairwise(spans))
    assert [s.kind for s in find_secrets(text, min_confidence=0.85)] == ["uri_credentials", "token:anthropic"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("DB_PASS", True),
        ("password", True),
        ("PGPASSWORD", True),
        ("api_key", True),
        ("X-API-Key", True),
        ("aws_secret_access_key", True),
        ("clientSecret", True),
        ("auth_token", True),
        ("MYSQL_PWD", True),
        ("password_conn_id", False),
        ("secret_name", False),
        ("token_path", False),
        ("max_tokens", False),
        ("bypass", False),
        ("key", False),
        ("api_key_header", False),
        ("input_tokens", False),
        ("", False),
    ],
)
def test_secret_names(name: str, expected: bool) -> None:
    assert is_secret_name(name) is expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "changeme",
        "********",
        "<password>",
        "your_api_key_here",
        "{{ var.value.pw }}",
        "${PW}",
        "$PW",
        "[REDACTED]",
    ],
)
def test_placeholders(value: str) -> None:
    assert is_placeholder(value)


def test_literal_secret_for_ast_checkers() -> None:
    assert literal_secret("DB_PASS", "Hunter2-x") is not None
    assert literal_secret("password", "{{ conn.pg.password }}") is None
    assert literal_secret("ssh_private_key", "/root/.ssh/id_rsa") is None
    assert literal_secret("secret", "airflow-secrets", call="Secret") is None
    assert literal_secret("key", "password", call="k8s.V1SecretKeySelector") is None
    assert literal_secret("password", "changeme") is None
    # a shaped secret is one whatever the name it is bound to
    hit = literal_secret("conn_uri", "postgresql://etl:Pw-99x@db/wh")
    assert hit is not None and hit.kind == "uri_credentials"
    assert literal_secret("task_id", "load_orders") is None
