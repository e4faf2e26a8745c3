"""Review every example DAG shipped inside the installed apache-airflow and
apache-airflow-providers-standard distributions (static mode), plus a runtime (DagBag) cross-check."""

from __future__ import annotations

import os
import sys
from importlib.metadata import distribution
from pathlib import Path

import pytest
from dataeng_agents.core.commands.data_pipeline import design_with_dag
from dataeng_agents.core.review import review_paths
from dataeng_agents.core.review.runtime import run_dagbag
from dataeng_agents.core.scaffold import scaffold_project

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from scaffold_support import dbt_executable

SPECS = Path(__file__).resolve().parents[2] / "core" / "examples" / "specs"
DISTRIBUTIONS = {
    "apache-airflow": "airflow/example_dags/",
    "apache-airflow-providers-standard": "airflow/providers/standard/example_dags/",
}


# Airflow 3's `apache-airflow` is a meta-distribution: the files ship in `apache-airflow-core`.
SHIPPED_BY = {
    "apache-airflow": ("apache-airflow", "apache-airflow-core"),
    "apache-airflow-providers-standard": ("apache-airflow-providers-standard",),
}


def _example_files() -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {}
    for dist_name, prefix in DISTRIBUTIONS.items():
        files: list[Path] = []
        for shipped in SHIPPED_BY[dist_name]:
            dist = distribution(shipped)
            files += [
                Path(str(dist.locate_file(f)))
                for f in dist.files or []
                if str(f).startswith(prefix) and str(f).endswith(".py")
            ]
        out[dist_name] = sorted(p for p in files if p.exists())
    return out


EXAMPLES = _example_files()


def _folder(dist_name: str) -> Path:
    return (
        EXAMPLES[dist_name][0].parents[0]
        if EXAMPLES[dist_name][0].parent.name == "example_dags"
        else next(p for p in EXAMPLES[dist_name][0].parents if p.name == "example_dags")
    )


def test_example_dags_are_found() -> None:
    assert len(EXAMPLES["apache-airflow"]) >= 40
    assert len(EXAMPLES["apache-airflow-providers-standard"]) >= 15


@pytest.mark.parametrize("profile", ["default", "examples"])
def test_every_shipped_example_dag_is_reviewed(profile: str, capsys: pytest.CaptureFixture[str]) -> None:
    folders = [_folder(d) for d in DISTRIBUTIONS]
    result = review_paths(folders, profile=profile, airflow_version="3.3")
    expected = {str(p) for files in EXAMPLES.values() for p in files}
    reported = {str(Path(f.path).resolve()) for f in result.files}
    assert {str(Path(p).resolve()) for p in expected} <= reported  # every file reported
    errors = [(f.path, f.error) for f in result.files if f.status == "error"]
    assert errors == []
    airflow_files = [f for f in result.files if f.kind == "airflow"]
    assert len(airflow_files) >= 60 and sum(len(f.dags) for f in airflow_files) >= 80
    counts = result.rule_counts()
    with capsys.disabled():
        print(
            f"\n[{profile}] {len(result.files)} example files, {len(result.findings)} findings, "
            f"{len(result.unresolved)} undecided, {result.elapsed_seconds:.2f} s"
        )
        for rule_id, n in counts.items():
            print(f"  {rule_id:8s} {n}")
    if profile == "examples":
        assert not {"REL001", "OBS001", "OBS003", "OBS004", "DQ001"} & set(counts)
    else:
        assert counts.get("REL001", 0) > 0 and counts.get("PERF006", 0) > 0


def test_runtime_mode_agrees_with_the_static_resolution(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    picks = [
        p
        for p in EXAMPLES["apache-airflow"]
        if p.name
        in {
            "tutorial.py",
            "example_retry_policy.py",
            "example_skip_dag.py",
            "example_xcom.py",
            "example_complex.py",
        }
    ]
    assert len(picks) == 5
    # the scaffolds' DAGs are loaded in the same DagBag subprocess, each with its project on the
    # path (with astronomer-cosmos installed the DAG reads its dbt project through the package)
    starters, projects = [], []
    for spec in sorted(SPECS.glob("*.yaml")):
        design, source = design_with_dag(spec)
        project = scaffold_project(spec, design)
        project.write(tmp_path / spec.stem)
        target = tmp_path / spec.stem / "dags" / f"{design.spec_name}.py"
        assert target.read_text() == source
        starters.append(target)
        projects.append(str(tmp_path / spec.stem))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(projects))
    monkeypatch.setenv("DBT_EXECUTABLE", dbt_executable())
    # the loader's Airflow home has no metadata database: cosmos' dbt-ls cache lives in Variables
    monkeypatch.setenv("AIRFLOW__COSMOS__ENABLE_CACHE", "False")
    data = run_dagbag([str(p) for p in [*picks, *starters]], python=sys.executable, timeout=240)
    for starter in starters:
        info = data["files"][str(starter)]
        assert info["error"] is None, (starter.name, info["error"])
        assert [d["dag_id"] for d in info["dags"]] == [starter.stem]
        data["files"].pop(str(starter))
    static = review_paths(picks, profile="strict")
    # per DAG: does the static pass say some task has no retries, and does the loaded DAG agree?
    static_dags = {f.subject.split(".", 1)[0] for f in static.findings if f.rule_id == "REL001"}
    runtime_dags: set[str] = set()
    checked = 0
    for info in data["files"].values():
        assert info["error"] is None and info["parse_seconds"] > 0
        for dag in info["dags"]:
            work = [t for t in dag["tasks"] if t["operator"] not in {"EmptyOperator"}]
            checked += len(work)
            if any(not t["retries"] for t in work):
                runtime_dags.add(dag["dag_id"])
    assert checked >= 10
    assert static_dags == runtime_dags
    # default_args built by code: static review cannot decide REL001/OBS003, the DagBag run can
    dynamic = tmp_path / "dynamic_args.py"
    dynamic.write_text(
        "import pendulum\n"
        "from airflow.sdk import DAG\n"
        "from airflow.providers.standard.operators.bash import BashOperator\n\n"
        "def make_args():\n"
        "    return {'retries': 0, 'owner': 'payments'}\n\n"
        "with DAG(dag_id='dynamic_args', schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz='UTC'),\n"
        "         default_args=make_args()):\n"
        "    BashOperator(task_id='work', bash_command='echo 1')\n"
    )
    offline = review_paths([dynamic], profile="strict")
    assert {u.rule_id for u in offline.unresolved} >= {"REL001", "OBS003"}
    assert not {"REL001", "OBS003"} & {f.rule_id for f in offline.findings}
    runtime = review_paths(
        [picks[0], dynamic], profile="strict", runtime=True, python=sys.executable, runtime_timeout=240
    )
    assert all(
        f.parse_seconds is not None and f.parse_seconds > 0 for f in runtime.files if f.kind == "airflow"
    )
    decided = {f.rule_id: f.message for f in runtime.findings if f.path == str(dynamic)}
    assert "resolved at runtime" in decided["REL001"]  # retries=0 once the function has run
    assert "OBS003" not in decided  # owner 'payments' is fine
    assert not [u for u in runtime.unresolved if u.path == str(dynamic) and u.rule_id in {"REL001", "OBS003"}]
