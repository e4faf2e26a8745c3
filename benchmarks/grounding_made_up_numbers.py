"""How often does a made-up number pass the grounding check? The rule of this checkout vs the old one.

A narration answer may only state numbers the computed results hold (docs/agents.md, "Grounding").
A number drawn at random is a stand-in for a hallucinated one: the share of random numbers that
pass is the share of hallucinations the check cannot see. This script builds three real narration
tasks (an experiment analysis of the generated demo data, a review of ``dags_examples/``, a pipeline
design), draws random claims in four shapes (a percentage with one decimal, a proportion with three
decimals, a p-value, an integer count) and checks each as one sentence of the answer's summary, with
the current rule and, in the same run, with the rule of an older commit read from git
(``--baseline``, default the commit before the tightening). It also checks ordinary advice with
units, which the rule must accept.

Run:  python benchmarks/grounding_made_up_numbers.py [--claims 2000] [--seed 1] [--baseline REV]
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import subprocess
import sys
import tempfile
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dataeng_agents.core.agents.prompting import safe_facts
from dataeng_agents.core.llm import grounding as current
from dataeng_agents.core.llm.safety import SafetyLimits
from dataeng_agents.core.narrative import (
    AgentAnswer,
    ExperimentNarrative,
    NarrationTask,
    ReviewAdvice,
    ReviewPriority,
)
from pydantic import BaseModel

REPO = Path(__file__).resolve().parents[1]
BASELINE = "4b66102"  # main before issue 15's tightening


def load_baseline(rev: str) -> types.ModuleType | None:
    try:
        source = subprocess.run(
            ["git", "-C", str(REPO), "show", f"{rev}:core/llm/grounding.py"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    spec = importlib.util.spec_from_loader("grounding_baseline", loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["grounding_baseline"] = module  # dataclasses resolve annotations through sys.modules
    exec(compile(source, "grounding_baseline.py", "exec"), module.__dict__)
    return module


def tasks(tmp: Path) -> list[NarrationTask[Any]]:
    from dataeng_agents.core.cli.demo import _demo_config
    from dataeng_agents.core.commands.data_pipeline import design_narration_task, review_narration_task
    from dataeng_agents.core.design import design_pipeline
    from dataeng_agents.core.experiment import ExperimentConfig, analyze_experiment, experiment_narration_task
    from dataeng_agents.core.review import review_paths
    from dataeng_agents.core.warehouse import DuckDBWarehouse
    from dataeng_agents.core.warehouse.sample_data import DEFAULT_EFFECTS, generate

    db = tmp / "demo.duckdb"
    generate(db, users=20_000, seed=7, effects=DEFAULT_EFFECTS)
    cfg = ExperimentConfig.load(_demo_config())
    report = analyze_experiment(cfg, DuckDBWarehouse(str(db)))
    spec = sorted((REPO / "core" / "examples" / "specs").glob("*.yaml"))[0]
    return [
        experiment_narration_task(report),
        review_narration_task(review_paths(sorted((REPO / "dags_examples").glob("*.py")))),
        design_narration_task(design_pipeline(spec)),
    ]


def claim(rng: random.Random, shape: str) -> str:
    if shape == "percent":
        return f"The metric moved {rng.uniform(0, 50):.1f}%."
    if shape == "proportion":
        return f"The estimate is {rng.uniform(0, 1):.3f}."
    if shape == "p-value":
        return f"The result has p = {rng.uniform(0.0005, 0.2):.3f}."
    return f"There are {rng.randint(2, 500)} of them."


def answer_with(task: NarrationTask[Any], sentence: str) -> BaseModel:
    if task.output_model is ReviewAdvice:
        return ReviewAdvice(
            summary=sentence, priorities=[ReviewPriority(finding_ids=[], why="w", how_to_fix="h")]
        )
    if task.output_model is ExperimentNarrative:
        return ExperimentNarrative(headline="h", summary=sentence)
    return task.output_model(summary=sentence)  # type: ignore[call-arg]


ADVICE = [
    "Set retry_delay to 5 minutes and retries=3.",
    "Keep 90 days of partitions and run 8 workers.",
    "Use `execution_timeout=timedelta(minutes=45)` on the load task.",
    "Raise max_active_runs to 4 and give the pool 16 slots.",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=int, default=2000, help="random claims per shape and task")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--baseline", default=BASELINE, help="git revision of the rule to compare with")
    args = parser.parse_args()
    old = load_baseline(args.baseline)
    rules: dict[str, Callable[[BaseModel, Any], bool]] = {
        "current": lambda a, f: current.check_grounding(a, f).ok
    }
    if old is not None:
        rules = {f"baseline {args.baseline}": lambda a, f: old.check_grounding(a, f).ok, **rules}
    with tempfile.TemporaryDirectory() as tmp:
        all_tasks = tasks(Path(tmp))
    print(
        f"random made-up claims that PASS the grounding check ({args.claims} per shape and task, seed {args.seed})"
    )
    print(f"{'task':<12} {'shape':<11} " + " ".join(f"{name:>20}" for name in rules))
    totals = {name: [0, 0] for name in rules}
    for task in all_tasks:
        facts = safe_facts(task, SafetyLimits())
        for shape in ("percent", "proportion", "p-value", "integer"):
            rng = random.Random(f"{args.seed}-{task.kind}-{shape}")
            sentences = [claim(rng, shape) for _ in range(args.claims)]
            row = []
            for name, ok in rules.items():
                passed = sum(ok(answer_with(task, s), facts) for s in sentences)
                totals[name][0] += passed
                totals[name][1] += len(sentences)
                row.append(f"{passed / len(sentences):>19.1%} ")
            print(f"{task.kind:<12} {shape:<11} " + " ".join(row))
    print(f"{'all':<12} {'':<11} " + " ".join(f"{p / n:>19.1%} " for p, n in totals.values()))
    review = all_tasks[1]
    facts = safe_facts(review, SafetyLimits())
    print("\nadvice with units accepted (AgentAnswer.answer / ReviewAdvice.how_to_fix):")
    for name, ok in rules.items():
        accepted = sum(ok(AgentAnswer(answer=s), facts) for s in ADVICE)
        accepted += sum(
            ok(
                ReviewAdvice(summary="s", priorities=[ReviewPriority(finding_ids=[], why="w", how_to_fix=s)]),
                facts,
            )
            for s in ADVICE
        )
        print(f"  {name:<20} {accepted} of {2 * len(ADVICE)}")


if __name__ == "__main__":
    main()
