"""Result types of a pipeline review: findings, per-file reports and the whole result."""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

FailOn = Literal["error", "warn", "never"]


class Severity(StrEnum):
    """Finding severity. ``off`` only appears in configuration (a disabled rule)."""

    error = "error"
    warn = "warn"
    info = "info"
    off = "off"

    @property
    def rank(self) -> int:
        return {"error": 3, "warn": 2, "info": 1, "off": 0}[self.value]


class Finding(BaseModel):
    """One rule violation at one place. ``id`` is stable for the same input (no line numbers in it)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    rule_id: str
    severity: Severity
    category: str
    path: str
    line: int = 1
    column: int = 0
    message: str
    subject: str = Field(default="", description="The DAG / task / flow / spec field the finding is about.")
    fix: str = ""

    @staticmethod
    def make_id(rule_id: str, path: str, subject: str, message: str) -> str:
        digest = hashlib.sha1(f"{rule_id}|{path}|{subject}|{message}".encode()).hexdigest()[:10]
        return f"{rule_id}-{digest}"

    @classmethod
    def trusted(
        cls, *, id: str, rule_id: str, severity: Severity, category: str, path: str, line: int, column: int,
        message: str, subject: str, fix: str,
    ) -> Finding:
        """A finding from values the engine built itself (already of the declared types), without validation.

        The review creates one per finding; validation is most of the cost of a ``Finding(...)`` and
        checks nothing here. Does what ``model_construct`` does for a model with every field given."""
        return trusted_finding(id, rule_id, severity, category, path, line, column, message, subject, fix)


_new = object.__new__
# BaseModel's slot descriptors, called directly: what object.__setattr__ ends up doing, minus the lookup
_set_dict, _set_fields_set, _set_extra, _set_private = (
    BaseModel.__dict__[slot].__set__
    for slot in ("__dict__", "__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__")
)
_FINDING_FIELDS = frozenset(Finding.model_fields)


def trusted_finding(
    id: str, rule_id: str, severity: Severity, category: str, path: str, line: int, column: int, message: str,
    subject: str, fix: str, /,
) -> Finding:
    """:meth:`Finding.trusted` with positional arguments (the review engine's hot path)."""
    self = _new(Finding)
    _set_dict(self, {
        "id": id, "rule_id": rule_id, "severity": severity, "category": category, "path": path, "line": line,
        "column": column, "message": message, "subject": subject, "fix": fix,
    })
    _set_fields_set(self, set(_FINDING_FIELDS))
    _set_extra(self, None)
    _set_private(self, None)
    return self


class Unresolved(BaseModel):
    """A rule that could not be decided statically (value built at parse time); ``--runtime`` decides it."""

    model_config = ConfigDict(extra="forbid")

    rule_id: str
    path: str
    line: int
    subject: str
    attribute: str
    reason: str


class FileReport(BaseModel):
    """What happened to one input file."""

    model_config = ConfigDict(extra="forbid")

    path: str
    kind: Literal["airflow", "prefect", "spec", "python", "error"]
    status: Literal["reviewed", "error"] = "reviewed"
    error: str | None = None
    dags: list[str] = Field(default_factory=list)
    tasks: int = 0
    findings: int = 0
    suppressed: int = 0
    parse_seconds: float | None = None


class ReviewResult(BaseModel):
    """Everything one ``review_paths`` call found."""

    model_config = ConfigDict(extra="forbid")

    profile: str
    airflow_version: str
    runtime: bool = False
    files: list[FileReport] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)
    unresolved: list[Unresolved] = Field(default_factory=list)
    suppressed: int = 0
    elapsed_seconds: float = 0.0

    def counts(self) -> dict[str, int]:
        out = {"error": 0, "warn": 0, "info": 0}
        for f in self.findings:
            out[f.severity.value] += 1
        return out

    def rule_counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for f in self.findings:
            out[f.rule_id] = out.get(f.rule_id, 0) + 1
        return dict(sorted(out.items()))

    def exit_code(self, fail_on: FailOn = "error") -> int:
        """1 when a finding at or above ``fail_on`` exists or a file could not be reviewed; else 0.

        ``never`` always gives 0."""
        if fail_on == "never":
            return 0
        threshold = Severity(fail_on).rank
        if any(f.status == "error" for f in self.files):
            return 1
        return 1 if any(f.severity.rank >= threshold for f in self.findings) else 0

    def summary(self) -> dict[str, Any]:
        """A compact, JSON-able summary for XCom / Prefect results."""
        return {
            "files": len(self.files),
            "file_errors": sum(1 for f in self.files if f.status == "error"),
            "findings": self.counts(),
            "rules": self.rule_counts(),
            "unresolved": len(self.unresolved),
            "suppressed": self.suppressed,
            "profile": self.profile,
            "airflow_version": self.airflow_version,
        }

    def to_json(self, indent: int | None = 2) -> str:
        return self.model_dump_json(indent=indent)

    def to_markdown(self) -> str:
        from dataeng_agents.core.review.render import render_markdown

        return render_markdown(self)

    def to_sarif(self) -> dict[str, Any]:
        from dataeng_agents.core.review.render import render_sarif

        return render_sarif(self)


_REPORT_FIELDS_GIVEN = frozenset({"path", "kind", "dags", "tasks"})


def reviewed_report(
    path: str, kind: Literal["airflow", "prefect", "python"], dags: list[str], tasks: int, /
) -> FileReport:
    """``FileReport(path=path, kind=kind, dags=dags, tasks=tasks)`` of a reviewed file, built without
    validation like :func:`trusted_finding` (the engine typed every value itself; validation is most of
    the cost of the model and runs once per file). The other fields take their defaults."""
    self = _new(FileReport)
    _set_dict(self, {
        "path": path, "kind": kind, "status": "reviewed", "error": None, "dags": dags, "tasks": tasks,
        "findings": 0, "suppressed": 0, "parse_seconds": None,
    })
    _set_fields_set(self, set(_REPORT_FIELDS_GIVEN))
    _set_extra(self, None)
    _set_private(self, None)
    return self

