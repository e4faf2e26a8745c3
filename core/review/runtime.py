"""Runtime mode: load DAG files with Airflow's ``DagBag`` in a *separate* Python process.

The core never imports Airflow: the loader is a script passed to ``python -c`` of an interpreter that
has Airflow installed (e.g. ``.venv-airflow/bin/python``). It prints one JSON document with the parse
time per file, import errors and the effective task attributes the static pass could not decide.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from dataeng_agents.core.errors import InputError

LOADER = r"""
import json, os, sys, time, warnings
warnings.simplefilter("ignore")
try:
    from airflow.dag_processing.dagbag import DagBag
except ImportError:
    from airflow.models.dagbag import DagBag
out = {"files": {}}
for path in json.loads(sys.argv[1]):
    t0 = time.perf_counter()
    try:
        bag = DagBag(dag_folder=path, safe_mode=False)
    except Exception as exc:  # the loader must report every file
        out["files"][path] = {"parse_seconds": time.perf_counter() - t0, "error": repr(exc), "dags": []}
        continue
    dt = time.perf_counter() - t0
    dags = []
    for dag_id, dag in bag.dags.items():
        tasks = []
        for t in dag.tasks:
            et = getattr(t, "execution_timeout", None)
            tasks.append({
                "task_id": t.task_id,
                "operator": type(t).__name__,
                "retries": getattr(t, "retries", None),
                "execution_timeout": et.total_seconds() if et is not None else None,
                "owner": getattr(t, "owner", None),
                "on_failure_callback": bool(getattr(t, "on_failure_callback", None)),
                "timeout": getattr(t, "timeout", None) if hasattr(t, "poke_interval") else None,
            })
        dags.append({"dag_id": dag_id, "tasks": tasks,
                     "on_failure_callback": bool(getattr(dag, "on_failure_callback", None))})
    out["files"][path] = {"parse_seconds": dt, "dags": dags,
                          "error": "; ".join(str(v)[:500] for v in bag.import_errors.values()) or None}
print("@@DATAENG@@" + json.dumps(out, default=str))
"""


def run_dagbag(files: list[str], *, python: str, timeout: float = 300.0) -> dict[str, Any]:
    """Load ``files`` with DagBag in ``python``; returns ``{"files": {path: {...}}}``.

    Raises :class:`InputError` (field ``runtime``) when the interpreter has no Airflow or the load
    exceeds ``timeout`` seconds."""
    if not files:
        return {"files": {}}
    with tempfile.TemporaryDirectory(prefix="dataeng-dagbag-") as home:
        env = {
            **os.environ,
            "AIRFLOW_HOME": home,
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
            "AIRFLOW__CORE__DAGS_FOLDER": str(Path(files[0]).parent),
        }
        try:
            proc = subprocess.run(
                [python, "-c", LOADER, json.dumps([str(Path(f).resolve()) for f in files])],
                capture_output=True,
                text=True,
                timeout=timeout,
                env=env,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise InputError("runtime", f"DagBag load exceeded {timeout:g} s") from exc
        except OSError as exc:
            raise InputError("runtime.python", f"cannot run {python}: {exc}") from exc
    marker = proc.stdout.rfind("@@DATAENG@@")
    if proc.returncode != 0 or marker < 0:
        tail = (proc.stderr or proc.stdout)[-800:]
        raise InputError("runtime.python", f"DagBag loader failed (exit {proc.returncode}): {tail}")
    data: dict[str, Any] = json.loads(proc.stdout[marker + len("@@DATAENG@@") :])
    # map resolved paths back to the paths the caller gave
    resolved = {str(Path(f).resolve()): f for f in files}
    data["files"] = {resolved.get(k, k): v for k, v in data["files"].items()}
    return data
