"""Result types of an API contract review. Findings are the pipeline reviewer's :class:`Finding`."""

from __future__ import annotations

from typing import Any, Literal

from dataeng_agents.core.review.models import Finding, FindingTotals
from pydantic import BaseModel, ConfigDict, Field

ApiKind = Literal["openapi", "graphql", "proto"]


class ApiFileReport(BaseModel):
    """What happened to one contract file."""

    model_config = ConfigDict(extra="forbid")

    path: str
    kind: Literal["openapi", "graphql", "proto", "error"]
    status: Literal["reviewed", "error"] = "reviewed"
    error: str | None = None
    title: str = Field(default="", description="API title and version, GraphQL root types or proto package.")
    operations: int = Field(default=0, description="Operations, root fields or RPCs found.")
    findings: int = 0
    suppressed: int = 0


class ApiReviewResult(FindingTotals, BaseModel):
    """Everything one ``review_api_paths`` call found."""

    model_config = ConfigDict(extra="forbid")

    profile: str
    files: list[ApiFileReport] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)
    suppressed: int = 0
    elapsed_seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        """A compact, JSON-able summary for XCom / Prefect results."""
        return {
            "files": len(self.files),
            "file_errors": sum(1 for f in self.files if f.status == "error"),
            "findings": self.counts(),
            "rules": self.rule_counts(),
            "suppressed": self.suppressed,
            "profile": self.profile,
        }

    def to_json(self, indent: int | None = 2) -> str:
        return self.model_dump_json(indent=indent)

    def to_markdown(self) -> str:
        from dataeng_agents.core.api.render import render_review_markdown

        return render_review_markdown(self)

    def to_sarif(self) -> dict[str, Any]:
        from dataeng_agents.core.api.render import render_review_sarif

        return render_review_sarif(self)
