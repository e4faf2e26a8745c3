"""The data-pipeline command: review DAGs/flows/specs and design pipelines, plus their narration tasks.

This is the facade the CLI and both orchestrator adapters call:

- :func:`review_paths` -> :class:`ReviewResult` (findings with stable ids, ``exit_code``, renderers)
- :func:`design_pipeline` -> :class:`PipelineDesign`
- :func:`design_request` -> :class:`DesignRun`: a sentence (drafted into a spec) or a spec file,
  designed, with the drafted spec and the scaffold written; :func:`write_design` writes the run as
  ``design.json``, ``design.md`` and ``spec.yaml``
- :func:`review_narration_task` / :func:`design_narration_task` -> a :class:`NarrationTask` whose
  deterministic template writes :class:`ReviewAdvice` / :class:`ArchitectureAdvice` that only refers
  to finding / reason ids; :func:`narrate_review` / :func:`narrate_design` run it with a narrator.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from dataeng_agents.core.design import PipelineDesign, PipelineSpec, SpecDraft, design_pipeline
from dataeng_agents.core.narrative import (
    ArchitectureAdvice,
    NarrationTask,
    NarrativePoint,
    Narrator,
    ReviewAdvice,
    TemplateNarrator,
)
from dataeng_agents.core.review import RULES, ReviewResult, review_paths
from dataeng_agents.core.review.advice import findings_advice, findings_facts
from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "DEFAULT_SPEC_OUT",
    "DesignRun",
    "PipelineDesign",
    "ReviewResult",
    "design_narration_task",
    "design_pipeline",
    "design_request",
    "narrate_design",
    "narrate_review",
    "render_review",
    "render_review_files",
    "review_markdown",
    "review_narration_task",
    "review_paths",
    "scaffold_project",
    "write_design",
    "write_review",
]

MAX_FACT_FINDINGS = 200
MAX_IDS_PER_PRIORITY = 50


def _review_facts(result: ReviewResult) -> dict[str, Any]:
    return {
        "summary": result.summary(),
        **findings_facts(result.findings, RULES, max_findings=MAX_FACT_FINDINGS),
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


#: The CLI's default for ``design_request(spec_out=...)``: ``{name}`` is replaced by the drafted spec's
#: name, so a sentence becomes ``./<name>.spec.yaml``.
DEFAULT_SPEC_OUT = "{name}.spec.yaml"


class DesignRun(BaseModel):
    """One :func:`design_request`: the design, the draft it came from, and what was written where.

    The one result of ``dataeng pipeline design``, ``PipelineDesignOperator`` and the Prefect
    ``design_pipeline_from_request`` task.
    """

    model_config = ConfigDict(extra="forbid")

    request: str = Field(description="The request sentence, or the spec file that was designed.")
    spec: PipelineSpec
    design: PipelineDesign
    draft: SpecDraft | None = Field(default=None, description="The draft, when the request was a sentence.")
    spec_path: str | None = Field(
        default=None, description="The drafted spec written for the user to edit, or the spec file designed."
    )
    scaffold_dir: str | None = None
    scaffold_files: list[str] = Field(
        default_factory=list, description="The scaffold's files, relative to ``scaffold_dir``."
    )
    advice: ArchitectureAdvice | None = None

    @property
    def drafted_by(self) -> Literal["claude", "extractor"] | None:
        """``claude`` or ``extractor`` for a drafted spec; ``None`` for a spec file."""
        return self.draft.drafted_by if self.draft is not None else None

    def open_questions(self) -> list[str]:
        """The draft's open questions, then the design's, without repeats."""
        drafted = self.draft.open_questions if self.draft is not None else []
        return list(dict.fromkeys([*drafted, *self.design.open_questions]))

    def spec_text(self) -> str:
        """The spec as YAML: a draft with its assumptions and open questions as comments."""
        if self.draft is not None:
            from dataeng_agents.core.design.draft import spec_yaml

            return spec_yaml(self.draft)
        import yaml

        return yaml.safe_dump(self.spec.model_dump(mode="json", exclude_defaults=True), sort_keys=False)

    def summary(self) -> dict[str, Any]:
        """The compact, JSON-ready summary (an XCom value, a flow's return value)."""
        d = self.design
        return {
            "spec": d.spec_name,
            "architecture": d.recommendation,
            "architecture_label": d.recommendation_label,
            "schedule": d.schedule,
            "warehouse": d.cost.warehouse,
            "monthly_cost_usd": round(d.cost.total_usd_per_month, 2),
            "spec_path": self.spec_path,
            "drafted_by": self.drafted_by,
            "fallback_reason": self.draft.fallback_reason if self.draft is not None else None,
            "assumptions": len(self.draft.assumptions) if self.draft is not None else 0,
            "open_questions": self.open_questions(),
            "spec_findings": len(d.spec_findings),
            "scaffold_dir": self.scaffold_dir,
            "scaffold_files": len(self.scaffold_files),
        }

    def to_json_doc(self) -> dict[str, Any]:
        """The design, with the draft and the advice when there are: ``dataeng pipeline design -f json``."""
        doc: dict[str, Any] = self.design.model_dump(mode="json")
        if self.draft is not None:
            doc["draft"] = {
                "drafted_by": self.draft.drafted_by,
                "spec_path": self.spec_path,
                "assumptions": self.draft.assumptions,
                "open_questions": self.draft.open_questions,
                "fallback_reason": self.draft.fallback_reason,
            }
        if self.advice is not None:
            doc["advice"] = self.advice.model_dump(mode="json")
        return doc

    def to_markdown(self) -> str:
        """The design as Markdown, with the drafting assumptions: ``dataeng pipeline design -f markdown``."""
        md = self.design.to_markdown()
        if self.draft is not None:
            md += "\n## Assumptions made while drafting the spec\n\n" + "".join(
                f"- {a}\n" for a in self.draft.assumptions
            )
        return md


def _write_text_atomic(target: Path, text: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(target)


def design_request(
    request_or_spec: str | os.PathLike[str] | PipelineSpec | dict[str, Any],
    *,
    client: Any = None,
    model: str | None = None,
    persona: str = "data-engineer",
    spec_out: str | os.PathLike[str] | None = None,
    scaffold_dir: str | os.PathLike[str] | None = None,
    force: bool = False,
    max_usd: float | None = None,
    narrator: Narrator | None = None,
) -> DesignRun:
    """From a sentence (or a spec) to a design, the drafted spec on disk and optionally the project.

    A sentence (:func:`~dataeng_agents.core.design.draft.is_sentence`) is drafted into a spec by
    :func:`~dataeng_agents.core.design.draft.draft_spec` (Claude with ``client``, else, or on any LLM
    failure, the offline extractor) and the draft is written to ``spec_out`` with its assumptions
    and open questions as comments; anything else is a spec file (or a spec) designed as it is.
    Then the deterministic designer runs, the scaffold is written to ``scaffold_dir`` when given and
    ``narrator`` writes the advice when given.

    Nothing is half-written: every check (a drafted spec already at ``spec_out``, scaffold files
    that differ) runs before the first write, and every file is written to a temp file and renamed.

    :param request_or_spec: a request sentence, a spec file path, or a spec (model or dict).
    :param client: an ``anthropic.Anthropic`` client for drafting; ``None`` drafts offline.
    :param model: the drafting model; ``None`` uses the persona's.
    :param persona: the persona whose prompt drafts the spec.
    :param spec_out: where a drafted spec is written (``{name}`` is replaced by the spec's name, see
        :data:`DEFAULT_SPEC_OUT`); ``None`` writes no spec file. Unused for a spec file.
    :param scaffold_dir: also write the runnable project (DAG, flow, dbt, checks) to this folder
        (``{name}`` is replaced by the spec's name).
    :param force: overwrite an existing drafted spec and scaffold files that differ.
    :param max_usd: the most the drafting call may spend.
    :param narrator: writes the architecture advice (``None``: no advice).
    :raises InputError: an empty request (``request``), a bad ``max_usd``, an existing ``spec_out``
        or differing ``scaffold_dir`` files without ``force``; ``ConfigError`` for an invalid spec.
    """
    from dataeng_agents.core.design import load_spec
    from dataeng_agents.core.design.draft import draft_spec, is_sentence, spec_yaml
    from dataeng_agents.core.errors import InputError

    if max_usd is not None and (not math.isfinite(max_usd) or max_usd < 0):
        raise InputError("max_usd", f"must be a non-negative number, got {max_usd!r}")
    draft: SpecDraft | None = None
    target: Path | None = None
    spec_path: str | None = None
    if isinstance(request_or_spec, PipelineSpec | dict):
        spec = load_spec(request_or_spec)
        request = spec.name
    else:
        request = os.fspath(request_or_spec)
        if not request.strip():
            raise InputError("request", "empty: give a request sentence or the path of a spec file")
        if isinstance(request_or_spec, str) and is_sentence(request):
            draft = draft_spec(request, client, model=model, max_usd=max_usd, persona=persona)
            spec = draft.spec
            if spec_out is not None:
                target = Path(os.fspath(spec_out).replace("{name}", spec.name))
                if target.exists() and not force:
                    raise InputError(
                        "spec_out",
                        f"{target} exists (overwrite it with force / --force, or choose another path)",
                    )
                spec_path = str(target)
        else:
            spec = load_spec(Path(request))
            spec_path = request
    design = design_pipeline(spec)
    written: list[str] = []
    root: Path | None = None
    if scaffold_dir is not None:
        from dataeng_agents.core.scaffold import scaffold_project as build

        project = build(spec, design)
        root = Path(os.fspath(scaffold_dir).replace("{name}", spec.name))
        try:  # refuses before writing anything when files differ
            paths = project.write(root, overwrite=force)
        except InputError as exc:
            raise InputError("scaffold_dir", exc.message) from exc
        written = sorted(p.relative_to(root).as_posix() for p in paths)
    if draft is not None and target is not None:
        _write_text_atomic(target, spec_yaml(draft))
    advice = narrate_design(design, narrator) if narrator is not None else None
    return DesignRun(
        request=request,
        spec=spec,
        design=design,
        draft=draft,
        spec_path=spec_path,
        scaffold_dir=str(root) if root is not None else None,
        scaffold_files=written,
        advice=advice,
    )


_DESIGN_FILE_NAMES = {"json": "design.json", "md": "design.md", "spec": "spec.yaml"}


def render_design_files(run: DesignRun) -> dict[str, tuple[str, bytes]]:
    """``{kind: (file name, content)}``: ``design.json`` (as ``-f json``), ``design.md``, ``spec.yaml``."""
    texts = {
        "json": json.dumps(run.to_json_doc(), indent=2),
        "md": run.to_markdown(),
        "spec": run.spec_text(),
    }
    return {kind: (_DESIGN_FILE_NAMES[kind], text.encode("utf-8")) for kind, text in texts.items()}


def write_design(run: DesignRun, out_dir: str | os.PathLike[str], *, writer: Any = None) -> dict[str, str]:
    """Write the run's ``design.json``, ``design.md`` and ``spec.yaml`` atomically (as ``write_review``).

    :param writer: optional ``callable(path, data)`` for object storage (Airflow ``ObjectStoragePath``).
    :return: ``{"json" | "md" | "spec": path}``.
    """
    from dataeng_agents.core.report.writer import write_files

    return write_files(render_design_files(run), out_dir, writer=writer)


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


def render_review(
    result: ReviewResult, advice: ReviewAdvice | None, fmt: str, *, title: str = "Pipeline review"
) -> str:
    """One review (and its advice, when given) in one format: ``json``, ``md``/``markdown``, ``sarif`` or
    ``html``. The one renderer of the CLI (``dataeng review -f``) and the files both adapters write."""
    from dataeng_agents.core.review.render import render_review_format, review_html

    return render_review_format(
        result,
        advice,
        fmt,
        markdown=lambda: review_markdown(result, advice),
        html=lambda: review_html(
            result,
            advice,
            title=title,
            scope=f"profile {result.profile}, Airflow {result.airflow_version}",
            credit=advice.provenance.written_by if advice is not None else "",
            finding_ids=True,
        ),
        what="review",
    )


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
