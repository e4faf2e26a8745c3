"""The distribution's layout as declared in pyproject.toml: every package listed, one version source.

Sub-packages of a folder renamed through ``package-dir`` are not discovered by setuptools, so the
package list is written out; a new folder with an ``__init__.py`` that is not listed would be left out
of the wheel (and only fail for users of the wheel, never in the editable checkout).
"""

from __future__ import annotations

import tomllib
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def setuptools_table() -> dict[str, Any]:
    doc = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    table: dict[str, Any] = doc["tool"]["setuptools"]
    return table


def _packages_on_disk(package_dir: dict[str, str]) -> set[str]:
    found: set[str] = set()
    for root_name, folder in package_dir.items():
        root = REPO / folder
        for init in root.rglob("__init__.py"):
            if "__pycache__" in init.parts:
                continue
            rel = init.parent.relative_to(root).parts
            found.add(".".join((root_name, *rel)))
    return found


def test_every_package_folder_is_listed(setuptools_table: dict[str, Any]) -> None:
    listed = set(setuptools_table["packages"])
    on_disk = _packages_on_disk(setuptools_table["package-dir"])
    assert on_disk - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
    assert listed - on_disk == set(), "listed in pyproject.toml but no folder with an __init__.py"


def test_the_three_roots_map_onto_one_namespace(setuptools_table: dict[str, Any]) -> None:
    assert setuptools_table["package-dir"] == {
        "dataeng_agents.core": "core",
        "dataeng_agents.airflow_provider": "airflow_provider",
        "dataeng_agents.prefect_integration": "prefect_integration",
    }


def test_no_build_script_besides_pyproject() -> None:
    # a setup.py would be a second place for the package list (and once compiled the reviewer)
    assert not (REPO / "setup.py").exists()


def test_one_version_source() -> None:
    from dataeng_agents.core import __version__

    doc = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in doc["project"] and "version" in doc["project"]["dynamic"]
    assert doc["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "dataeng_agents.core.__version__"}
    assert version("dataeng-agents") == __version__
