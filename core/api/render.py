"""Renderers of API review and diff results: rich table, Markdown, SARIF (the pipeline review's
writer, given this catalogue), HTML, and the report files the CLI and the adapters write."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from dataeng_agents.core.api.rules import API_RULES
from dataeng_agents.core.review.render import (
    render_findings_table,
    render_review_format,
    render_sarif,
    review_files,
    review_html,
    unreviewed_markdown,
)

if TYPE_CHECKING:
    from dataeng_agents.core.api.diff import ApiDiffResult
    from dataeng_agents.core.api.models import ApiReviewResult
    from dataeng_agents.core.narrative import ReviewAdvice
    from rich.console import Console

_LEVEL_STYLE = {"breaking": "bold red", "warning": "yellow", "info": "cyan"}
API_REVIEW_FORMATS = ("json", "md", "sarif", "html")
_FILE_NAMES = {
    "json": "api-review.json",
    "md": "api-review.md",
    "sarif": "api-review.sarif",
    "html": "api-review.html",
}
DIFF_FORMATS = ("json", "md")
_DIFF_FILE_NAMES = {"json": "api-diff.json", "md": "api-diff.md"}


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


# ------------------------------------------------------------------------------------------ review
def render_review_table(result: ApiReviewResult, console: Console) -> None:
    render_findings_table(result, console, title=f"API contract review ({result.profile} profile)")


def render_review_markdown(result: ApiReviewResult) -> str:
    c = result.counts()
    lines = [
        "# API contract review",
        "",
        f"Profile `{result.profile}`: {len(result.files)} files, {c['error']} errors, {c['warn']} warnings, "
        f"{c['info']} info, {result.suppressed} suppressed.",
        "",
    ]
    reviewed = [f for f in result.files if f.status == "reviewed"]
    if reviewed:
        lines += ["| File | Kind | API | Operations | Findings |", "|---|---|---|---|---|"]
        lines += [
            f"| `{f.path}` | {f.kind} | {_md(f.title)} | {f.operations} | {f.findings} |" for f in reviewed
        ]
        lines.append("")
    if result.findings:
        lines += ["| Severity | Rule | Location | Message | Id |", "|---|---|---|---|---|"]
        for f in result.findings:
            lines.append(
                f"| {f.severity.value} | {f.rule_id} {API_RULES[f.rule_id].title} | `{f.path}:{f.line}` | "
                f"{_md(f.message)} | `{f.id}` |"
            )
        lines.append("")
    lines += unreviewed_markdown(result.files)
    return "\n".join(lines)


def render_review_sarif(result: ApiReviewResult) -> dict[str, Any]:
    return render_sarif(result, rules=API_RULES, tool_name="dataeng-api-review")


def review_markdown_with_advice(result: ApiReviewResult, advice: ReviewAdvice) -> str:
    lines = [result.to_markdown().rstrip(), "", "## Advice", "", advice.summary, ""]
    for i, p in enumerate(advice.priorities, start=1):
        ids = ", ".join(f"`{fid}`" for fid in p.finding_ids)
        lines.append(f"{i}. **{p.why}** {p.how_to_fix} ({ids})")
    if advice.caveats:
        lines += ["", *[f"- {c}" for c in advice.caveats]]
    lines += ["", f"_Advice written by the {advice.provenance.narrator} narrator._", ""]
    return "\n".join(lines)


def render_api_review(
    result: ApiReviewResult, advice: ReviewAdvice, fmt: str, *, title: str = "API contract review"
) -> str:
    """One API review and its advice in one format: ``json`` (findings + advice), ``md``/``markdown``,
    ``sarif`` or ``html``."""
    return render_review_format(
        result,
        advice,
        fmt,
        markdown=lambda: review_markdown_with_advice(result, advice),
        html=lambda: review_html(
            result,
            advice,
            title=title,
            scope=f"profile {result.profile}",
            credit=f"the {advice.provenance.narrator} narrator",
            finding_ids=False,
        ),
        what="API review",
    )


def render_api_review_files(
    result: ApiReviewResult,
    advice: ReviewAdvice,
    formats: Iterable[str] = API_REVIEW_FORMATS,
    *,
    title: str = "API contract review",
) -> dict[str, tuple[str, bytes]]:
    """``{format: (file name, content)}`` for ``json`` (findings + advice), ``md``, ``sarif``, ``html``."""
    return review_files(formats, lambda fmt: render_api_review(result, advice, fmt, title=title), _FILE_NAMES)


def write_api_review(
    result: ApiReviewResult,
    advice: ReviewAdvice,
    out_dir: str | os.PathLike[str],
    formats: Iterable[str] = API_REVIEW_FORMATS,
    *,
    writer: Any = None,
    title: str = "API contract review",
) -> dict[str, str]:
    """Render and write atomically through the shared report writer; ``{format: path}``."""
    from dataeng_agents.core.report.writer import write_files

    return write_files(render_api_review_files(result, advice, formats, title=title), out_dir, writer=writer)


# ------------------------------------------------------------------------------------------ diff
def render_diff_table(result: ApiDiffResult, console: Console) -> None:
    from rich.table import Table

    table = Table(title=f"API diff ({result.api}): {result.old} -> {result.new}")
    for col in ("level", "change", "subject", "message"):
        table.add_column(col, overflow="fold")
    for c in result.changes:
        table.add_row(f"[{_LEVEL_STYLE[c.level]}]{c.level}[/]", c.kind, c.subject, c.message)
    if result.changes:
        console.print(table)
    n = result.counts()
    console.print(f"{n['breaking']} breaking, {n['warning']} warnings, {n['info']} additive changes")


def render_diff_markdown(result: ApiDiffResult) -> str:
    n = result.counts()
    lines = [
        f"# API diff ({result.api})",
        "",
        f"`{result.old}` -> `{result.new}`: {n['breaking']} breaking, "
        f"{n['warning']} warnings, {n['info']} additive changes.",
        "",
    ]
    if result.changes:
        lines += ["| Level | Change | Subject | Message |", "|---|---|---|---|"]
        lines += [f"| {c.level} | {c.kind} | `{_md(c.subject)}` | {_md(c.message)} |" for c in result.changes]
        lines.append("")
    return "\n".join(lines)


def render_diff_files(
    result: ApiDiffResult, formats: Iterable[str] = DIFF_FORMATS
) -> dict[str, tuple[str, bytes]]:
    from dataeng_agents.core.errors import InputError

    out: dict[str, tuple[str, bytes]] = {}
    for fmt in formats:
        if fmt == "json":
            text = json.dumps(result.model_dump(mode="json"), indent=2)
        elif fmt in ("md", "markdown"):
            fmt, text = "md", render_diff_markdown(result)
        else:
            raise InputError("formats", f"unknown API diff format {fmt!r}: use json or md")
        out[fmt] = (_DIFF_FILE_NAMES[fmt], text.encode("utf-8"))
    return out


def write_api_diff(
    result: ApiDiffResult,
    out_dir: str | os.PathLike[str],
    formats: Iterable[str] = DIFF_FORMATS,
    *,
    writer: Any = None,
) -> dict[str, str]:
    from dataeng_agents.core.report.writer import write_files

    return write_files(render_diff_files(result, formats), out_dir, writer=writer)
