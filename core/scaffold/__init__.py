"""``dataeng pipeline scaffold``: a runnable project (DAG, flow, extract-load, dbt, checks) for a spec."""

from __future__ import annotations

from dataeng_agents.core.scaffold.render import Project, render_dag, render_flow, scaffold_project

__all__ = ["Project", "render_dag", "render_flow", "scaffold_project"]
