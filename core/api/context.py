"""What an API check needs: the file, the settings, and a way to report a finding."""

from __future__ import annotations

from dataclasses import dataclass, field

from dataeng_agents.core.api.config import ApiReviewConfig
from dataeng_agents.core.review.context import RawFinding


@dataclass
class ApiCheckContext:
    path: str
    config: ApiReviewConfig
    findings: list[RawFinding] = field(default_factory=list)

    def enabled(self, rule_id: str) -> bool:
        return self.config.enabled(rule_id)

    def emit(self, rule_id: str, line: int, subject: str, message: str) -> None:
        if self.config.enabled(rule_id):
            self.findings.append(RawFinding(rule_id, max(int(line), 1), 0, subject, message))
