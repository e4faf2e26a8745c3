"""Pipeline design from a declarative spec (or a sentence): scored architecture choice, components, cost."""

from __future__ import annotations

from dataeng_agents.core.design.design import PipelineDesign, design_pipeline, estimate_cost
from dataeng_agents.core.design.draft import SpecDraft, draft_spec, extract_spec, is_sentence
from dataeng_agents.core.design.recommend import ArchitectureScore, Reason, score_architectures
from dataeng_agents.core.pipeline_spec import PipelineSpec, load_spec, spec_json_schema

__all__ = [
    "ArchitectureScore",
    "PipelineDesign",
    "PipelineSpec",
    "Reason",
    "SpecDraft",
    "design_pipeline",
    "draft_spec",
    "estimate_cost",
    "extract_spec",
    "is_sentence",
    "load_spec",
    "score_architectures",
    "spec_json_schema",
]
