"""Prefect blocks: Anthropic credentials, the experiment warehouse and the agent settings.

The blocks only translate Prefect configuration into core objects (an ``anthropic`` client, a core
``Warehouse``, a core ``Narrator``); every number and finding is computed by the core. Heavy
libraries (``anthropic``, ``duckdb``) are imported inside the methods so that loading the
``prefect.collections`` entry point stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prefect.blocks.abstract import CredentialsBlock
from prefect.blocks.core import Block
from prefect_sqlalchemy import SqlAlchemyConnector
from pydantic import Field, SecretStr, field_validator, model_validator

if TYPE_CHECKING:
    import anthropic
    from dataeng_agents.core.narrative import Narrator

REPO_URL = "https://github.com/dataeng-agents/dataeng-agents"
DOCS_URL = f"{REPO_URL}/blob/main/docs/prefect.md"
# The square logo the Prefect UI shows; the file lives next to this module in the repository.
LOGO_URL = "https://raw.githubusercontent.com/dataeng-agents/dataeng-agents/main/prefect_integration/logo.png"


class AnthropicCredentials(CredentialsBlock):
    """Credentials for Anthropic's Claude API, used by the data-engineering agents to write prose.

    The API key is stored as a secret: Prefect never shows it in the UI, in logs or in a block's
    ``repr``. Without this block the agents use the deterministic template narrator (no API call).

    Attributes:
        api_key: The Anthropic API key.
        base_url: An alternative API endpoint (a proxy or gateway); the SDK default when empty.
        timeout: Seconds before a request to the API times out.
        max_retries: How many times the SDK retries a request on 429/5xx/connection errors.

    Example:
        Load stored credentials and get a configured ``anthropic.Anthropic`` client:
        ```python
        from dataeng_agents.prefect_integration import AnthropicCredentials

        anthropic_credentials = AnthropicCredentials.load("BLOCK_NAME")
        client = anthropic_credentials.get_client()
        ```
    """

    _block_type_name = "Anthropic Credentials"
    _block_type_slug = "dataeng-anthropic-credentials"
    _documentation_url = DOCS_URL  # type: ignore[assignment]
    _logo_url = LOGO_URL  # type: ignore[assignment]

    api_key: SecretStr = Field(
        default=...,
        title="API Key",
        description="The Anthropic API key used to authenticate requests to the Messages API.",
    )
    base_url: str | None = Field(
        default=None,
        title="Base URL",
        description="An alternative API endpoint such as a gateway; the SDK default is used when empty.",
    )
    timeout: float = Field(
        default=120.0,
        gt=0,
        description="Seconds before one request to the API times out.",
    )
    max_retries: int = Field(
        default=4,
        ge=0,
        description="How many times the SDK retries a request after a 429, a 5xx or a connection error.",
    )

    @field_validator("api_key")
    @classmethod
    def _api_key_not_blank(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("api_key must not be empty")
        return value

    def get_client(self, **client_kwargs: Any) -> anthropic.Anthropic:
        """Returns an ``anthropic.Anthropic`` client configured from this block.

        Args:
            **client_kwargs: Extra keyword arguments for ``anthropic.Anthropic`` (for example
                ``http_client`` in tests); they override the block's values.

        Returns:
            The synchronous Anthropic client.
        """
        import anthropic

        kwargs: dict[str, Any] = {
            "api_key": self.api_key.get_secret_value(),
            "timeout": self.timeout,
            "max_retries": self.max_retries,
        }
        if self.base_url:
            kwargs["base_url"] = self.base_url
        kwargs.update(client_kwargs)
        return anthropic.Anthropic(**kwargs)


class ExperimentWarehouse(Block):
    """The warehouse that holds the experiment's exposures and events.

    Either a DuckDB database file, or a prefect-sqlalchemy ``SqlAlchemyConnector`` block (PostgreSQL,
    Snowflake, BigQuery, Redshift, Databricks, ...) whose engine runs the warehouse-native SQL.
    Only sufficient statistics (counts, sums, sums of squares) leave the database.

    Attributes:
        duckdb_path: Path of a DuckDB database file.
        sqlalchemy_connector: A prefect-sqlalchemy connector block; its engine runs the queries.

    Example:
        Load a stored warehouse and get the core warehouse object:
        ```python
        from dataeng_agents.prefect_integration import ExperimentWarehouse

        experiment_warehouse = ExperimentWarehouse.load("BLOCK_NAME")
        warehouse = experiment_warehouse.get_warehouse()
        ```
    """

    _block_type_name = "Experiment Warehouse"
    _block_type_slug = "dataeng-experiment-warehouse"
    _documentation_url = DOCS_URL  # type: ignore[assignment]
    _logo_url = LOGO_URL  # type: ignore[assignment]

    duckdb_path: str | None = Field(
        default=None,
        title="DuckDB path",
        description="Path of a DuckDB database file; leave empty when a SQLAlchemy connector is set.",
    )
    sqlalchemy_connector: SqlAlchemyConnector | None = Field(
        default=None,
        title="SQLAlchemy Connector",
        description=(
            "A prefect-sqlalchemy connector (synchronous driver) whose engine runs the queries. For "
            "PostgreSQL type the driver 'postgresql+psycopg' (psycopg 3, what the postgres extra "
            "installs); a 'postgresql+psycopg2' choice is switched to psycopg 3 when psycopg2 is not "
            "installed."
        ),
    )

    @model_validator(mode="after")
    def _exactly_one_source(self) -> ExperimentWarehouse:
        has_duckdb = bool(self.duckdb_path)
        has_connector = self.sqlalchemy_connector is not None
        if has_duckdb == has_connector:
            raise ValueError(
                "duckdb_path / sqlalchemy_connector: set exactly one of them "
                f"(got {'both' if has_duckdb else 'neither'})"
            )
        return self

    def get_warehouse(self) -> Any:
        """Returns the core ``Warehouse`` (``DuckDBWarehouse`` or ``SqlAlchemyWarehouse``)."""
        from dataeng_agents.core.warehouse import DuckDBWarehouse, SqlAlchemyWarehouse

        if self.sqlalchemy_connector is not None:
            return SqlAlchemyWarehouse(self._connector_with_installed_driver().get_engine())
        assert self.duckdb_path is not None
        return DuckDBWarehouse(self.duckdb_path)

    def _connector_with_installed_driver(self) -> SqlAlchemyConnector:
        """The connector, its PostgreSQL driver switched to psycopg 3 when psycopg2 is missing.

        prefect-sqlalchemy's form lists ``postgresql+psycopg2`` (not psycopg 3) among its drivers,
        while this package's ``postgres`` extra installs psycopg 3.
        """
        import importlib.util

        connector = self.sqlalchemy_connector
        assert connector is not None
        info = connector.connection_info
        driver = getattr(info, "driver", None)
        name = str(getattr(driver, "value", driver) or "")
        if (
            name.startswith("postgresql+psycopg2")
            and importlib.util.find_spec("psycopg2") is None
            and importlib.util.find_spec("psycopg") is not None
        ):
            info = info.model_copy(update={"driver": "postgresql+psycopg"})  # type: ignore[union-attr]
            fields = {name: getattr(connector, name) for name in type(connector).model_fields}
            # a new block, so block_initialization renders the engine URL with the new driver
            return type(connector)(**{**fields, "connection_info": info})
        return connector

    def describe(self) -> str:
        """A secret-free description of the source, safe for logs and artifacts."""
        if self.sqlalchemy_connector is not None:
            from sqlalchemy.engine import make_url

            info = self.sqlalchemy_connector.connection_info
            url = info.create_url() if hasattr(info, "create_url") else make_url(str(info))
            return url.render_as_string(hide_password=True)
        return f"duckdb:///{self.duckdb_path}"


class AgentSettings(Block):
    """Which agent persona and Claude model write the prose, and how much they may spend.

    The deterministic core computes every number and finding; the persona explains and prioritises.
    Without ``anthropic_credentials`` the template narrator writes the prose offline, for free.

    Attributes:
        persona: The agent persona (``data-engineer``, ``backend-architect``, a persona file), or
            ``auto``: chosen by domain (designs and API/serving questions: backend-architect).
        model: The Claude model id.
        max_usd: The most one run may spend, in US dollars.
        max_tokens: The most tokens one run may use.
        max_output_tokens: The most output tokens one request may produce.
        batch_mode: Send the requests through the Message Batches API (half price, slower).
        batch_poll_seconds: Seconds between two polls of a submitted batch.
        batch_ledger_dir: Where submitted batches are recorded for re-attaching.
        anthropic_credentials: The Anthropic credentials block; template prose when empty.

    Example:
        Load stored settings and get the narrator the tasks use:
        ```python
        from dataeng_agents.prefect_integration import AgentSettings

        agent_settings = AgentSettings.load("BLOCK_NAME")
        narrator = agent_settings.get_narrator()
        ```
    """

    _block_type_name = "Agent Settings"
    _block_type_slug = "dataeng-agent-settings"
    _documentation_url = DOCS_URL  # type: ignore[assignment]
    _logo_url = LOGO_URL  # type: ignore[assignment]

    persona: str = Field(
        default="auto",
        description=(
            "The agent persona that writes the prose: data-engineer, backend-architect, a persona file, "
            "or auto (by domain: designs and API/serving questions go to backend-architect)."
        ),
    )
    model: str | None = Field(
        default=None,
        description="The Claude model id; the persona's model (the newest Sonnet the SDK knows) when empty.",
    )
    max_usd: float | None = Field(
        default=1.0,
        ge=0,
        title="Budget (USD)",
        description="The most one run may spend on the API, in US dollars; no limit when empty.",
    )
    max_tokens: int | None = Field(
        default=None,
        ge=0,
        title="Budget (tokens)",
        description="The most tokens (input and output) one run may use; no limit when empty.",
    )
    max_output_tokens: int | None = Field(
        default=None,
        gt=0,
        description="The most output tokens one request may produce; the persona's limit when empty.",
    )
    batch_mode: bool = Field(
        default=False,
        description="Send the requests through the Message Batches API: half the price, results later.",
    )
    batch_poll_seconds: float = Field(
        default=60.0,
        gt=0,
        description="Seconds between two polls of a submitted batch (batch mode).",
    )
    batch_ledger_dir: str | None = Field(
        default=None,
        description=(
            "Directory recording submitted batches, so a retried run re-attaches instead of paying "
            "twice (batch mode); $PREFECT_HOME/dataeng-batches when empty."
        ),
    )
    anthropic_credentials: AnthropicCredentials | None = Field(
        default=None,
        description="The Anthropic credentials; the offline template narrator is used when empty.",
    )

    @field_validator("persona")
    @classmethod
    def _known_persona(cls, value: str) -> str:
        from dataeng_agents.core.agents.persona import load_persona

        if value == "auto":
            return value
        try:
            load_persona(value)
        except Exception as exc:  # ConfigError naming the known personas
            raise ValueError(str(exc)) from None
        return value

    def resolved_model(self) -> str:
        """The model id the narrator uses (the persona's model when ``model`` is empty)."""
        if self.model:
            return self.model
        from dataeng_agents.core.agents.persona import load_persona

        return str(load_persona("data-engineer" if self.persona == "auto" else self.persona).resolved_model)

    def cache_identity(self) -> dict[str, Any]:
        """What makes two answers interchangeable (no secrets): the persona (its name and the hash
        of its prompt, so an edited persona file writes new prose), the prompt version, the model
        and the output limit. Without credentials the template writes the prose: model "template"."""
        import hashlib

        from dataeng_agents.core.agents.persona import list_personas, load_persona
        from dataeng_agents.core.agents.prompting import PROMPT_VERSION

        personas = list_personas() if self.persona == "auto" else [load_persona(self.persona)]
        prompts = "\n".join(f"{p.name}:{p.system_prompt}" for p in personas)
        return {
            "persona": self.persona if self.persona == "auto" else personas[0].name,
            "persona_sha256": hashlib.sha256(prompts.encode()).hexdigest(),
            "prompt_version": PROMPT_VERSION,
            "model": self.resolved_model() if self.anthropic_credentials is not None else "template",
            "max_output_tokens": self.max_output_tokens,
        }

    def get_narrator(self, **client_kwargs: Any) -> Narrator:
        """Returns the core narrator that writes the prose.

        Args:
            **client_kwargs: Extra keyword arguments for the ``anthropic.Anthropic`` client.

        Returns:
            ``ClaudeNarrator`` when the block has credentials, else ``TemplateNarrator``.
        """
        from dataeng_agents.core.narrative import TemplateNarrator

        if self.anthropic_credentials is None:
            return TemplateNarrator()
        from dataeng_agents.core.agents import ClaudeNarrator

        client = self.anthropic_credentials.get_client(**client_kwargs)
        narrator: Narrator = ClaudeNarrator(
            client,
            persona=self.persona,
            model=self.model,
            max_usd=self.max_usd,
            max_tokens=self.max_tokens,
            max_output_tokens=self.max_output_tokens,
        )
        return narrator
