"""Pipeline design from a declarative spec: scored architecture choice, components, cost, starter DAG."""

from __future__ import annotations

from dataeng_agents.core.design.design import PipelineDesign, design_pipeline, estimate_cost
from dataeng_agents.core.design.recommend import ArchitectureScore, Reason, score_architectures
from dataeng_agents.core.design.starter_dag import render_starter_dag
from dataeng_agents.core.pipeline_spec import PipelineSpec, load_spec, spec_json_schema

__all__ = [
    "ArchitectureScore",
    "PipelineDesign",
    "PipelineSpec",
    "Reason",
    "design_pipeline",
    "estimate_cost",
    "load_spec",
    "render_starter_dag",
    "score_architectures",
    "spec_json_schema",
]
