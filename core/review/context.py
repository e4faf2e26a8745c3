"""What a check needs: the file, the review settings, and a way to report a finding."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from dataeng_agents.core.review.config import ReviewConfig
from dataeng_agents.core.review.models import Unresolved


@dataclass(slots=True)
class RawFinding:
    rule_id: str
    line: int
    column: int
    subject: str
    message: str
    #: one severity step below the rule's configured one (e.g. a deprecation on an older target version)
    demoted: bool = False


@dataclass
class CheckContext:
    path: str
    config: ReviewConfig
    airflow_version: str
    findings: list[RawFinding] = field(default_factory=list)
    unresolved: list[Unresolved] = field(default_factory=list)

    airflow_major: int = 3
    #: the rule ids not switched off; None: ask the config
    enabled_rules: frozenset[str] | None = None
    _on: frozenset[str] = field(repr=False, init=False, default=frozenset())

    def __post_init__(self) -> None:
        try:
            self.airflow_major = int(self.airflow_version.split(".")[0])
        except ValueError:
            self.airflow_major = 3
        self._on = self.enabled_rules if self.enabled_rules is not None else self.config.enabled_rules()

    def enabled(self, rule_id: str) -> bool:
        return rule_id in self._on

    def emit(
        self, rule_id: str, where: ast.AST | int, subject: str, message: str, *, demoted: bool = False
    ) -> None:
        """Report a finding; ``demoted`` lowers its severity one step (error -> warn -> info)."""
        if rule_id not in self._on:
            return
        if isinstance(where, int):
            self.findings.append(RawFinding(rule_id, where, 0, subject, message, demoted))
        else:
            self.findings.append(
                RawFinding(
                    rule_id,
                    getattr(where, "lineno", 1),
                    getattr(where, "col_offset", 0),
                    subject,
                    message,
                    demoted,
                )
            )

    def unknown(self, rule_id: str, line: int, subject: str, attribute: str, reason: str) -> None:
        if rule_id in self._on:
            self.unresolved.append(
                Unresolved(
                    rule_id=rule_id,
                    path=self.path,
                    line=line,
                    subject=subject,
                    attribute=attribute,
                    reason=reason,
                )
            )
