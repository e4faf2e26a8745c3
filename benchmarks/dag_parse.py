"""Parse time of an example DAG that uses the dataeng operators vs the same DAG built with EmptyOperator.

The DAG processor imports DAG files in a process where Airflow is already loaded, so each sample
runs in a *fresh* interpreter that first imports ``airflow.sdk`` (untimed) and then times only the
import of the DAG file (``importlib`` from source, no cached bytecode of the DAG file itself). The
time is the process's CPU time, not wall time: on a shared machine the wall clock mostly measures
the neighbours.
The baseline twin is generated from the same file: every call of a dataeng operator is rewritten to
``EmptyOperator(task_id=...)`` (same task ids, same dependencies) and the dataeng imports are
dropped, so the only difference is what importing and constructing our operators costs.

Both variants are measured in one run, interleaved (A, B, A, B, ...), and the script prints the
median of each and their ratio. Target: ratio <= 1.15.

    .venv-airflow/bin/python benchmarks/dag_parse.py [--samples 9] [DAG_FILE ...]
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DAGS = sorted((ROOT / "dags_examples").glob("airflow_*.py"))
PROVIDER_PREFIX = "dataeng_agents.airflow_provider"
TARGET = 1.15

_MEASURE = r"""
import importlib.util, json, sys, time
import airflow.sdk  # loaded before timing: the DAG processor has Airflow imported already
from airflow.sdk import DAG, BaseOperator  # noqa: F401
sys.dont_write_bytecode = True
path = sys.argv[1]
t0, c0 = time.perf_counter(), time.process_time()
spec = importlib.util.spec_from_file_location("bench_dag_module", path)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
dags = [v for v in vars(module).values() if isinstance(v, DAG)]
print(json.dumps({"seconds": cpu, "wall_seconds": elapsed, "dags": len(dags), "tasks": sum(len(d.tasks) for d in dags)}))
"""


class _ToEmpty(ast.NodeTransformer):
    """Rewrite calls of the provider's operator classes to ``EmptyOperator(task_id=...)``."""

    def __init__(self, names: set[str]) -> None:
        self.names = names
        self.rewritten = 0

    def visit_ImportFrom(self, node: ast.ImportFrom) -> ast.AST | None:
        if node.module and node.module.startswith(PROVIDER_PREFIX):
            return None
        return node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.func, ast.Name) and node.func.id in self.names:
            self.rewritten += 1
            keep = [k for k in node.keywords if k.arg in ("task_id", "dag", "trigger_rule", "task_group")]
            empty = ast.Call(func=ast.Name("EmptyOperator", ast.Load()), args=[], keywords=keep)
            # arguments that call something (e.g. a @task producing the config) are still evaluated,
            # so the twin creates the same tasks: (lambda *_: EmptyOperator(...))(call(), ...)
            calls = [
                k.value for k in node.keywords if k.arg not in {x.arg for x in keep} and _has_call(k.value)
            ]
            if calls:
                lam = ast.Lambda(
                    args=ast.arguments(
                        posonlyargs=[],
                        args=[],
                        vararg=ast.arg("_"),
                        kwonlyargs=[],
                        kw_defaults=[],
                        defaults=[],
                    ),
                    body=empty,
                )
                return ast.copy_location(ast.Call(func=lam, args=calls, keywords=[]), node)
            return ast.copy_location(empty, node)
        return node


def _has_call(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Call) for n in ast.walk(node))


def empty_twin(source: str) -> tuple[str, int]:
    tree = ast.parse(source)
    names = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(PROVIDER_PREFIX)
        for alias in node.names
    }
    transformer = _ToEmpty(names)
    tree = transformer.visit(tree)
    index = next(
        i
        for i, n in enumerate(tree.body)
        if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))
    )
    if isinstance(tree.body[index], ast.ImportFrom) and tree.body[index].module == "__future__":
        index += 1
    tree.body.insert(
        index, ast.parse("from airflow.providers.standard.operators.empty import EmptyOperator").body[0]
    )
    return ast.unparse(ast.fix_missing_locations(tree)), transformer.rewritten


def measure(path: Path) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ.copy(),
    )
    if proc.returncode != 0:
        raise SystemExit(f"parsing {path} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench(dag_file: Path, samples: int) -> dict[str, object]:
    source = dag_file.read_text(encoding="utf-8")
    twin, rewritten = empty_twin(source)
    if rewritten == 0:
        raise SystemExit(f"{dag_file} uses no dataeng operator; nothing to compare")
    with tempfile.TemporaryDirectory() as tmp:
        real = Path(tmp) / dag_file.name
        base = Path(tmp) / f"empty_{dag_file.name}"
        real.write_text(source, encoding="utf-8")
        base.write_text(twin, encoding="utf-8")
        measure(real), measure(base)  # warm the OS file cache and compile airflow's bytecode once
        a: list[float] = []
        b: list[float] = []
        for _ in range(samples):
            ra, rb = measure(real), measure(base)
            if ra["tasks"] != rb["tasks"]:
                raise SystemExit(f"twin has {rb['tasks']} tasks, the DAG has {ra['tasks']}")
            a.append(ra["seconds"])
            b.append(rb["seconds"])
    ma, mb = statistics.median(a), statistics.median(b)
    return {
        "dag": dag_file.name,
        "operators_rewritten": rewritten,
        "tasks": ra["tasks"],
        "dataeng_ms": round(ma * 1000, 2),
        "empty_ms": round(mb * 1000, 2),
        "ratio": round(ma / mb, 3),
        "delta_ms": round((ma - mb) * 1000, 2),
        "samples": samples,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dags", nargs="*", type=Path, default=DEFAULT_DAGS)
    parser.add_argument("--samples", type=int, default=9)
    args = parser.parse_args()
    worst = 0.0
    for dag_file in args.dags:
        r = bench(dag_file, args.samples)
        worst = max(worst, float(r["ratio"]))  # type: ignore[arg-type]
        print(
            f"{r['dag']}: {r['tasks']} tasks ({r['operators_rewritten']} dataeng operators) | "
            f"dataeng {r['dataeng_ms']} ms vs EmptyOperator {r['empty_ms']} ms (median of {r['samples']} "
            f"fresh processes, CPU time) | +{r['delta_ms']} ms | ratio {r['ratio']:.3f}x"
        )
    print(f"worst ratio {worst:.3f}x (target <= {TARGET}x): {'OK' if worst <= TARGET else 'OVER TARGET'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
