"""The pipeline command (data-pipeline) and the feature-lifecycle facades.

Import the facades from their modules, e.g.
``from dataeng_agents.core.commands.lifecycle import rollout_check``; the experiment facades
(``analyze_experiment``, ``design_experiment``) live in :mod:`dataeng_agents.core.experiment`.
"""

from __future__ import annotations
