"""The deterministic advice of a rule-based review (the pipeline review and the API review): one
priority per rule that fired, errors first, then by how often the rule fired; the rule's rationale
says why and its fix says how. A persona on Claude may rewrite the prose; this is its template,
and :func:`findings_facts` is the findings part of the facts it is given."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from dataeng_agents.core.narrative import ReviewAdvice, ReviewPriority
from dataeng_agents.core.review.models import Finding, Severity


class RuleText(Protocol):
    """What the advice reads from a rule (the pipeline ``Rule`` and the ``ApiRule``)."""

    @property
    def title(self) -> str: ...
    @property
    def rationale(self) -> str: ...
    @property
    def fix(self) -> str: ...


def findings_facts(
    findings: Sequence[Finding], rules: Mapping[str, RuleText], *, max_findings: int
) -> dict[str, Any]:
    """The findings part of a review's narration facts: ``findings`` (the first ``max_findings``,
    most severe first, then by rule, path and line), ``findings_omitted`` (how many were cut) and
    ``rules`` (title, rationale and fix of each rule that fired, by id)."""
    ranked = sorted(findings, key=lambda f: (-f.severity.rank, f.rule_id, f.path, f.line))
    return {
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
            for f in ranked[:max_findings]
        ],
        "findings_omitted": max(0, len(ranked) - max_findings),
        "rules": {
            rid: {"title": rules[rid].title, "rationale": rules[rid].rationale, "fix": rules[rid].fix}
            for rid in sorted({f.rule_id for f in ranked})
        },
    }


def findings_advice(
    findings: Sequence[Finding],
    rules: Mapping[str, RuleText],
    *,
    reviewed: str,
    counts: Mapping[str, int],
    profile: str,
    caveats: list[str],
    max_ids: int,
) -> ReviewAdvice:
    """One priority per rule (its first ``max_ids`` finding ids), errors first, then by how often the
    rule fired, then by id; the summary reads "Reviewed ``reviewed``: ..." and names the top rule.

    :param counts: the findings per severity (``error``, ``warn``, ``info``).
    :param profile: the review profile (named when nothing was found).
    :param caveats: what the review could not see, in order.
    """
    groups: dict[str, list[str]] = {}
    severity: dict[str, Severity] = {}
    for f in findings:
        groups.setdefault(f.rule_id, []).append(f.id)
        if f.rule_id not in severity or f.severity.rank > severity[f.rule_id].rank:
            severity[f.rule_id] = f.severity
    order = sorted(groups, key=lambda r: (-severity[r].rank, -len(groups[r]), r))
    priorities = [
        ReviewPriority(
            finding_ids=groups[r][:max_ids],
            why=f"{r} {rules[r].title} ({severity[r].value}, {len(groups[r])}x): {rules[r].rationale}",
            how_to_fix=rules[r].fix,
        )
        for r in order
    ]
    if findings:
        top = order[0]
        summary = (
            f"Reviewed {reviewed}: {counts['error']} error(s), {counts['warn']} warning(s), "
            f"{counts['info']} info. Fix {top} ({rules[top].title}) first."
        )
    else:
        summary = f"Reviewed {reviewed}: no findings at the {profile} profile."
    return ReviewAdvice(summary=summary, priorities=priorities, caveats=caveats)
