"""Report renderers and the atomic writer."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from dataeng_agents.core.errors import InputError
from dataeng_agents.core.experiment import analyze_experiment, design_experiment
from dataeng_agents.core.report import (
    ExperimentDesignReport,
    ExperimentReport,
    render,
    to_html,
    to_json,
    to_markdown,
    write_report,
)
from dataeng_agents.core.warehouse import DuckDBWarehouse
from test_experiment_support import demo_config, sample


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> tuple[ExperimentReport, ExperimentDesignReport]:
    s = sample(tmp_path_factory.mktemp("report"), users=20_000, seed=8)
    raw = demo_config(warehouse="postgresql://analyst:hunter2-secret@db.internal:5432/prod")
    wh = DuckDBWarehouse(s.path)
    return analyze_experiment(raw, wh), design_experiment(raw, wh)


def test_json_round_trips_and_summary_is_compact_and_secret_free(reports: Any) -> None:
    report, design = reports
    assert ExperimentReport.model_validate_json(to_json(report)) == report
    assert ExperimentDesignReport.model_validate_json(to_json(design)) == design
    summary = report.summary()
    assert set(summary) >= {"experiment_id", "verdict", "variant", "units", "health", "goals", "headline"}
    text = json.dumps(summary)
    assert len(text) < 4000 and "SELECT" not in text
    for rendered in (text, to_json(report), to_markdown(report), to_html(report)):
        assert "hunter2" not in rendered and "db.internal" not in rendered
    assert [g["id"] for g in summary["goals"]] == [r.id for r in report.results if r.role == "goal"]
    json.dumps(design.summary())


def test_markdown_has_decision_checks_and_every_result(reports: Any) -> None:
    report, design = reports
    md = to_markdown(report)
    assert f"**Decision: {report.decision.verdict.upper()}**" in md
    for h in report.health:
        assert h.name in md
    for r in report.results:
        assert f"| {r.metric}" in md and r.variant in md
    for reason in report.decision.reasons:
        assert f"**{reason.rule}**" in md
    dmd = to_markdown(design)
    assert "## Metric plan" in dmd and f"{design.per_variant:,}" in dmd and "## Hypothesis" in dmd


def test_html_is_self_contained_with_three_charts(reports: Any) -> None:
    report, design = reports
    page = to_html(report)
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<svg") == 3
    for chart in ("chart-forest", "chart-cumulative", "chart-srm"):
        assert f'id="{chart}"' in page
    assert not re.search(r"https?://|<script|<link|<img|<iframe|\bsrc=|url\((?!#)|@import", page, re.I)
    # internal SVG references only
    assert all(ref.startswith("#") for ref in re.findall(r'href="([^"]*)"', page))
    bare = to_html(report, charts=False)
    assert "<svg" not in bare and "Health checks" in bare
    dpage = to_html(design)
    assert "Metric plan" in dpage and not re.search(r"https?://", dpage)
    with pytest.raises(InputError):
        render(report, "pdf")


def test_write_report_creates_and_replaces_atomically(reports: Any, tmp_path: Path) -> None:
    report, design = reports
    out = tmp_path / "reports" / "exp"
    paths = write_report(report, out)
    assert set(paths) == {"json", "md", "html"}
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "report.json", "report.md"]
    assert json.loads((out / "report.json").read_text())["experiment_id"] == report.experiment_id
    (out / "notes.txt").write_text("mine")
    write_report(design, out, ["md"])
    assert (out / "notes.txt").read_text() == "mine"  # other files are kept
    assert (out / "design.md").exists() and (out / "report.html").exists()
    assert [p.name for p in out.parent.iterdir()] == ["exp"]  # no temp dirs left behind


def test_failures_leave_nothing_half_written(
    reports: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    report, _ = reports
    out = tmp_path / "new"
    with pytest.raises(InputError):
        write_report(report, out, ["json", "pdf"])
    assert not out.exists()

    import dataeng_agents.core.report.charts as charts

    def boom(_r: Any) -> str:
        raise RuntimeError("renderer crashed")

    monkeypatch.setattr(charts, "cumulative_plot", boom)
    with pytest.raises(RuntimeError):
        write_report(report, out)
    assert not out.exists() and list(tmp_path.iterdir()) == []

    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "report.html").write_text("old")
    with pytest.raises(RuntimeError):
        write_report(report, existing)
    assert (existing / "report.html").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["existing"]


def test_write_report_through_a_remote_writer(reports: Any, tmp_path: Path) -> None:
    report, _ = reports
    stored: dict[str, bytes] = {}
    paths = write_report(report, "s3://bucket/exp/2024-03-15/", ["json", "html"], writer=stored.__setitem__)
    assert paths == {
        "json": "s3://bucket/exp/2024-03-15/report.json",
        "html": "s3://bucket/exp/2024-03-15/report.html",
    }
    assert set(stored) == set(paths.values())
    assert stored[paths["html"]].startswith(b"<!DOCTYPE html>")
    assert list(tmp_path.iterdir()) == []


def test_absolute_impact_per_day_is_the_per_unit_difference_times_daily_exposures(
    reports: Any, tmp_path: Path
) -> None:
    import duckdb

    report, _ = reports
    s = sample(tmp_path, users=20_000, seed=8)  # the same seed: the same rows as the fixture's
    days = (
        duckdb.connect(str(s.path), read_only=True)
        .execute(
            "SELECT count(DISTINCT CAST(first AS DATE)) FROM "
            "(SELECT min(exposed_at) AS first FROM exposures GROUP BY unit_id)"
        )
        .fetchone()
    )
    assert days is not None and days[0] > 1
    assert report.units_per_day == pytest.approx(sum(v.units for v in report.variants) / days[0])
    per_unit = [r for r in report.results if r.kind != "ratio"]
    assert per_unit and all(r.impact_per_day is None for r in report.results if r.kind == "ratio")
    for r in per_unit:
        assert r.control_mean is not None and r.variant_mean is not None and r.impact_per_day is not None
        # the lift, the means and the impact tell one story (CUPED-adjusted means included)
        assert r.impact_per_day == pytest.approx((r.variant_mean - r.control_mean) * report.units_per_day)
        assert r.impact_ci_lower is not None and r.impact_ci_upper is not None
        assert r.impact_ci_lower <= r.impact_per_day <= r.impact_ci_upper
        # the interval is the verdict's: it excludes zero exactly when the result is significant
        if report.method != "bayesian" and r.role != "guardrail":
            assert (r.impact_ci_lower > 0 or r.impact_ci_upper < 0) == r.significant, r.id


def test_reports_show_each_variants_verdict_and_the_impact(reports: Any) -> None:
    report, _ = reports
    assert len(report.decision.per_variant) == len(report.variants) - 1
    md, html = to_markdown(report), to_html(report)
    assert "## Verdict per variant" in md and "impact / day" in md and "impact / day" in html
    for variant, verdict in report.decision.per_variant.items():
        assert f"- `{variant}`: **{verdict.upper()}**" in md
        assert re.search(rf'class="badge small"[^>]*>{re.escape(variant)}: {verdict.upper()}</span>', html)
    rows = {line.split(" | ")[2]: line for line in md.splitlines() if line.startswith("| conversion")}
    for r in (r for r in report.results if r.metric == "conversion"):
        cells = rows[r.variant].split(" | ")
        impact_cell = cells[7]
        assert impact_cell.startswith("+" if r.impact_per_day and r.impact_per_day > 0 else "-"), impact_cell
        assert impact_cell.count("[") == 1  # with its interval


def test_each_slice_has_its_own_srm_test_and_bh_adjusted_p_values(tmp_path: Path) -> None:
    import duckdb
    from scipy.stats import chisquare
    from statsmodels.stats.multitest import multipletests

    s = sample(tmp_path, users=20_000, seed=8)
    with duckdb.connect(str(s.path)) as con:  # a logging bug drops 40% of control's tablet exposures
        con.execute(
            "DELETE FROM exposures WHERE device = 'tablet' AND variant = 'control' AND unit_id % 5 < 2"
        )
        counts = dict(
            ((device, variant), n)
            for device, variant, n in con.execute(
                "SELECT device, variant::VARCHAR, count(*) FROM (SELECT unit_id, any_value(device) AS device, "
                "any_value(variant) AS variant FROM exposures GROUP BY unit_id "
                "HAVING count(DISTINCT variant) = 1) GROUP BY ALL"
            ).fetchall()
        )
    report = analyze_experiment(demo_config(), DuckDBWarehouse(s.path))
    arms = [v.name for v in report.variants]
    by_level = {(d.dimension, d.level): d for d in report.dimensions}
    for device in ("desktop", "mobile", "tablet"):
        row = by_level[("device", device)]
        expected = chisquare([counts[(device, a)] for a in arms]).pvalue
        assert row.srm_p_value == pytest.approx(expected, rel=1e-9)
        assert row.srm_mismatch == (device == "tablet")
    tested = [d for d in report.dimensions if d.p_value is not None]
    assert len(tested) > 10
    bh = multipletests([d.p_value for d in tested], method="fdr_bh")[1]
    assert [d.adjusted_p_value for d in tested] == pytest.approx(list(bh))
    assert all(d.adjusted_p_value is None for d in report.dimensions if d.p_value is None)
    md, html = to_markdown(report), to_html(report)
    assert "| device | tablet |" in md and "mismatch: not trustworthy" in md and "Benjamini-Hochberg" in md
    assert html.count("mismatch: not trustworthy") == sum(d.srm_mismatch for d in report.dimensions)


def test_results_table_has_the_same_distinct_columns_in_markdown_and_html(reports: Any) -> None:
    report, _ = reports
    md = to_markdown(report)
    md_header = next(line for line in md.splitlines() if line.startswith("| metric |"))
    md_columns = [c.strip() for c in md_header.strip("|").split("|")]
    page = to_html(report)
    table = page[page.index("<th>metric</th>") :]
    html_columns = re.findall(r"<th[^>]*>([^<]*)</th>", table[: table.index("</tr>")])
    assert md_columns == html_columns
    assert len(set(md_columns)) == len(md_columns)  # the HTML once showed "variant" twice
    assert {"control mean", "variant mean"} <= set(md_columns)
