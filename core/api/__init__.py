"""API contract work of the backend-architect: review, breaking-change diff and serving-API design.

Public API: :func:`review_api_paths` -> :class:`ApiReviewResult` (findings in the pipeline review's
shape, ``exit_code``, renderers); :func:`diff_paths` / :func:`diff_documents` ->
:class:`ApiDiffResult`; :func:`design_serving_api` -> :class:`ServingApiDesign`; :data:`API_RULES`;
the narration tasks in :mod:`.narration`. Parsing uses openapi-spec-validator + PyYAML, graphql-core
and proto-schema-parser; nothing here imports Airflow or Prefect.
"""

from __future__ import annotations

from dataeng_agents.core.api.config import API_PROFILES, ApiReviewConfig, load_api_config
from dataeng_agents.core.api.design import ServingApiDesign, ServingNote, ServingResource, design_serving_api
from dataeng_agents.core.api.diff import ApiChange, ApiDiffResult, diff_documents, diff_paths, read_git_file
from dataeng_agents.core.api.engine import review_api_paths, review_document
from dataeng_agents.core.api.loader import ApiParseError, load_document, parse_document
from dataeng_agents.core.api.models import ApiFileReport, ApiReviewResult
from dataeng_agents.core.api.narration import (
    api_diff_narration_task,
    api_review_narration_task,
    narrate_api_diff,
    narrate_api_review,
    narrate_serving_design,
    serving_design_narration_task,
)
from dataeng_agents.core.api.render import write_api_diff, write_api_review
from dataeng_agents.core.api.rules import API_RULES, ApiRule

__all__ = [
    "API_PROFILES",
    "API_RULES",
    "ApiChange",
    "ApiDiffResult",
    "ApiFileReport",
    "ApiParseError",
    "ApiReviewConfig",
    "ApiReviewResult",
    "ApiRule",
    "ServingApiDesign",
    "ServingNote",
    "ServingResource",
    "api_diff_narration_task",
    "api_review_narration_task",
    "design_serving_api",
    "diff_documents",
    "diff_paths",
    "load_api_config",
    "load_document",
    "narrate_api_diff",
    "narrate_api_review",
    "narrate_serving_design",
    "parse_document",
    "read_git_file",
    "review_api_paths",
    "review_document",
    "serving_design_narration_task",
    "write_api_diff",
    "write_api_review",
]
