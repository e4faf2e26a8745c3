"""Result types of a pipeline review: findings, per-file reports and the whole result."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, Protocol

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


@dataclass(slots=True)
class Finding:
    """One rule violation at one place. ``id`` is stable for the same input (no line numbers in it).

    A plain dataclass, not a pydantic model: a review makes hundreds of them from values the
    checks already typed. :class:`ReviewResult` validates them when it is read back from JSON.
    The field order is the order of the JSON keys."""

    id: str
    rule_id: str
    severity: Severity
    category: str
    path: str
    line: int
    column: int
    message: str
    #: the DAG / task / flow / spec field the finding is about
    subject: str = ""
    fix: str = ""

    @staticmethod
    def make_id(rule_id: str, path: str, subject: str, message: str) -> str:
        digest = hashlib.sha1(f"{rule_id}|{path}|{subject}|{message}".encode()).hexdigest()[:10]
        return f"{rule_id}-{digest}"


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


class _ReviewedFileStatus(Protocol):
    @property
    def status(self) -> str: ...


class _FindingsAndFiles(Protocol):
    @property
    def findings(self) -> Sequence[Finding]: ...
    @property
    def files(self) -> Sequence[_ReviewedFileStatus]: ...


class FindingTotals:
    """``counts``, ``rule_counts`` and ``exit_code`` of a review result with ``findings`` and ``files``
    (the pipeline :class:`ReviewResult` and the API review result). A plain mixin: it adds no fields,
    so the results' JSON keeps its field order."""

    def counts(self: _FindingsAndFiles) -> dict[str, int]:
        """The findings per severity: ``{"error": n, "warn": n, "info": n}``."""
        out = {"error": 0, "warn": 0, "info": 0}
        for f in self.findings:
            out[f.severity.value] += 1
        return out

    def rule_counts(self: _FindingsAndFiles) -> dict[str, int]:
        """The findings per rule id, sorted by id."""
        out: dict[str, int] = {}
        for f in self.findings:
            out[f.rule_id] = out.get(f.rule_id, 0) + 1
        return dict(sorted(out.items()))

    def exit_code(self: _FindingsAndFiles, fail_on: FailOn = "error") -> int:
        """1 when a finding at or above ``fail_on`` exists or a file could not be reviewed; else 0.

        ``never`` always gives 0; another value that is not a severity raises ``ValueError`` (checked
        before the files, so an unreadable file does not hide it)."""
        if fail_on == "never":
            return 0
        threshold = Severity(fail_on).rank
        if any(f.status == "error" for f in self.files):
            return 1
        return 1 if any(f.severity.rank >= threshold for f in self.findings) else 0


class ReviewResult(FindingTotals, BaseModel):
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
