"""API review configuration: profiles, ``[tool.dataeng.api]`` in pyproject.toml, the exceptions file.

Same precedence as the pipeline review (last wins): rule default severity -> profile -> ``severity``
table / ``disable`` list -> explicit arguments. Inline ``# dataeng: ignore[RULE]`` (``//`` in .proto)
comments and the exceptions file remove findings after the checks ran (counted as suppressed). The
settings, their precedence and loading, and the exceptions file format and matching are the pipeline
review's (:class:`RuleSettings`, :class:`ExceptionEntry`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from dataeng_agents.core.api.rules import API_RULES, ApiRule
from dataeng_agents.core.review.config import PROFILES, ExceptionEntry, Profile, RuleSettings
from pydantic import Field

#: the pipeline review's profiles
ApiProfile = Profile
API_PROFILES: tuple[str, ...] = PROFILES

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


class ApiReviewConfig(RuleSettings):
    """Settings of one API review (validated; unknown keys are rejected)."""

    rule_table: ClassVar[Mapping[str, ApiRule]] = API_RULES
    rule_noun: ClassVar[str] = "API rule id"
    toml_section: ClassVar[str] = "api"

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


#: ``[tool.dataeng.api]`` (see :meth:`RuleSettings.load`)
load_api_config = ApiReviewConfig.load
#: see :meth:`RuleSettings.from_dict`
api_config_from_dict = ApiReviewConfig.from_dict
