"""Artifact keys and publishing, read back from the Prefect API."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from dataeng_agents.prefect_integration.artifacts import (
    MAX_KEY_LENGTH,
    artifact_key,
    publish_report,
    report_link,
)

KEY = re.compile(r"^[a-z0-9-]+$")


@pytest.mark.parametrize(
    ("subject", "suffix", "expected"),
    [
        ("checkout_button_v2", "report", "checkout-button-v2-report"),
        ("Checkout Button (v2)", "metrics", "checkout-button-v2-metrics"),
        ("exp.2026-11.price--test", "html", "exp-2026-11-price-test-html"),
        ("--A/B--", "Findings", "a-b-findings"),
    ],
)
def test_artifact_key_is_sanitised(subject: str, suffix: str, expected: str) -> None:
    assert artifact_key(subject, suffix) == expected


def test_artifact_key_edge_cases() -> None:
    long_key = artifact_key("x" * 500, "metrics")
    assert len(long_key) <= MAX_KEY_LENGTH and long_key.endswith("-metrics") and KEY.match(long_key)
    non_ascii = artifact_key("实验", "report")
    assert KEY.match(non_ascii) and non_ascii == artifact_key("实验", "report")
    assert non_ascii != artifact_key("другой", "report")


def test_report_link(tmp_path: Path) -> None:
    html = tmp_path / "report dir" / "exp 1.html"
    assert report_link(html).startswith("file://") and report_link(html).endswith("/exp%201.html")
    assert (
        report_link(html, "https://reports.example.com/exp/")
        == "https://reports.example.com/exp/exp%201.html"
    )


def test_published_artifacts_read_back(prefect_server: str, tmp_path: Path) -> None:
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
    from prefect.runtime import flow_run

    @flow
    def publish() -> tuple[str, dict[str, object]]:
        out = publish_report(
            "Checkout_Button v2",
            markdown="# Report\n\nconversion +3.2%",
            rows=[{"metric": "conversion", "estimate": 0.032, "p_value": math.nan}],
            link=report_link(tmp_path / "report.html"),
            title="Experiment checkout_button_v2",
            table_name="metrics",
        )
        return str(flow_run.id), out.as_dict()

    run_id, published = publish()
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
        )
    by_key = {a.key: a for a in artifacts}
    assert set(by_key) == {
        "checkout-button-v2-report",
        "checkout-button-v2-metrics",
        "checkout-button-v2-html",
    }
    assert published["markdown_key"] == "checkout-button-v2-report"
    assert by_key["checkout-button-v2-report"].type == "markdown"
    assert "+3.2%" in str(by_key["checkout-button-v2-report"].data)
    import json

    table = json.loads(str(by_key["checkout-button-v2-metrics"].data))
    assert table == [{"metric": "conversion", "estimate": 0.032, "p_value": None}]
    assert by_key["checkout-button-v2-html"].type == "markdown"  # link artifacts are stored as markdown
    assert (tmp_path / "report.html").as_uri() in str(by_key["checkout-button-v2-html"].data)
