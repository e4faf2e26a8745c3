"""The two commands of the product: data-driven-feature (experiments) and data-pipeline.

Import the facades from their modules, e.g.
``from dataeng_agents.core.commands.data_driven_feature import analyze_experiment``.
"""

from __future__ import annotations
