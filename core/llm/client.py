"""Building SDK clients: only the CLI and ``narrator_from_env`` do this; everything else gets one passed in.

Airflow builds its client from ``apache-airflow-providers-anthropic``'s ``AnthropicHook.get_conn()``
(or ``get_async_conn()`` in a trigger) and Prefect from its ``AnthropicCredentials`` block; both then
hand it to :class:`~dataeng_agents.core.agents.ClaudeNarrator` / ``BatchNarration``. The narrator
takes the client's ``max_retries`` and ``timeout`` as its own and switches the SDK's retries off on a
copy: :mod:`.retry` does the retrying (bounded, visible to the budget and the deadline).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from dataeng_agents.core.errors import ConfigError

if TYPE_CHECKING:
    import anthropic

DEFAULT_TIMEOUT = 120.0
DEFAULT_MAX_RETRIES = 3


def _key(api_key: str | None) -> str:
    key = api_key or os.environ.get("ANTHROPIC_API_KEY")
    if not key:
        raise ConfigError("ANTHROPIC_API_KEY", "no API key given and ANTHROPIC_API_KEY is not set")
    return key


def build_client(
    api_key: str | None = None,
    *,
    base_url: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    **kwargs: Any,
) -> anthropic.Anthropic:
    """An ``anthropic.Anthropic`` (``kwargs`` go to the constructor, e.g. ``http_client``, ``max_retries``)."""
    import anthropic

    options: dict[str, Any] = {
        "api_key": _key(api_key),
        "timeout": timeout,
        "max_retries": DEFAULT_MAX_RETRIES,
    }
    if base_url:
        options["base_url"] = base_url
    options.update(kwargs)
    return anthropic.Anthropic(**options)


def build_async_client(
    api_key: str | None = None,
    *,
    base_url: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    **kwargs: Any,
) -> anthropic.AsyncAnthropic:
    """An ``anthropic.AsyncAnthropic``, for :func:`~dataeng_agents.core.agents.apoll_batch`."""
    import anthropic

    options: dict[str, Any] = {
        "api_key": _key(api_key),
        "timeout": timeout,
        "max_retries": DEFAULT_MAX_RETRIES,
    }
    if base_url:
        options["base_url"] = base_url
    options.update(kwargs)
    return anthropic.AsyncAnthropic(**options)
