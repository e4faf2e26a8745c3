"""Deterministic core of dataeng-agents: statistics, warehouse analysis, review rules, agents."""

__version__ = "0.1.0"
