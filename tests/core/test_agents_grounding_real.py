"""The grounding rule against the real domain tasks: the deterministic templates (prose written by
code from the same facts) must pass it, or the rule would reject honest answers; and an answer with
one number changed must fail it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from dataeng_agents.core.agents.prompting import safe_facts
from dataeng_agents.core.commands.data_pipeline import design_narration_task, review_narration_task
from dataeng_agents.core.design import design_pipeline
from dataeng_agents.core.experiment import analyze_experiment, experiment_narration_task
from dataeng_agents.core.llm.grounding import check_consistency, check_grounding
from dataeng_agents.core.llm.safety import SafetyLimits
from dataeng_agents.core.narrative import NarrationTask
from dataeng_agents.core.review import review_paths
from dataeng_agents.core.warehouse import DuckDBWarehouse
from test_experiment_support import demo_config, sample

REPO = Path(__file__).resolve().parents[2]
SPECS = sorted((REPO / "core" / "examples" / "specs").glob("*.yaml"))


def _tasks(tmp_root: Path) -> list[NarrationTask[Any]]:
    tasks: list[NarrationTask[Any]] = [design_narration_task(design_pipeline(s)) for s in SPECS]
    tasks.append(review_narration_task(review_paths(sorted((REPO / "dags_examples").glob("*.py")))))
    for seed, aa in [(11, False), (12, True)]:
        s = sample(tmp_root, users=6000, seed=seed, aa=aa)
        tasks.append(
            experiment_narration_task(analyze_experiment(demo_config(), DuckDBWarehouse(str(s.path))))
        )
    return tasks


@pytest.fixture(scope="module")
def tasks(tmp_path_factory: pytest.TempPathFactory) -> list[NarrationTask[Any]]:
    return _tasks(tmp_path_factory.mktemp("grounding"))


def test_deterministic_templates_pass_the_grounding_rule(tasks: list[NarrationTask[Any]]) -> None:
    checked = 0
    for task in tasks:
        facts = safe_facts(task, SafetyLimits())
        result = check_grounding(task.template(), facts, question=task.question)
        assert result.ok, f"{task.kind} {task.subject_id}: {result.describe()}"
        assert check_consistency(task.template(), facts) == [], f"{task.kind} {task.subject_id}"
        checked += result.checked
    assert len(tasks) >= 8 and checked >= 50  # the rule really looked at numbers


def test_one_changed_number_in_a_real_template_is_caught(tasks: list[NarrationTask[Any]]) -> None:
    experiment = next(t for t in tasks if t.kind == "experiment")
    honest = experiment.template()
    forged = honest.model_copy(update={"summary": honest.summary + " Conversion rose 41.7% overall."})
    result = check_grounding(forged, safe_facts(experiment, SafetyLimits()))
    assert not result.ok and [n.text for n in result.unmatched] == ["41.7"]
