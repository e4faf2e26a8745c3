"""A ``postgresql://`` warehouse on a core install without psycopg: one line naming the extra to install."""

from __future__ import annotations

import sys
from importlib.resources import files
from pathlib import Path

import pytest
from dataeng_agents.core.cli import app
from dataeng_agents.core.errors import WarehouseError
from dataeng_agents.core.warehouse.runners import warehouse_from_url
from typer.testing import CliRunner

URL = "postgresql://analytics:s3cret@127.0.0.1:1/prod"


@pytest.fixture
def no_psycopg(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes `import psycopg` raise ImportError, as on a core-only install
    monkeypatch.setitem(sys.modules, "psycopg", None)


@pytest.mark.usefixtures("no_psycopg")
def test_resolver_names_the_extra() -> None:
    with pytest.raises(WarehouseError, match=r"dataeng-agents\[postgres\]") as info:
        warehouse_from_url(URL)
    assert "s3cret" not in str(info.value)


@pytest.mark.usefixtures("no_psycopg")
def test_cli_analyze_names_the_extra(tmp_path: Path) -> None:
    config = tmp_path / "checkout.yaml"
    config.write_text(
        files("dataeng_agents.core.examples.experiments").joinpath("checkout_demo.yaml").read_text("utf-8")
    )
    result = CliRunner().invoke(
        app, ["experiment", "analyze", str(config), "--warehouse", URL, "--out", str(tmp_path / "r")]
    )
    assert result.exit_code == 2, result.output
    assert "pip install 'dataeng-agents[postgres]'" in result.stderr
    assert "No module named" not in result.stderr and "s3cret" not in result.stderr
    assert not (tmp_path / "r").exists()
