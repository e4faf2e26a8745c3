"""Renderers: one report model -> JSON, Markdown, or one self-contained HTML file.

The HTML has inline CSS and inline SVG charts only: no scripts, no fonts, no images, no external URL
(it is mailed, attached to Airflow/Prefect artifacts and opened offline).
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence
from functools import cache
from importlib.resources import files
from string import Template

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


def _results_header(report: ExperimentReport) -> list[str]:
    """The column names of the results table, the same in Markdown and HTML."""
    return [
        "metric",
        "role",
        "variant",
        "control mean",
        "variant mean",
        "lift" if report.difference == "relative" else "difference",
        "interval",
        "impact / day",
        _p_label(report.method),
        "adj. p",
        "verdict",
    ]


def _p_label(method: str) -> str:
    # the sequential p-value is always valid (1 / the e-value of the confidence sequence): it stays at 1
    # until the evidence against "no effect" builds up, and may be read at every daily look
    return "always-valid p (1 = no evidence yet)" if method == "sequential" else "p"


def _ci(r: ResultRow, relative: bool) -> str:
    """The interval; with a multiple-testing correction the adjusted one (the verdict's) first."""
    plain = f"[{_pct(r.ci_lower, relative)}, {_pct(r.ci_upper, relative)}]"
    if r.adjusted_p_value is None:
        return plain
    adjusted = f"[{_pct(r.adjusted_ci_lower, relative)}, {_pct(r.adjusted_ci_upper, relative)}]"
    return f"{adjusted} adjusted; {plain} unadjusted"


def _signed(x: float) -> str:
    return ("+" if x > 0 else "") + _num(x)


def _impact(r: ResultRow) -> str:
    """The absolute impact per day with its interval, e.g. ``+93.4 [+21.5, +170]``."""
    if r.impact_per_day is None:
        return "—"
    if r.impact_ci_lower is None or r.impact_ci_upper is None:
        return _signed(r.impact_per_day)
    return f"{_signed(r.impact_per_day)} [{_signed(r.impact_ci_lower)}, {_signed(r.impact_ci_upper)}]"


def _impact_note(report: ExperimentReport) -> str:
    if report.units_per_day is None:
        return ""
    return (
        f"Impact / day: the change in the metric's daily total if each day's {report.units_per_day:,.0f} "
        "newly exposed units all got the variant (ratio metrics: none, their denominator moves too)."
    )


_SLICE_NOTE = (
    "Slices never feed the decision. Adjusted p: Benjamini-Hochberg over every slice comparison; "
    "a slice whose own sample ratio test fails is marked: its comparison is not trustworthy."
)

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
            _results_header(report),
            [
                [
                    r.metric + (" (CUPED)" if r.cuped else ""),
                    r.role,
                    r.variant,
                    _num(r.control_mean),
                    _num(r.variant_mean),
                    _pct(r.estimate, rel),
                    _ci(r, rel),
                    _impact(r),
                    _p(r.p_value),
                    _p(r.adjusted_p_value),
                    (r.error and f"not computed: {r.error}")
                    or (r.direction if r.significant else "not significant"),
                ]
                for r in report.results
            ],
        )
    )
    if report.units_per_day is not None:
        lines += ["", _impact_note(report)]
    if d.per_variant:
        lines += ["", "## Verdict per variant", ""]
        lines += [f"- `{v}`: **{verdict.upper()}**" for v, verdict in d.per_variant.items()]
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
        lines += ["", "## Dimensions (exploratory)", "", _SLICE_NOTE, ""]
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
                    "adj. p (BH)",
                    "slice SRM p",
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
                        _p(x.adjusted_p_value),
                        _p(x.srm_p_value) + (" mismatch: not trustworthy" if x.srm_mismatch else ""),
                    ]
                    for x in report.dimensions
                ],
            )
        )
    if n is not None and (n.caveats or n.next_steps):
        lines += ["", "## Caveats and next steps", ""]
        lines += [f"- {c}" for c in n.caveats] + [f"- Next: {s}" for s in n.next_steps]
    if n is not None:
        lines += [
            "",
            f"_Prose written by {n.provenance.written_by}; every number comes from the statistics engine._",
        ]
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
# The markup lives in templates/*.html (package data); this code only escapes values, formats
# numbers and picks the optional sections.

_TEMPLATES = "dataeng_agents.core.report.templates"
_SECTION = re.compile(r"<!-- section: (\w+) -->")


def _template_text(name: str) -> str:
    return files(_TEMPLATES).joinpath(name).read_text(encoding="utf-8")


@cache
def _page_template() -> Template:
    return Template(_template_text("page.html"))


@cache
def _sections(name: str) -> dict[str, Template]:
    """The named sections of a template file, layout whitespace (line breaks, indentation) dropped."""
    parts = _SECTION.split(_template_text(name))
    return {
        parts[i]: Template("".join(line.strip() for line in parts[i + 1].splitlines()))
        for i in range(1, len(parts), 2)
    }


def _fill(template: str, section: str, **values: object) -> str:
    return _sections(template)[section].substitute(values)


def _e(s: object) -> str:
    return html.escape(str(s), quote=True)


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]], num_cols: Sequence[int] = ()) -> str:
    head = "".join(_fill("table.html", "header_cell", text=_e(h)) for h in header)
    body = "".join(
        _fill(
            "table.html",
            "row",
            cells="".join(
                _fill("table.html", "number_cell" if i in num_cols else "cell", html=c)
                for i, c in enumerate(row)
            ),
        )
        for row in rows
    )
    return _fill("table.html", "table", head=head, body=body)


def _page(title: str, body: str) -> str:
    return _page_template().substitute(title=_e(title), body=body)


def _items(template: str, texts: Sequence[str], section: str = "item") -> str:
    return "".join(_fill(template, section, text=_e(t)) for t in texts)


def experiment_html(report: ExperimentReport, *, charts: bool = True) -> str:
    """The self-contained HTML page of an analysis (templates/experiment.html, inline SVG charts)."""
    from dataeng_agents.core.report.charts import experiment_charts

    t = "experiment.html"
    rel = report.difference == "relative"
    d = report.decision
    n = report.narrative
    color, label = _VERDICT_STYLE[d.verdict]
    svgs = experiment_charts(report) if charts else {}

    def chart(name: str) -> str:
        return _fill(t, "chart", name=name, svg=svgs[name]) if name in svgs else ""

    narrative = ""
    if n is not None:
        narrative = _fill(
            t,
            "narrative",
            headline=_e(n.headline),
            summary=_e(n.summary),
            key_points=_fill(t, "list", items=_items(t, [p.text for p in n.key_points]))
            if n.key_points
            else "",
            recommendation=_fill(t, "recommendation", text=_e(n.recommendation)) if n.recommendation else "",
        )
    health_table = _html_table(
        ["check", "status", "detail"],
        [
            [_e(h.name), f'<span class="{h.status}">{_HTML_STATUS[h.status]}</span>', _e(h.message)]
            for h in report.health
        ],
    )
    results_table = _html_table(
        _results_header(report),
        [
            [
                _e(r.metric) + (" <small>(CUPED)</small>" if r.cuped else ""),
                _e(r.role),
                _e(r.variant),
                _num(r.control_mean),
                _num(r.variant_mean),
                _pct(r.estimate, rel),
                _ci(r, rel),
                _impact(r),
                _p(r.p_value),
                _p(r.adjusted_p_value),
                f'<span class="flat">not computed: {_e(r.error)}</span>'
                if r.error
                else f'<span class="{r.direction}">{_e(r.direction if r.significant else "not significant")}</span>',
            ]
            for r in report.results
        ],
        num_cols=(3, 4, 5, 6, 7, 8, 9),
    )
    cumulative = ""
    if "cumulative" in svgs:
        cumulative = _fill(
            t,
            "cumulative",
            method=_e(report.method),
            sequential_note=" (a confidence sequence, valid at every daily look)"
            if report.method == "sequential"
            else "",
            chart=chart("cumulative"),
        )
    traffic_table = _html_table(
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
    dimensions = ""
    if report.dimensions:
        dimensions = _fill(
            t,
            "dimensions",
            table=_html_table(
                [
                    "dimension",
                    "level",
                    "metric",
                    "variant",
                    "units",
                    "lift" if rel else "difference",
                    "interval",
                    "p",
                    "adj. p (BH)",
                    "slice SRM p",
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
                        _p(x.adjusted_p_value),
                        _p(x.srm_p_value)
                        + (' <span class="fail">mismatch: not trustworthy</span>' if x.srm_mismatch else ""),
                    ]
                    for x in report.dimensions
                ],
                num_cols=(4, 5, 6, 7, 8, 9),
            ),
        )
    caveats = ""
    if n is not None and (n.caveats or n.next_steps):
        caveats = _fill(
            t, "caveats", items=_items(t, n.caveats) + _items(t, n.next_steps, section="next_step")
        )
    metrics_table = _html_table(
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
    body = _fill(
        t,
        "page",
        title=_e(report.name or report.experiment_id),
        experiment_id=_e(report.experiment_id),
        total_units=f"{report.total_units:,}",
        method=_e(report.method),
        alpha=f"{report.alpha:g}",
        correction=_e(report.correction),
        generated_at=_e(report.generated_at),
        dialect=_e(report.dialect),
        badge_color=color,
        badge_label=label,
        badge_variant=f" · {_e(d.variant)}" if d.variant else "",
        variant_badges=_fill(
            t,
            "variant_badges",
            badges="".join(
                _fill(
                    t,
                    "variant_badge",
                    color=_VERDICT_STYLE[verdict][0],
                    variant=_e(v),
                    label=_VERDICT_STYLE[verdict][1],
                )
                for v, verdict in d.per_variant.items()
            ),
        )
        if d.per_variant
        else "",
        narrative=narrative,
        hypothesis=_fill(t, "hypothesis", text=_e(report.hypothesis)) if report.hypothesis else "",
        health_table=health_table,
        forest_chart=chart("forest"),
        results_table=results_table,
        impact_note=f'<p class="meta">{_e(_impact_note(report))}</p>'
        if report.units_per_day is not None
        else "",
        decision_rules="".join(
            _fill(t, "decision_rule", rule=_e(r.rule), text=_e(r.text)) for r in d.reasons
        ),
        cumulative=cumulative,
        srm_chart=chart("srm"),
        traffic_table=traffic_table,
        excluded_units=f"{report.excluded_units:,}",
        dimensions=dimensions,
        caveats=caveats,
        metrics_table=metrics_table,
        sql=_fill(t, "sql", dialect=_e(report.dialect), sql=_e(report.sql)) if report.sql else "",
        provenance=_fill(t, "provenance", written_by=_e(n.provenance.written_by)) if n is not None else "",
    )
    return _page(f"Experiment report: {report.experiment_id}", body)


def design_html(report: ExperimentDesignReport) -> str:
    """The self-contained HTML page of a design (templates/design.html)."""
    t = "design.html"
    n = report.narrative
    start, end = report.baseline_period
    metrics_table = _html_table(
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
    body = _fill(
        t,
        "page",
        title=_e(report.name or report.experiment_id),
        headline=_fill(t, "headline", text=_e(n.headline)) if n is not None else "",
        hypothesis=_e(report.hypothesis or "No hypothesis written yet."),
        baseline_start=_e(start or "…"),
        baseline_end=_e(end or "…"),
        baseline_units=f"{report.baseline_units:,}",
        baseline_days=f"{report.baseline_days:g}",
        traffic_per_day=f"{report.traffic_per_day:,.0f}",
        metrics_table=metrics_table,
        notes=_fill(t, "notes", items=_items(t, n.caveats), written_by=_e(n.provenance.written_by))
        if n is not None
        else "",
    )
    return _page(f"Experiment design: {report.experiment_id}", body)


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
