"""Experiment reports: the models, the renderers (JSON, Markdown, self-contained HTML with inline
SVG charts) and the atomic writer."""

from __future__ import annotations

from dataeng_agents.core.report.model import (
    Decision,
    DecisionReason,
    DimensionRow,
    ExperimentDesignReport,
    ExperimentReport,
    HealthCheck,
    MetricPlan,
    MetricSummary,
    ResultRow,
    TimePoint,
    TimeSeries,
    VariantSummary,
)
from dataeng_agents.core.report.render import render, to_html, to_json, to_markdown
from dataeng_agents.core.report.writer import render_files, write_files, write_report

__all__ = [
    "Decision",
    "DecisionReason",
    "DimensionRow",
    "ExperimentDesignReport",
    "ExperimentReport",
    "HealthCheck",
    "MetricPlan",
    "MetricSummary",
    "ResultRow",
    "TimePoint",
    "TimeSeries",
    "VariantSummary",
    "render",
    "render_files",
    "to_html",
    "to_json",
    "to_markdown",
    "write_files",
    "write_report",
]
