"""Report charts as inline SVG strings (matplotlib, Agg; no files, no external references).

* :func:`forest_plot` — every metric x variant lift with its interval, coloured by verdict.
* :func:`cumulative_plot` — cumulative lift by exposure day with the method's bounds (for the
  sequential method these are confidence sequences: valid at every look).
* :func:`srm_plot` — observed vs expected units per variant.
"""

from __future__ import annotations

import io
import re
from typing import Any

from dataeng_agents.core.report.model import ExperimentReport

GREEN = "#1a7f37"
RED = "#cf222e"
GREY = "#6e7781"
PALETTE = ["#0969da", "#bf3989", "#9a6700", "#8250df", "#1b7c83", "#bc4c00"]


def _figure(width: float, height: float) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    return fig, fig


def _to_svg(fig: Any, salt: str) -> str:
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": salt}):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    svg = buf.getvalue()
    # inline form: no XML prolog/DOCTYPE (which name w3.org URLs) and no RDF metadata block
    svg = re.sub(r"^<\?xml[^>]*>\s*", "", svg)
    svg = re.sub(r"<!DOCTYPE[^>]*>\s*", "", svg)
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)
    # inline SVG in HTML5 gets its namespaces from the parser; dropping the declarations leaves the
    # file without a single URL
    svg = re.sub(r'\s+xmlns(:xlink)?="[^"]*"', "", svg)
    return svg.strip()


def _fmt_axis(ax: Any, relative: bool) -> None:
    if relative:
        from matplotlib.ticker import PercentFormatter

        ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))


def forest_plot(report: ExperimentReport) -> str:
    """One panel per metric, each on its own x scale (one shared axis squeezed the goals into a few
    pixels next to a noisy secondary metric); the interval drawn is the verdict's (adjusted when a
    multiple-testing correction applies)."""
    rows = [r for r in report.results if r.estimate is not None]
    metrics = list(dict.fromkeys(r.metric for r in rows))
    if not metrics:
        fig, _ = _figure(8.0, 1.8)
        fig.add_subplot(1, 1, 1).set_axis_off()
        return _to_svg(fig, "forest")
    per_metric = {m: [r for r in rows if r.metric == m] for m in metrics}
    heights = [0.3 * len(per_metric[m]) + 0.45 for m in metrics]
    fig, _ = _figure(8.0, max(1.8, sum(heights) + 0.6))
    grid = fig.add_gridspec(len(metrics), 1, height_ratios=heights, hspace=0.9)
    relative = report.difference == "relative"
    adjusted_any = False
    for k, metric in enumerate(metrics):
        ax = fig.add_subplot(grid[k, 0])
        labels = []
        for i, r in enumerate(reversed(per_metric[metric])):
            assert r.estimate is not None
            color = GREEN if r.direction == "better" else RED if r.direction == "worse" else GREY
            adjusted = r.adjusted_p_value is not None
            adjusted_any |= adjusted
            lo_v = r.adjusted_ci_lower if adjusted else r.ci_lower
            hi_v = r.adjusted_ci_upper if adjusted else r.ci_upper
            lo = lo_v if lo_v is not None else r.estimate
            hi = hi_v if hi_v is not None else r.estimate
            ax.plot([lo, hi], [i, i], color=color, linewidth=2.2, solid_capstyle="butt")
            ax.plot([r.estimate], [i], marker="o", color=color, markersize=6)
            labels.append(r.variant)
        ax.axvline(0.0, color="#24292f", linewidth=0.8)
        ax.set_yticks(range(len(labels)))
        ax.set_yticklabels(labels, fontsize=9)
        ax.set_ylim(-0.7, len(labels) - 0.3)
        role = per_metric[metric][0].role
        ax.set_title(f"{metric}" + (f"  [{role}]" if role != "secondary" else ""), fontsize=9, loc="left")
        ax.grid(axis="x", color="#d0d7de", linewidth=0.6)
        ax.set_axisbelow(True)
        _fmt_axis(ax, relative)
        ax.tick_params(axis="x", labelsize=8)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    what = "relative lift" if relative else "absolute difference"
    interval = f"{1 - report.alpha:.0%} {report.method} interval" + (
        ", multiple-testing adjusted where corrected" if adjusted_any else "")
    fig.supxlabel(f"{what} vs {report.control} ({interval}); each metric on its own scale", fontsize=9)
    return _to_svg(fig, "forest")


def cumulative_plot(report: ExperimentReport, roles: tuple[str, ...] = ("goal", "guardrail")) -> str:
    metrics = [m.name for m in report.metrics if m.role in roles] or [m.name for m in report.metrics]
    series = [s for s in report.timeseries if s.metric in metrics]
    if not series:
        return ""
    cols = 2 if len(metrics) > 1 else 1
    nrows = (len(metrics) + cols - 1) // cols
    fig, _ = _figure(8.0 if cols == 2 else 6.0, 2.8 * nrows + 0.4)
    variants = sorted({s.variant for s in series}, key=[v.name for v in report.variants].index)
    for k, metric in enumerate(metrics):
        ax = fig.add_subplot(nrows, cols, k + 1)
        for j, v in enumerate(variants):
            s = next((x for x in series if x.metric == metric and x.variant == v), None)
            if s is None:
                continue
            pts = [p for p in s.points if p.estimate is not None]
            if not pts:
                continue
            x = list(range(len(pts)))
            color = PALETTE[j % len(PALETTE)]
            est = [p.estimate for p in pts]
            lo = [p.ci_lower if p.ci_lower is not None else p.estimate for p in pts]
            hi = [p.ci_upper if p.ci_upper is not None else p.estimate for p in pts]
            ax.fill_between(x, lo, hi, color=color, alpha=0.15, linewidth=0)
            ax.plot(x, est, color=color, linewidth=1.8, label=v)
            step = max(1, len(pts) // 6)
            ax.set_xticks(x[::step])
            ax.set_xticklabels([p.day[5:] for p in pts][::step], fontsize=8)
        ax.axhline(0.0, color="#24292f", linewidth=0.8)
        ax.set_title(metric, fontsize=10)
        ax.tick_params(axis="y", labelsize=8)
        if report.difference == "relative":
            from matplotlib.ticker import PercentFormatter

            ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.grid(color="#d0d7de", linewidth=0.5)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        if k == 0:
            ax.legend(fontsize=8, frameon=False)
    fig.supxlabel("first exposure day (cumulative)", fontsize=9)
    fig.tight_layout()
    return _to_svg(fig, "cumulative")


def srm_plot(report: ExperimentReport) -> str:
    total = sum(v.units for v in report.variants)
    fig, _ = _figure(6.0, 2.6)
    ax = fig.add_subplot(1, 1, 1)
    names = [v.name for v in report.variants]
    x = list(range(len(names)))
    observed = [v.units for v in report.variants]
    expected = [v.expected_share * total for v in report.variants]
    srm_fail = any(h.id == "srm" and h.status == "fail" for h in report.health)
    ax.bar([i - 0.2 for i in x], observed, width=0.4, color=RED if srm_fail else PALETTE[0], label="observed")
    ax.bar([i + 0.2 for i in x], expected, width=0.4, color="#afb8c1", label="expected")
    ax.set_xticks(x)
    ax.set_xticklabels(names, fontsize=9)
    ax.tick_params(axis="y", labelsize=8)
    ax.legend(fontsize=8, frameon=False, loc="upper center", ncol=2, bbox_to_anchor=(0.5, 1.18))
    ax.set_ylabel("units", fontsize=9)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return _to_svg(fig, "srm")


def experiment_charts(report: ExperimentReport) -> dict[str, str]:
    """All charts of an analysis report, keyed ``forest``, ``cumulative``, ``srm`` (empty ones omitted)."""
    charts = {"forest": forest_plot(report), "cumulative": cumulative_plot(report), "srm": srm_plot(report)}
    return {k: v for k, v in charts.items() if v}
