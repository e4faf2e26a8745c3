"""API review configuration: profiles, ``[tool.dataeng.api]`` in pyproject.toml, the exceptions file.

Same precedence as the pipeline review (last wins): rule default severity -> profile -> ``severity``
table / ``disable`` list -> explicit arguments. Inline ``# dataeng: ignore[RULE]`` (``//`` in .proto)
comments and the exceptions file remove findings after the checks ran (counted as suppressed). The
exceptions file format and matching are the pipeline review's (:class:`ExceptionEntry`).
"""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path
from typing import Any, Literal

from dataeng_agents.core.api.rules import API_RULES
from dataeng_agents.core.errors import ConfigError
from dataeng_agents.core.review.config import ExceptionEntry, find_pyproject, parse_exceptions
from dataeng_agents.core.review.models import Severity
from pydantic import BaseModel, ConfigDict, Field, ValidationError

ApiProfile = Literal["strict", "default", "examples"]
API_PROFILES: tuple[str, ...] = ("strict", "default", "examples")

DEFAULT_PAGINATION_PARAMS = (
    "limit",
    "page_size",
    "pagesize",
    "per_page",
    "perpage",
    "size",
    "max_results",
    "maxresults",
    "first",
    "top",
    "cursor",
    "page_token",
    "pagetoken",
    "next_token",
    "after",
    "before",
    "offset",
    "page",
    "skip",
    "starting_after",
)


class ApiReviewConfig(BaseModel):
    """Settings of one API review (validated; unknown keys are rejected)."""

    model_config = ConfigDict(extra="forbid")

    profile: ApiProfile = "default"
    severity: dict[str, Severity] = Field(
        default_factory=dict, description="Per-rule override; 'off' disables."
    )
    disable: list[str] = Field(default_factory=list)
    exceptions_file: str | None = None
    exclude: list[str] = Field(default_factory=list, description="Path globs not to review.")
    exceptions: list[ExceptionEntry] = Field(default_factory=list)
    pagination_params: list[str] = Field(
        default_factory=lambda: list(DEFAULT_PAGINATION_PARAMS),
        description="Query parameter names (lower case, '-' read as '_') that count as pagination.",
    )
    graphql_max_depth: int | None = Field(
        default=None,
        ge=1,
        description="The query depth limit the GraphQL server enforces (satisfies GQL002).",
    )
    max_file_bytes: int = Field(default=20_000_000, ge=1)

    def severity_of(self, rule_id: str) -> Severity:
        if rule_id in self.disable:
            return Severity.off
        if rule_id in self.severity:
            return self.severity[rule_id]
        rule = API_RULES[rule_id]
        if self.profile == "examples" and rule.production_only:
            return Severity.off
        if self.profile == "strict" and rule.severity is Severity.info:
            return Severity.warn
        return rule.severity

    def enabled(self, rule_id: str) -> bool:
        return self.severity_of(rule_id) is not Severity.off

    def excepted(self, path: str, rule_id: str) -> bool:
        return any(e.matches(path, rule_id) for e in self.exceptions)

    def excluded(self, path: str) -> bool:
        posix = Path(path).as_posix()
        return any(fnmatch.fnmatch(posix, g) or fnmatch.fnmatch(posix, f"*/{g}") for g in self.exclude)


def load_api_config(
    *,
    profile: str | None = None,
    pyproject: str | Path | None = None,
    search_from: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> ApiReviewConfig:
    """Build the config from ``[tool.dataeng.api]`` (an explicit file, or found upwards from
    ``search_from``), then apply ``overrides`` and ``profile``. Errors name the offending key."""
    data: dict[str, Any] = {}
    base_dir = Path.cwd()
    src = Path(pyproject) if pyproject else (find_pyproject(Path(search_from)) if search_from else None)
    if src is not None:
        try:
            doc = tomllib.loads(src.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(str(src), f"cannot read {src.name}: {exc}") from exc
        section = doc.get("tool", {}).get("dataeng", {}).get("api")
        # a standalone file (e.g. dataeng-api.toml) may keep the keys at the top level
        data = dict(section if section is not None else ({} if "tool" in doc or "project" in doc else doc))
        base_dir = src.parent
    if overrides:
        data.update({k: v for k, v in overrides.items() if v is not None})
    if profile is not None:
        data["profile"] = profile
    return api_config_from_dict(data, base_dir=base_dir, where="tool.dataeng.api")


def api_config_from_dict(
    data: dict[str, Any], *, base_dir: Path | None = None, where: str = "config"
) -> ApiReviewConfig:
    for rule_id in dict(data.get("severity") or {}):
        if rule_id not in API_RULES:
            raise ConfigError(f"{where}.severity.{rule_id}", "unknown API rule id")
    for i, rule_id in enumerate(data.get("disable") or []):
        if rule_id not in API_RULES:
            raise ConfigError(f"{where}.disable[{i}]", f"unknown API rule id {rule_id!r}")
    try:
        cfg = ApiReviewConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise ConfigError(f"{where}.{loc}" if loc else where, err["msg"]) from exc
    if cfg.exceptions_file:
        p = Path(cfg.exceptions_file)
        if not p.is_absolute() and base_dir is not None:
            p = base_dir / p
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{where}.exceptions_file", f"cannot read {p}: {exc}") from exc
        cfg.exceptions = [*cfg.exceptions, *parse_exceptions(text, str(p), known=API_RULES)]
    return cfg
