"""The committed record of the precision measurement (issue 14): the corpus list and the judging file.

The corpus files are not in the repository (benchmarks/review_corpus.py assembles them from clones),
so this checks the record itself: enough files from enough repositories, none of the repositories
kept for independent checks, a complete judging file, and that the precision published in
docs/review.md is what the judging file gives.
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXCLUDED = (
    "mozilla/telemetry-airflow",
    "astronomer/astronomer-cosmos",
    "cal-itp/data-infra",
    "elifesciences/data-hub-core-airflow-dags",
    "prefeitura-rio/",
    "DataTalksClub/",
    "apache/airflow",
)


def test_corpus_list() -> None:
    entries = json.loads((REPO / "benchmarks" / "review_corpus.json").read_text())
    assert len(entries) >= 8
    assert sum(len(e["paths"]) for e in entries) >= 300
    for e in entries:
        assert re.fullmatch(r"[0-9a-f]{40}", e["commit"]), e
        assert not e["repo"].startswith(EXCLUDED), e["repo"]
        assert all(p.endswith(".py") for p in e["paths"]) and len(set(e["paths"])) == len(e["paths"])


def test_judging_file_is_complete_and_matches_the_docs() -> None:
    with (REPO / "benchmarks" / "review_corpus_judging.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) >= 60
    assert {r["verdict"] for r in rows} <= {"true", "false", "debatable"}
    assert all(r["reason"].strip() for r in rows)
    c = Counter(r["verdict"] for r in rows)
    overall = c["true"] / (c["true"] + c["false"])
    assert overall >= 0.90
    errors = Counter((r["rule"], r["verdict"]) for r in rows if r["severity"] == "error")
    for rule in {r for r, _ in errors}:
        t, f = errors[(rule, "true")], errors[(rule, "false")]
        assert t + f == 0 or t / (t + f) >= 0.95, rule
    docs = (REPO / "docs" / "review.md").read_text()
    assert f"**{overall:.1%}**" in docs
    assert f"| **all** | | {len(rows)} | {c['true']} | {c['false']} | {c['debatable']} |" in docs
