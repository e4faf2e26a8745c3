"""Bundled example inputs (``importlib.resources.files("dataeng_agents.core.examples")``)."""
