"""``ClaudeNarrator``: a persona on Claude writes the prose; the template writes it when Claude can't.

The narrator never raises for an LLM problem. When the API fails past its retries, the budget would
be exceeded, the iteration cap is hit, or the answer fails validation or the grounding check after
its one repair turn, the task's deterministic template writes the narrative and
``provenance.fallback_reason`` says why; ``provenance.usage`` holds the tokens and USD spent anyway.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

from dataeng_agents.core.agents.persona import Persona, load_persona
from dataeng_agents.core.agents.prompting import prepare
from dataeng_agents.core.errors import DataengError, InputError
from dataeng_agents.core.llm.budget import Budget
from dataeng_agents.core.llm.pricing import PriceTable, RunUsage
from dataeng_agents.core.llm.retry import RetryPolicy
from dataeng_agents.core.llm.runner import DEFAULT_REQUEST_TIMEOUT, ToolLoopRunner
from dataeng_agents.core.llm.safety import SafetyLimits
from dataeng_agents.core.narrative import (
    NarrationProvenance,
    NarrationTask,
    NarrativeT,
    Narrator,
    TemplateNarrator,
)

log = logging.getLogger(__name__)


def with_provenance(narrative: NarrativeT, provenance: NarrationProvenance) -> NarrativeT:
    return narrative.model_copy(update={"provenance": provenance})


def template_fallback(
    task: NarrationTask[NarrativeT], *, persona: str, model: str, reason: str, usage: RunUsage | None
) -> NarrativeT:
    """The task's template, marked as a fallback with ``reason`` and whatever was spent."""
    log.warning("narration of %s %s fell back to the template: %s", task.kind, task.subject_id, reason)
    return with_provenance(
        task.template(),
        NarrationProvenance(
            narrator="template",
            persona=persona,
            model=model,
            fallback_reason=reason,
            usage=usage.as_dict() if usage is not None and usage.calls else None,
        ),
    )


class ClaudeNarrator:
    """Implements :class:`~dataeng_agents.core.narrative.Narrator` with a persona on Claude.

    :param client: an ``anthropic.Anthropic`` client (or Bedrock/Vertex/Foundry); built by the caller
        (Airflow: ``AnthropicHook(conn_id).get_conn()``; Prefect: ``AnthropicCredentials.get_client()``).
        The narrator uses a copy with ``max_retries=0`` and retries by :class:`RetryPolicy`.
    :param persona: persona name, path of a ``.md`` file, or a :class:`Persona`; ``None`` uses the
        task's ``persona``. An explicit persona wins over the task's.
    :param model: model id; ``None`` uses the persona's (``default``: the newest Sonnet in the SDK).
    :param max_usd: the most one ``narrate`` call may spend (checked before every request).
    :param max_tokens: the most tokens (input + output, cache included) one ``narrate`` call may use.
    :param max_output_tokens: ``max_tokens`` of each request; ``None`` uses the persona's.
    :param max_iterations: requests per run; ``None`` uses the persona's.
    :param prices: price table; ``None`` loads the packaged/overridden one.
    :param retry: retry policy for 429/529/5xx/timeouts.
    :param limits: size caps of what is sent.
    :param request_timeout: seconds one request may take before it is retried (default 120).
    :param persona_dirs: extra persona directories (besides ``$DATAENG_PERSONAS_DIR``).
    """

    name = "claude"

    def __init__(
        self,
        client: Any,
        *,
        persona: str | Persona | None = None,
        model: str | None = None,
        max_usd: float | None = None,
        max_tokens: int | None = None,
        max_output_tokens: int | None = None,
        max_iterations: int | None = None,
        prices: PriceTable | None = None,
        retry: RetryPolicy | None = None,
        limits: SafetyLimits | None = None,
        persona_dirs: list[str | os.PathLike[str]] | None = None,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
    ) -> None:
        self.client = client
        self.request_timeout = request_timeout
        self.persona_dirs = persona_dirs
        self.persona: Persona | None = (
            load_persona(persona, persona_dirs) if isinstance(persona, str) else persona
        )
        self.model = model
        self.budget = Budget(max_usd=max_usd, max_tokens=max_tokens)
        self.max_output_tokens = max_output_tokens
        self.max_iterations = max_iterations
        self.prices = prices or PriceTable.load()
        self.retry = retry or RetryPolicy()
        self.limits = limits or SafetyLimits()
        self.last_usage: RunUsage | None = None
        self.on_usage: Callable[[RunUsage], None] | None = None

    def _persona_for(self, task: NarrationTask[Any]) -> Persona:
        return self.persona or load_persona(task.persona, self.persona_dirs)

    def narrate(self, task: NarrationTask[NarrativeT]) -> NarrativeT:
        persona_name = self.persona.name if self.persona else task.persona
        model = self.model or (self.persona.resolved_model if self.persona else "")
        usage: RunUsage | None = None
        try:
            persona = self._persona_for(task)
            model = self.model or persona.resolved_model
            usage = RunUsage(model=model)
            prepared = prepare(task, persona, limits=self.limits)
            runner = ToolLoopRunner(
                self.client,
                model=model,
                prices=self.prices,
                budget=self.budget,
                retry=self.retry,
                max_iterations=self.max_iterations or persona.max_iterations,
                max_output_tokens=self.max_output_tokens or persona.max_output_tokens,
                request_timeout=self.request_timeout,
            )
            outcome = runner.run(
                system=prepared.system,
                user=prepared.user,
                tools=prepared.tools,
                output_model=task.output_model,
                validate=prepared.validate,
                usage=usage,
            )
        except Exception as exc:  # the contract: an LLM-side failure never breaks the report
            reason = f"error: {type(exc).__name__}: {exc}"
            return self._done(template_fallback(task, persona=persona_name, model=model, reason=reason, usage=usage), usage)
        if outcome.answer is None:
            return self._done(
                template_fallback(task, persona=persona.name, model=model, reason=outcome.failure or "no answer", usage=usage),
                usage,
            )
        provenance = NarrationProvenance(narrator="claude", persona=persona.name, model=model, usage=usage.as_dict())
        return self._done(with_provenance(outcome.answer, provenance), usage)

    def _done(self, narrative: NarrativeT, usage: RunUsage | None) -> NarrativeT:
        self.last_usage = usage
        if usage is not None and self.on_usage is not None:
            self.on_usage(usage)
        return narrative


def _float_env(env: Mapping[str, str], name: str) -> float | None:
    raw = env.get(name)
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError as exc:
        raise InputError(name, f"must be a number, got {raw!r}") from exc


def narrator_from_env(
    env: Mapping[str, str] | None = None,
    *,
    persona: str | None = None,
    model: str | None = None,
    max_usd: float | None = None,
    **client_kwargs: Any,
) -> Narrator:
    """``ClaudeNarrator`` when ``ANTHROPIC_API_KEY`` is set, else ``TemplateNarrator`` (offline, free).

    Environment: ``ANTHROPIC_API_KEY``, ``ANTHROPIC_BASE_URL``; ``DATAENG_NARRATOR=template`` forces the
    offline narrator; ``DATAENG_AGENT_PERSONA``, ``DATAENG_AGENT_MODEL``, ``DATAENG_AGENT_MAX_USD``
    set defaults that the arguments override. ``client_kwargs`` go to ``anthropic.Anthropic``.
    """
    env = os.environ if env is None else env
    if env.get("DATAENG_NARRATOR", "").lower() == "template" or not env.get("ANTHROPIC_API_KEY"):
        return TemplateNarrator()
    from dataeng_agents.core.llm.client import build_client

    try:
        client = build_client(env["ANTHROPIC_API_KEY"], base_url=env.get("ANTHROPIC_BASE_URL") or None, **client_kwargs)
    except DataengError:
        raise
    return ClaudeNarrator(
        client,
        persona=persona or env.get("DATAENG_AGENT_PERSONA") or None,
        model=model or env.get("DATAENG_AGENT_MODEL") or None,
        max_usd=max_usd if max_usd is not None else _float_env(env, "DATAENG_AGENT_MAX_USD"),
    )
