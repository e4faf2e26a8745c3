"""Maps the three root folders onto the one import namespace ``dataeng_agents``, and compiles the
pipeline reviewer's hot modules with mypyc.

Metadata lives in pyproject.toml; this file computes the package list, because setuptools cannot
discover sub-packages of a folder that is renamed through ``package-dir``, and declares the compiled
extensions.

The reviewer's indexing walk, DAG/task model and checks (``core/review/{pyast,context,airflow_model,
airflow_checks}.py``) are compiled to C extensions with mypyc (the core is mypy --strict clean): the
same source, its work beyond parsing about 1.5x as fast (docs/review.md). The ``.py`` files stay the
source of truth and the fallback: ``DATAENG_PURE_PYTHON=1`` at install time builds nothing, at run
time it loads the sources; ``core/review/_native.py`` also loads the sources when they changed after
the last build, and a failed compilation (no C compiler) leaves the install pure Python.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).parent
ROOTS = {
    "dataeng_agents.core": "core",
    "dataeng_agents.airflow_provider": "airflow_provider",
    "dataeng_agents.prefect_integration": "prefect_integration",
}
DATA_PATTERNS = ["*.md", "*.json", "*.yaml", "*.yml", "*.sql", "*.html", "*.j2", "*.png", "py.typed"]
NATIVE_LOADER = HERE / "core" / "review" / "_native.py"


def _native_names() -> tuple[list[str], str]:
    """``MODULES`` and ``GROUP`` of core/review/_native.py, which decides at run time what is compiled:
    read as literals, since importing it needs the installed package."""
    values = {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in ast.parse(NATIVE_LOADER.read_text(encoding="utf-8")).body
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
        and node.targets[0].id in ("MODULES", "GROUP")
    }
    return list(values["MODULES"]), f"dataeng_agents.core.review.{values['GROUP']}"


def _packages() -> tuple[list[str], dict[str, str]]:
    packages: list[str] = []
    package_dir: dict[str, str] = {}
    for name, folder in ROOTS.items():
        root = HERE / folder
        for init in sorted(root.rglob("__init__.py")):
            rel = init.parent.relative_to(HERE)
            sub = ".".join(init.parent.relative_to(root).parts)
            pkg = f"{name}.{sub}" if sub else name
            packages.append(pkg)
            package_dir[pkg] = rel.as_posix()
    return packages, package_dir


def _native_extensions() -> list[object]:
    if os.environ.get("DATAENG_PURE_PYTHON"):
        print("dataeng-agents: DATAENG_PURE_PYTHON is set, the reviewer stays pure Python", file=sys.stderr)
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        print("dataeng-agents: mypyc is not installed, the reviewer stays pure Python", file=sys.stderr)
        return []
    # mypyc names a module after its path: compile a staged copy laid out as installed
    # (dataeng_agents/core/...), so the extensions are dataeng_agents.core.review.*
    stage = HERE / "build" / "mypyc-src"
    shutil.rmtree(stage, ignore_errors=True)
    shutil.copytree(HERE / "core", stage / "dataeng_agents" / "core",
                    ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.pyd"))
    (stage / "dataeng_agents" / "__init__.py").write_text("")
    modules, group = _native_names()
    review = HERE / "core" / "review"
    sources = {m: hashlib.sha256((review / f"{m}.py").read_bytes()).hexdigest() for m in modules}
    # what _native.py compares against at import: a compiled module older than its source is not used
    (review / "_native_build.json").write_text(json.dumps({"sources": sources}, indent=1) + "\n")
    paths = [str(stage / "dataeng_agents" / "core" / "review" / f"{m}.py") for m in modules]
    # no project config (its pydantic plugin is not in the build environment); third-party
    # packages are not installed there either, so their types are Any to the compiler
    extensions = list(mypycify(["--config-file=", "--ignore-missing-imports", *paths], group_name=group))
    for ext in extensions:
        # no C compiler (or a failing one) skips the extension instead of failing the install;
        # _native.py then runs the sources
        ext.optional = True
    return extensions


PACKAGES, PACKAGE_DIR = _packages()

setup(
    packages=PACKAGES,
    package_dir=PACKAGE_DIR,
    package_data={pkg: DATA_PATTERNS for pkg in PACKAGES},
    include_package_data=True,
    ext_modules=_native_extensions(),
)
