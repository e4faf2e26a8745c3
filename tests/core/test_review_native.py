"""The mypyc-compiled reviewer modules: active after the install, same findings as their Python
sources, and never used once a source changed after the build."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from dataeng_agents.core import review
from dataeng_agents.core.review import _native

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "core" / "fixtures" / "review"
RUNS = [("default", "3.3"), ("strict", "3.3"), ("examples", "3.3"), ("default", "2.10")]

_DUMP = """
import json, sys
from dataeng_agents.core.review import IMPLEMENTATION, review_paths
out = {"implementation": IMPLEMENTATION[0], "runs": []}
for profile, version in json.loads(sys.argv[1]):
    r = review_paths(sys.argv[2:], profile=profile, airflow_version=version).model_dump(mode="json")
    r.pop("elapsed_seconds")
    out["runs"].append(r)
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Every rule fixture as a real file (``<RULE>_bad.py``...), the shipped DAGs and flows, the core's
    own modules (plain Python), and Airflow's example DAGs where the airflow environment exists."""
    folder = tmp_path_factory.mktemp("native_corpus")
    for f in sorted(FIXTURES.glob("*/*.txt")):
        (folder / f"{f.parent.name}_{f.name.removesuffix('.txt')}").write_bytes(f.read_bytes())
    out = [folder, REPO / "dags_examples", REPO / "core"]
    out += sorted((REPO / ".venv-airflow").glob("lib/python3*/site-packages/airflow/example_dags"))
    return out


def _review_in_subprocess(corpus: list[Path], pure: bool) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "DATAENG_PURE_PYTHON"}
    if pure:
        env["DATAENG_PURE_PYTHON"] = "1"
    proc = subprocess.run(
        [sys.executable, "-c", _DUMP, json.dumps(RUNS), *map(str, corpus)],
        capture_output=True, text=True, env=env, check=False, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out: dict[str, Any] = json.loads(proc.stdout)
    return out


def test_the_compiled_reviewer_is_what_runs_after_the_install() -> None:
    # the test command installs with mypyc (a build requirement): a silent fallback to the sources
    # would halve the reviewer's speed without anyone noticing
    if os.environ.get("DATAENG_PURE_PYTHON"):
        assert review.IMPLEMENTATION[0] == "source"
    else:
        assert review.IMPLEMENTATION == ("compiled", "mypyc extensions built from the current sources")
        from dataeng_agents.core.review import airflow_checks, pyast

        assert not pyast.__file__.endswith(".py") and not airflow_checks.__file__.endswith(".py")


def test_compiled_and_source_reviewers_give_the_same_results(corpus: list[Path]) -> None:
    compiled, source = _review_in_subprocess(corpus, pure=False), _review_in_subprocess(corpus, pure=True)
    assert source["implementation"] == "source"
    assert compiled["implementation"] == "compiled"  # the variable is not passed on to this one
    findings = [len(r["findings"]) for r in source["runs"]]
    assert all(n > 100 for n in findings), findings  # the corpus exercises the rules
    assert compiled["runs"] == source["runs"]


def test_an_edited_source_is_detected_against_the_build_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _native.MODULES:
        (tmp_path / f"{name}.py").write_text(f"# {name}\n")
    monkeypatch.setattr(_native, "_HERE", tmp_path)
    assert _native._changed_since_build() is None  # no record: provenance unknown
    record = {m: hashlib.sha256(f"# {m}\n".encode()).hexdigest() for m in _native.MODULES}
    (tmp_path / "_native_build.json").write_text(json.dumps({"sources": record}))
    assert _native._changed_since_build() == []
    (tmp_path / "airflow_model.py").write_text("# airflow_model, edited\n")
    assert _native._changed_since_build() == ["airflow_model"]
    assert not _native._extension_built("pyast")
    (tmp_path / "pyast.cpython-311-x86_64-linux-gnu.so").write_bytes(b"")
    (tmp_path / "pyast.abi3.so").write_bytes(b"")
    assert _native._extension_built("pyast")


def test_a_stale_build_runs_the_sources_and_says_so(tmp_path: Path) -> None:
    # a copy of the installed package whose compiled modules are older than an edited source
    pkg = tmp_path / "dataeng_agents"
    shutil.copytree(REPO / "core", pkg / "core", ignore=shutil.ignore_patterns("__pycache__"))
    record = pkg / "core" / "review" / "_native_build.json"
    if not record.exists():
        pytest.fail("no build record next to the compiled reviewer: was the package installed with mypyc?")
    with open(pkg / "core" / "review" / "airflow_checks.py", "a", encoding="utf-8") as fh:
        fh.write("\nEDITED_AFTER_BUILD = True\n")
    code = (
        "import warnings; warnings.simplefilter('always')\n"
        "from dataeng_agents.core.review import IMPLEMENTATION, airflow_checks, pyast\n"
        "print(IMPLEMENTATION[0], IMPLEMENTATION[1], airflow_checks.EDITED_AFTER_BUILD, pyast.__file__)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DATAENG_PURE_PYTHON"}
    env["PYTHONPATH"] = str(tmp_path)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False,
                         cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split()[:2] == ["source", "changed"], out.stdout
    assert "airflow_checks.py" in out.stdout and " True " in out.stdout
    assert out.stdout.strip().endswith("pyast.py")
    assert "older than its source (airflow_checks.py)" in out.stderr
