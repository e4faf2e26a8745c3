"""Maps the three root folders onto the one import namespace ``dataeng_agents``.

Metadata lives in pyproject.toml; this file computes the package list, because setuptools cannot
discover sub-packages of a folder that is renamed through ``package-dir``.
"""

from __future__ import annotations

from pathlib import Path

from setuptools import setup

HERE = Path(__file__).parent
ROOTS = {
    "dataeng_agents.core": "core",
    "dataeng_agents.airflow_provider": "airflow_provider",
    "dataeng_agents.prefect_integration": "prefect_integration",
}
DATA_PATTERNS = ["*.md", "*.json", "*.yaml", "*.yml", "*.sql", "*.html", "*.j2", "*.png", "py.typed"]


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


PACKAGES, PACKAGE_DIR = _packages()

setup(
    packages=PACKAGES,
    package_dir=PACKAGE_DIR,
    package_data={pkg: DATA_PATTERNS for pkg in PACKAGES},
    include_package_data=True,
)
