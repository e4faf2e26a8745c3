"""The data-pipeline command: review DAGs/flows/specs and design pipelines, plus their narration tasks.

This is the facade the CLI and both orchestrator adapters call:

- :func:`review_paths` -> :class:`ReviewResult` (findings with stable ids, ``exit_code``, renderers)
- :func:`design_pipeline` -> :class:`PipelineDesign`
- :func:`review_narration_task` / :func:`design_narration_task` -> a :class:`NarrationTask` whose
  deterministic template writes :class:`ReviewAdvice` / :class:`ArchitectureAdvice` that only refers
  to finding / reason ids; :func:`narrate_review` / :func:`narrate_design` run it with a narrator.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from dataeng_agents.core.design import PipelineDesign, PipelineSpec, design_pipeline
from dataeng_agents.core.narrative import (
    ArchitectureAdvice,
    NarrationTask,
    NarrativePoint,
    Narrator,
    ReviewAdvice,
    TemplateNarrator,
)
from dataeng_agents.core.review import RULES, ReviewResult, review_paths
from dataeng_agents.core.review.advice import findings_advice

__all__ = [
    "PipelineDesign",
    "ReviewResult",
    "design_narration_task",
    "design_pipeline",
    "narrate_design",
    "narrate_review",
    "render_review",
    "render_review_files",
    "review_markdown",
    "review_narration_task",
    "review_paths",
    "scaffold_project",
    "write_review",
]

MAX_FACT_FINDINGS = 200
MAX_IDS_PER_PRIORITY = 50


def _review_facts(result: ReviewResult) -> dict[str, Any]:
    ranked = sorted(result.findings, key=lambda f: (-f.severity.rank, f.rule_id, f.path, f.line))
    return {
        "summary": result.summary(),
        "findings": [
            {
                "id": f.id,
                "rule_id": f.rule_id,
                "severity": f.severity.value,
                "category": f.category,
                "path": f.path,
                "line": f.line,
                "subject": f.subject,
                "message": f.message,
            }
            for f in ranked[:MAX_FACT_FINDINGS]
        ],
        "findings_omitted": max(0, len(ranked) - MAX_FACT_FINDINGS),
        "rules": {
            rid: {"title": RULES[rid].title, "rationale": RULES[rid].rationale, "fix": RULES[rid].fix}
            for rid in sorted({f.rule_id for f in ranked})
        },
        "file_errors": [{"path": f.path, "error": f.error} for f in result.files if f.status == "error"],
        "unresolved": [u.model_dump() for u in result.unresolved[:50]],
    }


def review_advice_template(result: ReviewResult) -> ReviewAdvice:
    """Deterministic advice: one priority per rule, errors first, then by how often the rule fired."""
    caveats: list[str] = []
    errors = [f for f in result.files if f.status == "error"]
    if errors:
        caveats.append(
            f"{len(errors)} file(s) could not be reviewed: "
            + "; ".join(f"{f.path}: {f.error}" for f in errors[:5])
        )
    if result.unresolved:
        caveats.append(
            f"{len(result.unresolved)} check(s) depend on values built at parse time; rerun with --runtime."
        )
    if not result.runtime:
        caveats.append("Static review: the files were not imported, so parse time was not measured.")
    return findings_advice(
        result.findings,
        RULES,
        reviewed=f"{len(result.files)} file(s)",
        counts=result.counts(),
        profile=result.profile,
        caveats=caveats,
        max_ids=MAX_IDS_PER_PRIORITY,
    )


def review_narration_task(
    result: ReviewResult, *, persona: str = "data-engineer"
) -> NarrationTask[ReviewAdvice]:
    subject = f"review:{result.profile}:{len(result.files)}files"
    return NarrationTask(
        kind="review",
        subject_id=subject,
        facts=_review_facts(result),
        output_model=ReviewAdvice,
        template=lambda: review_advice_template(result),
        persona=persona,
    )


def _design_facts(design: PipelineDesign) -> dict[str, Any]:
    return {
        "spec": design.spec_name,
        "recommendation": {
            "id": design.recommendation,
            "label": design.recommendation_label,
            "schedule": design.schedule,
        },
        "comparison": [
            {
                "id": s.architecture,
                "label": s.label,
                "score": s.score,
                "reasons": [r.model_dump() for r in s.reasons],
            }
            for s in design.comparison
        ],
        "components": [c.model_dump() for c in design.components()],
        "cost": design.cost.model_dump(),
        "spec_findings": design.spec_findings,
        "open_questions": design.open_questions,
    }


def architecture_advice_template(design: PipelineDesign) -> ArchitectureAdvice:
    best = design.comparison[0]
    runner = design.comparison[1] if len(design.comparison) > 1 else None
    summary = f"Recommended: {best.label} (score {best.score}"
    summary += f" vs {runner.label} at {runner.score})." if runner else ")."
    summary += f" Rough cost ${design.cost.total_usd_per_month:,.0f}/month."
    rationale = [NarrativePoint(text=r.text, refs=[r.id]) for r in best.reasons if r.points > 0]
    if runner is not None:
        against = [r for r in runner.reasons if r.points < 0]
        if against:
            rationale.append(
                NarrativePoint(
                    text=f"{runner.label} ranks second: {against[0].text}", refs=[r.id for r in against]
                )
            )
    risks = [NarrativePoint(text=r.text, refs=[r.id]) for r in best.reasons if r.points < 0]
    risks += [
        NarrativePoint(text=f"{f['rule_id']}: {f['message']}", refs=[f["id"]]) for f in design.spec_findings
    ]
    biggest = max(design.cost.items, key=lambda i: i.usd_per_month)
    risks.append(
        NarrativePoint(
            text=f"The largest cost item is {biggest.name} ({biggest.formula}).", refs=[biggest.id]
        )
    )
    steps = [
        f"{c.area}: {c.choice}"
        for c in [
            design.warehouse,
            *design.ingestion,
            *design.deletes,
            design.orchestration,
            design.transformation,
        ]
    ]
    steps += [f"storage: {c.choice}" for c in design.storage]
    steps.append(
        f"add the {len(design.quality_checks)} data-quality checks and {len(design.monitoring)} monitors"
    )
    steps += [f"fix spec finding {f['rule_id']}: {f['fix']}" for f in design.spec_findings]
    steps += [f"answer: {q}" for q in design.open_questions]
    return ArchitectureAdvice(summary=summary, rationale=rationale, risks=risks, next_steps=steps)


def design_narration_task(
    design: PipelineDesign, *, persona: str | None = None
) -> NarrationTask[ArchitectureAdvice]:
    return NarrationTask(
        kind="architecture",
        subject_id=f"design:{design.spec_name}",
        facts=_design_facts(design),
        output_model=ArchitectureAdvice,
        template=lambda: architecture_advice_template(design),
        persona=persona,
    )


def narrate_review(result: ReviewResult, narrator: Narrator | None = None) -> ReviewAdvice:
    return (narrator or TemplateNarrator()).narrate(review_narration_task(result))


def narrate_design(design: PipelineDesign, narrator: Narrator | None = None) -> ArchitectureAdvice:
    return (narrator or TemplateNarrator()).narrate(design_narration_task(design))


def scaffold_project(
    spec: PipelineSpec | str | Path | dict[str, Any], design: PipelineDesign | None = None
) -> Any:
    """The runnable project for ``spec`` (:class:`~dataeng_agents.core.scaffold.Project`)."""
    from dataeng_agents.core.scaffold import scaffold_project as build

    return build(spec, design)


def design_with_dag(spec: PipelineSpec | str | Path | dict[str, Any]) -> tuple[PipelineDesign, str]:
    """The design and the source of the Airflow DAG of its scaffold (``dags/<name>.py``)."""
    from dataeng_agents.core.design import load_spec
    from dataeng_agents.core.scaffold import render_dag
    from dataeng_agents.core.scaffold.render import ident

    sp = load_spec(spec)
    design = design_pipeline(sp)
    return design, render_dag(sp, design, f"{ident(sp.name)}_pipeline")


REVIEW_FORMATS = ("json", "md", "sarif", "html")
_REVIEW_FILE_NAMES = {
    "json": "review.json",
    "md": "review.md",
    "sarif": "review.sarif",
    "html": "review.html",
}


def review_markdown(result: ReviewResult, advice: ReviewAdvice | None = None) -> str:
    """The review's findings, followed by the advice when there is one: what ``dataeng review -f markdown
    [--explain]`` prints and both adapters write as ``review.md``."""
    if advice is None:
        return result.to_markdown()
    lines = [result.to_markdown().rstrip(), "", "## Advice", "", advice.summary, ""]
    for i, priority in enumerate(advice.priorities, start=1):
        ids = ", ".join(f"`{fid}`" for fid in priority.finding_ids)
        lines.append(f"{i}. **{priority.why}** {priority.how_to_fix} ({ids})")
    lines += ["", f"_Advice written by {advice.provenance.written_by}._", ""]
    return "\n".join(lines)


def _review_html(result: ReviewResult, advice: ReviewAdvice | None, title: str) -> str:
    from dataeng_agents.core.report.render import _e, _html_table, _page

    counts = result.counts()
    rows = [
        [
            _e(f.severity.value),
            _e(f.rule_id),
            _e(f"{f.path}:{f.line}"),
            _e(f.message),
            f"<code>{_e(f.id)}</code>",
        ]
        for f in sorted(result.findings, key=lambda f: (-f.severity.rank, f.path, f.line))
    ]
    advice_html = ""
    if advice is not None:
        priorities = "".join(
            f"<li><strong>{_e(p.why)}</strong> {_e(p.how_to_fix)} "
            f"({', '.join(f'<code>{_e(i)}</code>' for i in p.finding_ids)})</li>"
            for p in advice.priorities
        )
        advice_html = (
            f"<h2>Advice</h2><p>{_e(advice.summary)}</p><ol>{priorities}</ol>"
            f"<p><em>Advice written by {_e(advice.provenance.written_by)}.</em></p>"
        )
    body = (
        f"<h1>{_e(title)}</h1>"
        f"<p>{len(result.files)} files, profile {_e(result.profile)}, Airflow {_e(result.airflow_version)}: "
        f"{counts['error']} errors, {counts['warn']} warnings, {counts['info']} notes.</p>"
        + advice_html
        + "<h2>Findings</h2>"
        + _html_table(["severity", "rule", "where", "message", "id"], rows)
    )
    return _page(title, body)


def render_review(
    result: ReviewResult, advice: ReviewAdvice | None, fmt: str, *, title: str = "Pipeline review"
) -> str:
    """One review (and its advice, when given) in one format: ``json``, ``md``/``markdown``, ``sarif`` or
    ``html``. The one renderer of the CLI (``dataeng review -f``) and the files both adapters write."""
    from dataeng_agents.core.errors import InputError

    if fmt == "json":
        doc = result.model_dump(mode="json")
        if advice is not None:
            doc["advice"] = advice.model_dump(mode="json")
        return json.dumps(doc, indent=2)
    if fmt in ("md", "markdown"):
        return review_markdown(result, advice)
    if fmt == "sarif":
        return json.dumps(result.to_sarif(), indent=2)
    if fmt == "html":
        return _review_html(result, advice, title)
    raise InputError("formats", f"unknown review format {fmt!r}: use json, md, sarif or html")


def render_review_files(
    result: ReviewResult,
    advice: ReviewAdvice,
    formats: Iterable[str] = REVIEW_FORMATS,
    *,
    title: str = "Pipeline review",
) -> dict[str, tuple[str, bytes]]:
    """``{format: (file name, content)}`` for ``json`` (findings + advice), ``md``, ``sarif``, ``html``."""
    from dataeng_agents.core.review.render import review_files

    return review_files(
        formats, lambda fmt: render_review(result, advice, fmt, title=title), _REVIEW_FILE_NAMES
    )


def write_review(
    result: ReviewResult,
    advice: ReviewAdvice,
    out_dir: str | os.PathLike[str],
    formats: Iterable[str] = REVIEW_FORMATS,
    *,
    writer: Any = None,
    title: str = "Pipeline review",
) -> dict[str, str]:
    """Render the review with its advice and write it atomically (as ``write_report``); ``{format: path}``.

    :param writer: optional ``callable(path, data)`` for object storage (Airflow ``ObjectStoragePath``).
    """
    from dataeng_agents.core.report.writer import write_files

    return write_files(render_review_files(result, advice, formats, title=title), out_dir, writer=writer)
