"""Renderers: one report model -> JSON, Markdown, or one self-contained HTML file.

The HTML has inline CSS and inline SVG charts only: no scripts, no fonts, no images, no external URL
(it is mailed, attached to Airflow/Prefect artifacts and opened offline).
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

from dataeng_agents.core.report.model import ExperimentDesignReport, ExperimentReport, ResultRow

AnyReport = ExperimentReport | ExperimentDesignReport


def to_json(report: AnyReport) -> str:
    return report.model_dump_json(indent=2)


def _pct(x: float | None, relative: bool = True) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    return f"{x:+.2%}" if relative else f"{x:+.4g}"


def _num(x: float | None) -> str:
    if x is None:
        return "—"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.4g}"


def _p(x: float | None) -> str:
    if x is None:
        return "—"
    return "<0.0001" if x < 1e-4 else f"{x:.4f}"


def _ci(r: ResultRow, relative: bool) -> str:
    return f"[{_pct(r.ci_lower, relative)}, {_pct(r.ci_upper, relative)}]"


_VERDICT_STYLE = {
    "ship": ("#1a7f37", "SHIP"),
    "do not ship": ("#cf222e", "DO NOT SHIP"),
    "keep running": ("#9a6700", "KEEP RUNNING"),
    "investigate": ("#8250df", "INVESTIGATE"),
}
_STATUS = {"pass": "✅ pass", "warn": "⚠️ warn", "fail": "❌ fail"}
_HTML_STATUS = {"pass": "PASS", "warn": "WARN", "fail": "FAIL"}  # no emoji: headless fonts lack them


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def esc(s: str) -> str:
        return s.replace("|", "\\|").replace("\n", " ")

    out = ["| " + " | ".join(esc(h) for h in header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


# ------------------------------------------------------------------------------------------ markdown


def experiment_markdown(report: ExperimentReport) -> str:
    rel = report.difference == "relative"
    d = report.decision
    n = report.narrative
    lines = [f"# Experiment report: {report.name or report.experiment_id}", ""]
    lines.append(
        f"**Decision: {d.verdict.upper()}**"
        + (f" — `{d.variant}`" if d.variant else "")
        + f"  ·  method {report.method}, α = {report.alpha:g}, correction {report.correction}"
    )
    lines.append("")
    if n is not None:
        lines += [f"## {n.headline}", "", n.summary, ""]
        if n.key_points:
            lines += [f"- {p.text}" for p in n.key_points] + [""]
        if n.recommendation:
            lines += [f"**Recommendation.** {n.recommendation}", ""]
    if report.hypothesis:
        lines += ["## Hypothesis", "", report.hypothesis, ""]
    lines += ["## Health checks", ""]
    lines.append(
        _md_table(
            ["check", "status", "detail"], [[h.name, _STATUS[h.status], h.message] for h in report.health]
        )
    )
    lines += ["", "## Results", ""]
    lines.append(
        _md_table(
            [
                "metric",
                "role",
                "variant",
                "control",
                "variant mean",
                "lift" if rel else "difference",
                "interval",
                "p",
                "adj. p",
                "verdict",
            ],
            [
                [
                    r.metric + (" (CUPED)" if r.cuped else ""),
                    r.role,
                    r.variant,
                    _num(r.control_mean),
                    _num(r.variant_mean),
                    _pct(r.estimate, rel),
                    _ci(r, rel),
                    _p(r.p_value),
                    _p(r.adjusted_p_value),
                    (r.error and f"not computed: {r.error}")
                    or (r.direction if r.significant else "not significant"),
                ]
                for r in report.results
            ],
        )
    )
    lines += ["", "## Decision rules applied", ""]
    lines += [f"- **{r.rule}** {r.text}" for r in d.reasons]
    lines += ["", "## Variants", ""]
    lines.append(
        _md_table(
            ["variant", "units", "observed share", "expected share"],
            [
                [
                    v.name + (" (control)" if v.is_control else ""),
                    f"{v.units:,}",
                    f"{v.observed_share:.2%}",
                    f"{v.expected_share:.2%}",
                ]
                for v in report.variants
            ],
        )
    )
    lines.append("")
    lines.append(f"{report.excluded_units:,} units exposed to several variants were excluded.")
    if report.dimensions:
        lines += ["", "## Dimensions (exploratory)", ""]
        lines.append(
            _md_table(
                [
                    "dimension",
                    "level",
                    "metric",
                    "variant",
                    "units",
                    "lift" if rel else "difference",
                    "interval",
                    "p",
                ],
                [
                    [
                        x.dimension,
                        x.level,
                        x.metric,
                        x.variant,
                        f"{x.units:,}",
                        _pct(x.estimate, rel),
                        f"[{_pct(x.ci_lower, rel)}, {_pct(x.ci_upper, rel)}]",
                        _p(x.p_value),
                    ]
                    for x in report.dimensions
                ],
            )
        )
    if n is not None and (n.caveats or n.next_steps):
        lines += ["", "## Caveats and next steps", ""]
        lines += [f"- {c}" for c in n.caveats] + [f"- Next: {s}" for s in n.next_steps]
    if n is not None:
        lines += ["", f"_Prose written by {n.provenance.written_by}; every number comes from the statistics engine._"]
    lines += ["", "## Metric definitions", ""]
    lines.append(
        _md_table(
            ["metric", "kind", "role", "window", "capping", "CUPED", "lower is better", "description"],
            [
                [
                    m.name,
                    m.kind,
                    m.role,
                    f"{m.window_hours:g} h" if m.window_hours else "to end",
                    m.capped or "—",
                    "yes" if m.cuped else "no",
                    "yes" if m.inverse else "no",
                    m.description,
                ]
                for m in report.metrics
            ],
        )
    )
    interval = (
        f" · data interval {report.data_interval[0]} – {report.data_interval[1]}"
        if report.data_interval
        else ""
    )
    lines += ["", f"_Generated {report.generated_at} on {report.dialect}{interval}._", ""]
    return "\n".join(lines)


def design_markdown(report: ExperimentDesignReport) -> str:
    n = report.narrative
    lines = [f"# Experiment design: {report.name or report.experiment_id}", ""]
    if n is not None:
        lines += [f"**{n.headline}**", ""]
    lines += ["## Hypothesis", "", report.hypothesis or "_No hypothesis written yet._", ""]
    lines += ["## Variants and allocation", ""]
    lines.append(
        _md_table(
            ["variant", "share of traffic"],
            [
                [v.name + (" (control)" if v.is_control else ""), f"{v.expected_share:.1%}"]
                for v in report.variants
            ],
        )
    )
    start, end = report.baseline_period
    lines += [
        "",
        "## Baseline",
        "",
        f"Baseline period {start or '…'} – {end or '…'}: {report.baseline_units:,} units over "
        f"{report.baseline_days:g} days = **{report.traffic_per_day:,.0f} units/day** "
        f"({report.traffic_fraction:.0%} of it enters the experiment).",
        "",
        "## Metric plan",
        "",
    ]
    lines.append(
        _md_table(
            [
                "metric",
                "role",
                "kind",
                "baseline mean",
                "baseline variance",
                "MDE (relative)",
                "units / variant",
                "days",
                "note",
            ],
            [
                [
                    m.name,
                    m.role,
                    m.kind,
                    _num(m.baseline_mean),
                    _num(m.baseline_variance),
                    f"{m.mde:.1%}" if m.mde else "—",
                    f"{m.per_variant:,}" if m.per_variant else "—",
                    f"{m.days:.1f}" if m.days else "—",
                    m.note or "",
                ]
                for m in report.metrics
            ],
        )
    )
    lines += [
        "",
        "## Analysis plan",
        "",
        f"- Method: **{report.method}** at α = {report.alpha:g}, power {report.power:.0%} for the sizes above.",
        f"- Required: **{report.per_variant:,} units per variant**, about **{math.ceil(report.duration_days or 0)} days**."
        if report.per_variant
        else "- Required: not sized (no MDE on a goal metric).",
        "- Decision: ship when a goal metric improves with no guardrail regression and healthy checks "
        "(SRM, multiple exposure, pre-period balance); see docs/experiments.md for the written rules.",
        "",
    ]
    if n is not None:
        lines += (
            ["## Notes", ""] + [f"- {c}" for c in n.caveats] + [f"- Next: {s}" for s in n.next_steps] + [""]
        )
        lines += [f"_Prose written by {n.provenance.written_by}._", ""]
    lines.append(f"_Generated {report.generated_at} on {report.dialect}._")
    return "\n".join(lines) + "\n"


def to_markdown(report: AnyReport) -> str:
    return experiment_markdown(report) if isinstance(report, ExperimentReport) else design_markdown(report)


# -------------------------------------------------------------------------------------------- html

_CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:#1f2328;margin:0;background:#f6f8fa}
main{max-width:1080px;margin:0 auto;padding:24px 32px;background:#fff}
h1{font-size:26px;margin:8px 0 4px}h2{font-size:19px;margin:28px 0 8px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
.meta{color:#57606a;font-size:13px}.badge{display:inline-block;color:#fff;font-weight:700;padding:6px 14px;border-radius:6px;font-size:15px;letter-spacing:.5px}
.headline{font-size:18px;font-weight:600;margin:14px 0 6px}
table{border-collapse:collapse;width:100%;font-size:13px;margin:6px 0}th,td{border:1px solid #d0d7de;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.better{color:#1a7f37;font-weight:600}.worse{color:#cf222e;font-weight:600}.flat{color:#57606a}
.pass{color:#1a7f37}.warn{color:#9a6700}.fail{color:#cf222e;font-weight:700}
.chart{margin:8px 0 16px}.chart svg{max-width:100%;height:auto}
pre{background:#f6f8fa;padding:12px;overflow:auto;font-size:12px}details{margin:10px 0}
ul{margin:6px 0 6px 20px;padding:0}li{margin:3px 0}
"""


def _e(s: object) -> str:
    return html.escape(str(s), quote=True)


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]], num_cols: Sequence[int] = ()) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = []
        for i, c in enumerate(row):
            cls = ' class="num"' if i in num_cols else ""
            cells.append(f"<td{cls}>{c}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body><main>{body}</main></body></html>\n"
    )


def experiment_html(report: ExperimentReport, *, charts: bool = True) -> str:
    from dataeng_agents.core.report.charts import experiment_charts

    rel = report.difference == "relative"
    d = report.decision
    n = report.narrative
    color, label = _VERDICT_STYLE[d.verdict]
    parts = [
        f"<h1>{_e(report.name or report.experiment_id)}</h1>",
        f'<div class="meta">experiment <code>{_e(report.experiment_id)}</code> · {report.total_units:,} units · '
        f"{_e(report.method)} analysis, α = {report.alpha:g}, correction {_e(report.correction)} · generated "
        f"{_e(report.generated_at)} on {_e(report.dialect)}</div>",
        f'<p><span class="badge" style="background:{color}">{label}'
        + (f" · {_e(d.variant)}" if d.variant else "")
        + "</span></p>",
    ]
    if n is not None:
        parts.append(f'<div class="headline">{_e(n.headline)}</div><p>{_e(n.summary)}</p>')
        if n.key_points:
            parts.append("<ul>" + "".join(f"<li>{_e(p.text)}</li>" for p in n.key_points) + "</ul>")
        if n.recommendation:
            parts.append(f"<p><strong>Recommendation.</strong> {_e(n.recommendation)}</p>")
    if report.hypothesis:
        parts.append(f"<h2>Hypothesis</h2><p>{_e(report.hypothesis)}</p>")
    parts.append("<h2>Health checks</h2>")
    parts.append(
        _html_table(
            ["check", "status", "detail"],
            [
                [_e(h.name), f'<span class="{h.status}">{_HTML_STATUS[h.status]}</span>', _e(h.message)]
                for h in report.health
            ],
        )
    )
    svgs = experiment_charts(report) if charts else {}
    parts.append("<h2>Results</h2>")
    if "forest" in svgs:
        parts.append(f'<div class="chart" id="chart-forest">{svgs["forest"]}</div>')
    parts.append(
        _html_table(
            [
                "metric",
                "role",
                "variant",
                "control",
                "variant",
                "lift" if rel else "difference",
                "interval",
                "p",
                "adj. p",
                "verdict",
            ],
            [
                [
                    _e(r.metric) + (" <small>(CUPED)</small>" if r.cuped else ""),
                    _e(r.role),
                    _e(r.variant),
                    _num(r.control_mean),
                    _num(r.variant_mean),
                    _pct(r.estimate, rel),
                    _ci(r, rel),
                    _p(r.p_value),
                    _p(r.adjusted_p_value),
                    f'<span class="flat">not computed: {_e(r.error)}</span>'
                    if r.error
                    else f'<span class="{r.direction}">{_e(r.direction if r.significant else "not significant")}</span>',
                ]
                for r in report.results
            ],
            num_cols=(3, 4, 5, 6, 7, 8),
        )
    )
    parts.append(
        "<h2>Decision rules applied</h2><ul>"
        + "".join(f"<li><strong>{_e(r.rule)}</strong> {_e(r.text)}</li>" for r in d.reasons)
        + "</ul>"
    )
    if "cumulative" in svgs:
        parts.append(
            '<h2>Cumulative lift over time</h2><p class="meta">Lift of units first exposed up to each day; the band is the '
            f"{_e(report.method)} interval"
            + (" (a confidence sequence, valid at every daily look)" if report.method == "sequential" else "")
            + f'.</p><div class="chart" id="chart-cumulative">{svgs["cumulative"]}</div>'
        )
    parts.append("<h2>Traffic</h2>")
    if "srm" in svgs:
        parts.append(f'<div class="chart" id="chart-srm">{svgs["srm"]}</div>')
    parts.append(
        _html_table(
            ["variant", "units", "observed share", "expected share"],
            [
                [
                    _e(v.name) + (" (control)" if v.is_control else ""),
                    f"{v.units:,}",
                    f"{v.observed_share:.2%}",
                    f"{v.expected_share:.2%}",
                ]
                for v in report.variants
            ],
            num_cols=(1, 2, 3),
        )
        + f'<p class="meta">{report.excluded_units:,} units exposed to several variants were excluded.</p>'
    )
    if report.dimensions:
        parts.append(
            "<h2>Dimensions (exploratory)</h2><details><summary>Per-slice results (not corrected for multiple slices)</summary>"
        )
        parts.append(
            _html_table(
                [
                    "dimension",
                    "level",
                    "metric",
                    "variant",
                    "units",
                    "lift" if rel else "difference",
                    "interval",
                    "p",
                ],
                [
                    [
                        _e(x.dimension),
                        _e(x.level),
                        _e(x.metric),
                        _e(x.variant),
                        f"{x.units:,}",
                        _pct(x.estimate, rel),
                        f"[{_pct(x.ci_lower, rel)}, {_pct(x.ci_upper, rel)}]",
                        _p(x.p_value),
                    ]
                    for x in report.dimensions
                ],
                num_cols=(4, 5, 6, 7),
            )
            + "</details>"
        )
    if n is not None and (n.caveats or n.next_steps):
        parts.append(
            "<h2>Caveats and next steps</h2><ul>"
            + "".join(f"<li>{_e(c)}</li>" for c in n.caveats)
            + "".join(f"<li>Next: {_e(s)}</li>" for s in n.next_steps)
            + "</ul>"
        )
    parts.append("<h2>Metric definitions</h2>")
    parts.append(
        _html_table(
            ["metric", "kind", "role", "window", "capping", "CUPED", "lower is better", "description"],
            [
                [
                    _e(m.name),
                    _e(m.kind),
                    _e(m.role),
                    f"{m.window_hours:g} h" if m.window_hours else "to end",
                    _e(m.capped or "—"),
                    "yes" if m.cuped else "no",
                    "yes" if m.inverse else "no",
                    _e(m.description),
                ]
                for m in report.metrics
            ],
        )
    )
    if report.sql:
        parts.append(
            f"<details><summary>SQL ({_e(report.dialect)})</summary><pre>{_e(report.sql)}</pre></details>"
        )
    if n is not None:
        parts.append(
            f'<p class="meta">Prose written by {_e(n.provenance.written_by)}; every number comes from the statistics engine.</p>'
        )
    return _page(f"Experiment report: {report.experiment_id}", "".join(parts))


def design_html(report: ExperimentDesignReport) -> str:
    n = report.narrative
    parts = [f"<h1>Experiment design: {_e(report.name or report.experiment_id)}</h1>"]
    if n is not None:
        parts.append(f'<div class="headline">{_e(n.headline)}</div>')
    parts.append(f"<h2>Hypothesis</h2><p>{_e(report.hypothesis or 'No hypothesis written yet.')}</p>")
    start, end = report.baseline_period
    parts.append(
        f"<h2>Baseline</h2><p>{_e(start or '…')} – {_e(end or '…')}: {report.baseline_units:,} units over "
        f"{report.baseline_days:g} days = <strong>{report.traffic_per_day:,.0f} units/day</strong>.</p>"
    )
    parts.append("<h2>Metric plan</h2>")
    parts.append(
        _html_table(
            [
                "metric",
                "role",
                "kind",
                "baseline mean",
                "baseline variance",
                "MDE",
                "units / variant",
                "days",
                "note",
            ],
            [
                [
                    _e(m.name),
                    _e(m.role),
                    _e(m.kind),
                    _num(m.baseline_mean),
                    _num(m.baseline_variance),
                    f"{m.mde:.1%}" if m.mde else "—",
                    f"{m.per_variant:,}" if m.per_variant else "—",
                    f"{m.days:.1f}" if m.days else "—",
                    _e(m.note or ""),
                ]
                for m in report.metrics
            ],
            num_cols=(3, 4, 5, 6, 7),
        )
    )
    if n is not None:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{_e(c)}</li>" for c in n.caveats) + "</ul>")
        parts.append(f'<p class="meta">Prose written by {_e(n.provenance.written_by)}.</p>')
    return _page(f"Experiment design: {report.experiment_id}", "".join(parts))


def to_html(report: AnyReport, *, charts: bool = True) -> str:
    return (
        experiment_html(report, charts=charts)
        if isinstance(report, ExperimentReport)
        else design_html(report)
    )


def render(report: AnyReport, fmt: str, *, charts: bool = True) -> str:
    """Render one format: ``json``, ``md`` (or ``markdown``) or ``html``."""
    if fmt == "json":
        return to_json(report)
    if fmt in ("md", "markdown"):
        return to_markdown(report)
    if fmt == "html":
        return to_html(report, charts=charts)
    from dataeng_agents.core.errors import InputError

    raise InputError("formats", f"unknown report format {fmt!r}: use json, md or html")
