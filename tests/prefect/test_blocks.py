"""The blocks: Prefect's block standard test suite, secrets, validation and registration."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
from dataeng_agents.prefect_integration import AgentSettings, AnthropicCredentials, ExperimentWarehouse
from dataeng_agents.prefect_integration.blocks import LOGO_URL, REPO_URL
from PIL import Image
from prefect.blocks.core import Block
from prefect.testing.standard_test_suites import BlockStandardTestSuite

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("block", [AnthropicCredentials, ExperimentWarehouse, AgentSettings])
class TestBlockStandards(BlockStandardTestSuite):
    """Prefect's own checks: description, documentation URL, field descriptions, code example."""

    @pytest.fixture
    def block(self, block: type[Block]) -> type[Block]:
        return block

    def test_has_a_valid_image(self, block: type[Block]) -> None:
        # Prefect's version downloads the logo; this machine is offline, so check the file the
        # URL points at (raw.githubusercontent.com/<repo>/main/<path>) with the same rules.
        raw_prefix = REPO_URL.replace("https://github.com/", "https://raw.githubusercontent.com/") + "/main/"
        assert block._logo_url == LOGO_URL and LOGO_URL.startswith(raw_prefix)
        logo = REPO_ROOT / LOGO_URL.removeprefix(raw_prefix)
        with Image.open(logo) as img:
            assert img.width == img.height, "Logo should be a square image"
            assert 1000 > img.width > 45


def test_api_key_is_a_secret_never_shown(api_key: str) -> None:
    creds = AnthropicCredentials(api_key=api_key, base_url="https://gateway.example/v1")
    settings = AgentSettings(persona="data-engineer", anthropic_credentials=creds)
    for shown in (
        repr(creds),
        str(creds),
        repr(settings),
        creds.model_dump_json(),
        settings.model_dump_json(),
    ):
        assert api_key not in shown
    assert "**********" in creds.model_dump_json()
    schema = AnthropicCredentials.model_json_schema()
    assert schema["properties"]["api_key"]["format"] == "password"
    assert "api_key" in AnthropicCredentials._to_block_schema().fields["secret_fields"]
    # ... and the nested credentials' key is a secret field of the settings block too.
    assert "anthropic_credentials.api_key" in AgentSettings._to_block_schema().fields["secret_fields"]


def test_client_is_configured_from_the_block(api_key: str, caplog: pytest.LogCaptureFixture) -> None:
    creds = AnthropicCredentials(
        api_key=api_key, base_url="https://gateway.example/v1", timeout=33, max_retries=7
    )
    with caplog.at_level(logging.DEBUG):
        client = creds.get_client()
    assert client.api_key == api_key
    assert str(client.base_url).rstrip("/") == "https://gateway.example/v1"
    assert client.max_retries == 7
    assert client.timeout == 33
    assert api_key not in caplog.text


def test_blank_api_key_is_rejected_naming_the_field() -> None:
    with pytest.raises(ValueError, match="api_key"):
        AnthropicCredentials(api_key="  ")


def test_warehouse_needs_exactly_one_source(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"duckdb_path / sqlalchemy_connector: .*neither"):
        ExperimentWarehouse()
    from prefect_sqlalchemy import SqlAlchemyConnector

    connector = SqlAlchemyConnector(connection_info="postgresql+psycopg://u:pw@localhost/db")
    with pytest.raises(ValueError, match="both"):
        ExperimentWarehouse(duckdb_path=str(tmp_path / "x.duckdb"), sqlalchemy_connector=connector)
    described = ExperimentWarehouse(sqlalchemy_connector=connector).describe()
    assert "pw" not in described and "***" in described


def test_template_narrator_without_credentials() -> None:
    from dataeng_agents.core.narrative import TemplateNarrator

    assert isinstance(AgentSettings().get_narrator(), TemplateNarrator)
    assert AgentSettings().cache_identity()["model"] == "template"


def test_entry_point_points_at_the_blocks_module() -> None:
    from importlib.metadata import entry_points

    (ep,) = [e for e in entry_points(group="prefect.collections") if e.name == "dataeng_agents"]
    module = ep.load()
    assert {AgentSettings, AnthropicCredentials, ExperimentWarehouse} <= {
        getattr(module, name) for name in dir(module) if not name.startswith("_")
    }


def test_importing_the_collection_stays_light() -> None:
    # Prefect loads every collection when it looks up a block class: no anthropic, duckdb or scipy.
    code = (
        "import sys, dataeng_agents.prefect_integration as m; "
        "heavy = [x for x in ('anthropic', 'duckdb', 'scipy', 'sqlglot', 'matplotlib') if x in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_blocks_register_save_and_load(
    prefect_server: str, api_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    """`prefect block register -m dataeng_agents.prefect_integration` registers the three types."""
    import os

    env = {**os.environ, "PREFECT_API_URL": prefect_server}
    out = subprocess.run(
        [sys.executable, "-m", "prefect", "block", "register", "-m", "dataeng_agents.prefect_integration"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    for name in ("Anthropic Credentials", "Experiment Warehouse", "Agent Settings"):
        assert name in out.stdout
    assert "SQLAlchemy Connector" not in out.stdout  # only our own block types

    with caplog.at_level(logging.DEBUG):
        AgentSettings(
            persona="backend-architect",
            max_usd=0.5,
            anthropic_credentials=AnthropicCredentials(api_key=api_key),
        ).save("test-agent-settings", overwrite=True)
        loaded = AgentSettings.load("test-agent-settings")
    assert isinstance(loaded, AgentSettings)
    assert loaded.persona == "backend-architect" and loaded.max_usd == 0.5
    assert loaded.anthropic_credentials is not None
    assert loaded.anthropic_credentials.api_key.get_secret_value() == api_key
    assert api_key not in caplog.text

    # The server stores the secret but never returns it unless explicitly asked to.
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        doc = client.read_block_document_by_name(
            "test-agent-settings", block_type_slug="dataeng-agent-settings", include_secrets=False
        )
    assert api_key not in doc.model_dump_json()


def test_agent_settings_validate_the_persona() -> None:
    with pytest.raises(ValueError, match="unknown persona 'data-scientist'"):
        AgentSettings(persona="data-scientist")
    settings = AgentSettings(persona="backend-architect", model="claude-opus-4-1")
    assert settings.resolved_model() == "claude-opus-4-1"
    assert AgentSettings().resolved_model().startswith("claude-")


def test_package_root_exports_every_flow_and_task() -> None:
    import dataeng_agents.prefect_integration as root
    from dataeng_agents.prefect_integration import api_tasks, flows, pipeline_tasks, tasks
    from prefect import Flow, Task

    exported: dict[str, object] = {}
    for module in (flows, tasks, api_tasks, pipeline_tasks):
        for name, value in vars(module).items():
            # narrate / narrate_in_batch / fetch_deployed_contract are steps of the others, not entry points
            if isinstance(value, Flow) or (
                isinstance(value, Task) and not name.startswith(("_", "narrate", "fetch_"))
            ):
                exported[name] = value
    assert {"experiment_report_flow", "pipeline_review_flow", "feature_lifecycle_flow"} <= set(exported)
    assert "api_contract_drift_flow" in exported
    assert {"design_pipeline_from_request", "pipeline_design_flow"} <= set(exported)
    assert set(exported) <= set(root.__all__)
    for name, value in exported.items():
        assert getattr(root, name) is value
    with pytest.raises(AttributeError):
        _ = root.no_such_flow
