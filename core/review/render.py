"""Renderers of a ReviewResult: rich table, Markdown, SARIF 2.1.0 (GitHub code scanning) and the HTML
page (shared with the API review)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from dataeng_agents.core.review.models import Finding, ReviewResult, Severity
from dataeng_agents.core.review.rules import RULES

if TYPE_CHECKING:
    from dataeng_agents.core.narrative import ReviewAdvice
    from rich.console import Console

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
#: the SARIF rule of a file that could not be reviewed (not a review rule: it has no severity to configure)
FILE_ERROR_RULE = "REVIEW-ERROR"
_SARIF_LEVEL = {Severity.error: "error", Severity.warn: "warning", Severity.info: "note"}
_STYLE = {Severity.error: "bold red", Severity.warn: "yellow", Severity.info: "cyan"}


class _ReviewedFile(Protocol):
    @property
    def path(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def error(self) -> str | None: ...


def unreviewed_markdown(files: Sequence[_ReviewedFile]) -> list[str]:
    """The Markdown section listing the files that could not be reviewed (no lines when there are none)."""
    errors = [fr for fr in files if fr.status == "error"]
    if not errors:
        return []
    return ["## Files that could not be reviewed", "", *[f"- `{fr.path}`: {fr.error}" for fr in errors], ""]


class TableSource(Protocol):
    """What the findings table reads: a pipeline :class:`ReviewResult` or an API review result."""

    @property
    def findings(self) -> Sequence[Finding]: ...
    @property
    def files(self) -> Sequence[_ReviewedFile]: ...
    @property
    def suppressed(self) -> int: ...
    @property
    def elapsed_seconds(self) -> float: ...
    def counts(self) -> dict[str, int]: ...


def render_findings_table(
    result: TableSource, console: Console, *, title: str, undecided: int | None = None
) -> None:
    """The findings as a rich table, the files that could not be reviewed, and one line of totals
    (with ``undecided`` checks when the review has them)."""
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    for col in ("severity", "rule", "location", "message", "id"):
        table.add_column(col, overflow="fold")
    for f in result.findings:
        table.add_row(
            f"[{_STYLE[f.severity]}]{f.severity.value}[/]", f.rule_id, f"{f.path}:{f.line}", f.message, f.id
        )
    if result.findings:
        console.print(table)
    for fr in result.files:
        if fr.status == "error":
            console.print(f"[bold red]could not review[/] {fr.path}: {fr.error}")
    c = result.counts()
    console.print(
        f"{len(result.files)} files, {c['error']} errors, {c['warn']} warnings, {c['info']} info, "
        f"{result.suppressed} suppressed"
        + (f", {undecided} undecided statically" if undecided is not None else "")
        + f" ({result.elapsed_seconds:.2f} s)"
    )


def render_table(result: ReviewResult, console: Console) -> None:
    render_findings_table(
        result,
        console,
        title=f"Pipeline review ({result.profile} profile, Airflow {result.airflow_version})",
        undecided=len(result.unresolved),
    )


def render_markdown(result: ReviewResult) -> str:
    c = result.counts()
    lines = [
        "# Pipeline review",
        "",
        f"Profile `{result.profile}`, target Airflow {result.airflow_version}: {len(result.files)} files, "
        f"{c['error']} errors, {c['warn']} warnings, {c['info']} info, {result.suppressed} suppressed.",
        "",
    ]
    if result.findings:
        lines += ["| Severity | Rule | Location | Message | Id |", "|---|---|---|---|---|"]
        for f in result.findings:
            msg = f.message.replace("|", "\\|")
            lines.append(
                f"| {f.severity.value} | [{f.rule_id}](rules/{f.rule_id}.md) | `{f.path}:{f.line}` | {msg} | `{f.id}` |"
            )
        lines.append("")
    lines += unreviewed_markdown(result.files)
    if result.unresolved:
        lines += ["## Undecided statically (run with `--runtime`)", ""]
        lines += [
            f"- {u.rule_id} `{u.path}:{u.line}` {u.subject}.{u.attribute}: {u.reason}"
            for u in result.unresolved
        ]
        lines.append("")
    return "\n".join(lines)


class _Rendered(Protocol):
    def model_dump(self, *, mode: str) -> dict[str, Any]: ...
    def to_sarif(self) -> dict[str, Any]: ...


def render_review_format(
    result: _Rendered,
    advice: ReviewAdvice | None,
    fmt: str,
    *,
    markdown: Callable[[], str],
    html: Callable[[], str],
    what: str,
) -> str:
    """One review (pipeline or API) and its advice, when given, in one format: ``json`` (the result
    with an ``advice`` key), ``md``/``markdown`` (``markdown()``), ``sarif`` or ``html`` (``html()``).

    :param what: the review's name in the error of an unknown format (``review``, ``API review``).
    :raises InputError: (``formats``) an unknown format.
    """
    from dataeng_agents.core.errors import InputError

    if fmt == "json":
        doc = result.model_dump(mode="json")
        if advice is not None:
            doc["advice"] = advice.model_dump(mode="json")
        return json.dumps(doc, indent=2)
    if fmt in ("md", "markdown"):
        return markdown()
    if fmt == "sarif":
        return json.dumps(result.to_sarif(), indent=2)
    if fmt == "html":
        return html()
    raise InputError("formats", f"unknown {what} format {fmt!r}: use json, md, sarif or html")


def review_html(
    result: TableSource,
    advice: ReviewAdvice | None,
    *,
    title: str,
    scope: str,
    credit: str,
    finding_ids: bool,
) -> str:
    """The HTML page of a review (pipeline or API): the title, one line of totals
    (``N files, <scope>: ...``), the advice when given, then the findings, most severe first.

    :param scope: what was reviewed against, e.g. ``profile strict, Airflow 3.3`` (plain text).
    :param credit: who wrote the advice, ending "Advice written by <credit>." (plain text).
    :param finding_ids: list each priority's finding ids after its fix.
    """
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
            f"<li><strong>{_e(p.why)}</strong> {_e(p.how_to_fix)}"
            + (f" ({', '.join(f'<code>{_e(i)}</code>' for i in p.finding_ids)})" if finding_ids else "")
            + "</li>"
            for p in advice.priorities
        )
        advice_html = (
            f"<h2>Advice</h2><p>{_e(advice.summary)}</p><ol>{priorities}</ol>"
            f"<p><em>Advice written by {_e(credit)}.</em></p>"
        )
    body = (
        f"<h1>{_e(title)}</h1>"
        f"<p>{len(result.files)} files, {_e(scope)}: "
        f"{counts['error']} errors, {counts['warn']} warnings, {counts['info']} notes.</p>"
        + advice_html
        + "<h2>Findings</h2>"
        + _html_table(["severity", "rule", "where", "message", "id"], rows)
    )
    return _page(title, body)


class SarifSource(Protocol):
    """What the SARIF writer reads: a pipeline :class:`ReviewResult` or an API review result."""

    @property
    def findings(self) -> Sequence[Finding]: ...
    @property
    def files(self) -> Sequence[_ReviewedFile]: ...


def render_sarif(
    result: SarifSource, *, rules: Mapping[str, Any] | None = None, tool_name: str = "dataeng-review"
) -> dict[str, Any]:
    """SARIF 2.1.0 of the findings. ``rules``: the catalogue the rule ids come from (default: the
    pipeline review's; each entry has ``title``, ``rationale``, ``fix``, ``severity``, ``category``
    and ``to_markdown()``)."""
    catalogue: Mapping[str, Any] = RULES if rules is None else rules
    used = sorted({f.rule_id for f in result.findings})
    index = {rid: i for i, rid in enumerate(used)}
    failed = [fr for fr in result.files if fr.status == "error"]
    rules_out = [
        {
            "id": rid,
            "name": catalogue[rid].title.replace(" ", ""),
            "shortDescription": {"text": catalogue[rid].title},
            "fullDescription": {"text": catalogue[rid].rationale},
            "help": {"text": catalogue[rid].fix, "markdown": catalogue[rid].to_markdown()},
            "defaultConfiguration": {"level": _SARIF_LEVEL.get(catalogue[rid].severity, "note")},
            "properties": {"tags": [catalogue[rid].category]},
        }
        for rid in used
    ]
    results = [
        {
            "ruleId": f.rule_id,
            "ruleIndex": index[f.rule_id],
            "level": _SARIF_LEVEL.get(f.severity, "note"),
            "message": {"text": f.message},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": Path(f.path).as_posix()},
                        "region": {"startLine": max(f.line, 1), "startColumn": f.column + 1},
                    }
                }
            ],
            "partialFingerprints": {"dataengFindingId/v1": f.id},
        }
        for f in result.findings
    ]
    if failed:
        # a file that could not be reviewed is a visible result (code-scanning UIs hide notifications)
        rules_out.append(
            {
                "id": FILE_ERROR_RULE,
                "name": "FileNotReviewed",
                "shortDescription": {"text": "File could not be reviewed"},
                "fullDescription": {"text": "The file could not be read or parsed, so no rule checked it."},
                "help": {
                    "text": "Fix the reported problem (syntax, encoding, size, file type) and review again."
                },
                "defaultConfiguration": {"level": "error"},
                "properties": {"tags": ["review"]},
            }
        )
        results += [
            {
                "ruleId": FILE_ERROR_RULE,
                "ruleIndex": len(rules_out) - 1,
                "level": "error",
                "message": {"text": f"could not be reviewed: {fr.error}"},
                "locations": [{"physicalLocation": {"artifactLocation": {"uri": Path(fr.path).as_posix()}}}],
                "partialFingerprints": {
                    "dataengFindingId/v1": f"{FILE_ERROR_RULE}-{Path(fr.path).as_posix()}"
                },
            }
            for fr in failed
        ]
    notifications = [{"level": "error", "message": {"text": f"{fr.path}: {fr.error}"}} for fr in failed]
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {"name": tool_name, "informationUri": "https://github.com/", "rules": rules_out}
                },
                "results": results,
                "invocations": [
                    {"executionSuccessful": not failed, "toolExecutionNotifications": notifications}
                ],
            }
        ],
    }


def review_files(
    formats: Iterable[str], render: Callable[[str], str], file_names: Mapping[str, str]
) -> dict[str, tuple[str, bytes]]:
    """``{format: (file name, content)}`` of a review: ``render(format)`` for each of ``formats``
    (``markdown`` is filed as ``md``); ``render`` raises on a format it does not know."""
    from dataeng_agents.core.errors import InputError

    out: dict[str, tuple[str, bytes]] = {}
    for fmt in formats:
        text = render(fmt)
        fmt = "md" if fmt == "markdown" else fmt
        out[fmt] = (file_names[fmt], text.encode("utf-8"))
    if not out:
        raise InputError("formats", "no review format given")
    return out
