"""Who writes the prose: Claude through the official ``anthropic`` connection, or the template.

The Anthropic client is always built by the official provider's
:class:`~airflow.providers.anthropic.hooks.anthropic.AnthropicHook` from a connection of type
``anthropic`` (first-party API, Bedrock, Vertex, Claude Platform on AWS, Foundry), so the key lives
in the connection (or a secrets backend) and never in a DAG file, an operator argument or XCom.
Without a connection id the deterministic template narrator is used: same code path, no key.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

if TYPE_CHECKING:
    from airflow.providers.anthropic.hooks.anthropic import AnthropicHook
    from dataeng_agents.core.narrative import Narrator


class NarratorHook(BaseHook):
    """
    Build the core narrator for an operator.

    :param anthropic_conn_id: Connection of type ``anthropic``; ``None`` for the offline template narrator.
    :param model: Model id; ``None`` uses the connection's default model (``extra["model"]``).
    :param narrator_kwargs: Extra keyword arguments for the Claude narrator (budget, max tokens, ...).
    """

    conn_name_attr = "anthropic_conn_id"
    hook_name = "Dataeng narrator"

    def __init__(
        self,
        anthropic_conn_id: str | None = None,
        model: str | None = None,
        narrator_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.anthropic_conn_id = anthropic_conn_id
        self.model = model
        self.narrator_kwargs = dict(narrator_kwargs or {})

    @cached_property
    def anthropic_hook(self) -> AnthropicHook:
        """The official Anthropic provider's hook for ``anthropic_conn_id``."""
        from airflow.providers.anthropic.hooks.anthropic import AnthropicHook

        if self.anthropic_conn_id is None:
            raise ValueError("anthropic_hook needs anthropic_conn_id.")
        return AnthropicHook(conn_id=self.anthropic_conn_id)

    @cached_property
    def resolved_model(self) -> str | None:
        """The model: the argument, else the connection's ``extra["model"]``, else ``None``.

        ``None`` lets the persona choose (the core's default: the newest Sonnet the installed SDK
        knows) rather than the Anthropic provider's own fallback model.
        """
        if self.model:
            return self.model
        if self.anthropic_conn_id is None:
            return None
        return self.get_connection(self.anthropic_conn_id).extra_dejson.get("model") or None

    def get_client(self) -> Any:
        """The synchronous Anthropic client the official hook builds for the connection."""
        return self.anthropic_hook.get_conn()

    def get_conn(self) -> Narrator:
        """The narrator: Claude (falling back to the template on any LLM failure), or the template."""
        if self.anthropic_conn_id is None:
            from dataeng_agents.core.narrative import TemplateNarrator

            return TemplateNarrator()
        from dataeng_agents.core.agents import ClaudeNarrator

        return ClaudeNarrator(self.get_client(), model=self.resolved_model, **self.narrator_kwargs)
