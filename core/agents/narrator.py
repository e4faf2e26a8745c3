"""``ClaudeNarrator``: a persona on Claude writes the prose; the template writes it when Claude can't.

The narrator never raises for an LLM problem. When the API fails past its retries, the budget would
be exceeded, the iteration cap is hit, or the answer fails validation or the grounding check after
its one repair turn, the task's deterministic template writes the narrative and
``provenance.fallback_reason`` says why; ``provenance.usage`` holds the tokens and USD spent anyway.

Time: ``request_timeout`` bounds one request and ``deadline`` the whole narration (every request,
retry and wait); both default to the client's own ``timeout``/``max_retries`` when the caller built
the client with plain numbers (the Prefect ``AnthropicCredentials`` block, ``build_client``), else
to :data:`DEFAULT_REQUEST_TIMEOUT` / :data:`DEFAULT_DEADLINE`.

Persona: an explicit persona (argument, ``DATAENG_AGENT_PERSONA``) wins; else the task's; a task
without one (or ``persona="auto"``) is routed by domain with :func:`route_persona`.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Callable, Mapping
from typing import Any

from dataeng_agents.core.agents.persona import Persona, load_persona
from dataeng_agents.core.agents.prompting import prepare
from dataeng_agents.core.errors import DataengError, InputError
from dataeng_agents.core.llm.budget import Budget
from dataeng_agents.core.llm.pricing import PriceTable, RunUsage
from dataeng_agents.core.llm.retry import RetryPolicy
from dataeng_agents.core.llm.runner import DEFAULT_DEADLINE, DEFAULT_REQUEST_TIMEOUT, ToolLoopRunner
from dataeng_agents.core.llm.safety import SafetyLimits
from dataeng_agents.core.narrative import (
    NarrationProvenance,
    NarrationSettings,
    NarrationTask,
    NarrativeT,
    Narrator,
    TemplateNarrator,
    _number_env,
)

log = logging.getLogger(__name__)


def with_provenance(narrative: NarrativeT, provenance: NarrationProvenance) -> NarrativeT:
    return narrative.model_copy(update={"provenance": provenance})


def template_fallback(
    task: NarrationTask[NarrativeT], *, persona: str | None, model: str, reason: str, usage: RunUsage | None
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
            request_ids=list(usage.request_ids) if usage is not None else [],
        ),
    )


def claude_answer(
    answer: NarrativeT, *, persona: str, model: str, usage: RunUsage, batch: bool = False
) -> NarrativeT:
    """``answer`` (a checked Claude answer) marked as Claude's, with what it cost (``batch``: priced
    through the Message Batches API)."""
    spent = usage.as_dict()
    if batch:
        spent["batch"] = 1.0
    return with_provenance(
        answer,
        NarrationProvenance(
            narrator="claude",
            persona=persona,
            model=model,
            usage=spent,
            request_ids=list(usage.request_ids),
        ),
    )


AUTO_PERSONA = "auto"
#: words of a question (or a task's subject) about the services around the data: backend-architect
_BACKEND_WORDS = re.compile(
    r"(?i)\b(api|apis|endpoint|rest(ful)?|graphql|grpc|http|microservices?|service boundar\w*|serving|"
    r"latency|throughput|rate[- ]limit\w*|idempoten\w*[- ]key|circuit[- ]breaker|load[- ]balanc\w*|"
    r"oauth2?|oidc|authn|authz|cach(e|ing)|sla|slo|webhooks?|event[- ]driven|outbox|saga|"
    r"architecture|architect)\b"
)


def route_persona(task: NarrationTask[Any]) -> str:
    """The persona for a task by its domain.

    Architecture tasks (a pipeline design's services, serving, APIs) and questions about APIs,
    serving, services, caching, auth or architecture go to ``backend-architect``; experiments,
    reviews, rollouts, plans and other questions to ``data-engineer``.
    """
    if task.kind == "architecture":
        return "backend-architect"
    if task.kind == "question" and task.question and _BACKEND_WORDS.search(task.question):
        return "backend-architect"
    return "data-engineer"


def task_persona(task: NarrationTask[Any]) -> str:
    """The task's own persona, or the routed one when it has none (or says ``auto``)."""
    return task.persona if task.persona and task.persona != AUTO_PERSONA else route_persona(task)


class ClaudeNarrator:
    """Implements :class:`~dataeng_agents.core.narrative.Narrator` with a persona on Claude.

    :param client: an ``anthropic.Anthropic`` client (or Bedrock/Vertex/Foundry); built by the caller
        (Airflow: ``AnthropicHook(conn_id).get_conn()``; Prefect: ``AnthropicCredentials.get_client()``).
        The narrator uses a copy with ``max_retries=0`` and retries by :class:`RetryPolicy`.
    :param persona: persona name, path of a ``.md`` file, or a :class:`Persona`; ``None`` or ``"auto"``
        uses the task's persona (routed by domain when the task has none). An explicit persona wins.
    :param model: model id; ``None`` uses the persona's (``default``: the newest Sonnet in the SDK).
    :param max_usd: the most one ``narrate`` call may spend (checked before every request).
    :param max_tokens: the most tokens (input + output, cache included) one ``narrate`` call may use.
    :param max_output_tokens: ``max_tokens`` of each request; ``None`` uses the persona's.
    :param max_iterations: requests per run; ``None`` uses the persona's.
    :param prices: price table; ``None`` loads the packaged/overridden one.
    :param retry: retry policy for 429/529/5xx/timeouts; ``None``: the default policy with the
        client's own ``max_retries`` (so a client built with ``max_retries=0`` is never retried).
    :param limits: size caps of what is sent.
    :param request_timeout: seconds one request may take; ``None``: the client's ``timeout`` when it
        is a number, else :data:`DEFAULT_REQUEST_TIMEOUT`.
    :param deadline: seconds one whole narration may take (requests, retries, waits);
        :data:`DEFAULT_DEADLINE` by default, ``None`` for no overall bound.
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
        request_timeout: float | None = None,
        deadline: float | None = DEFAULT_DEADLINE,
    ) -> None:
        self.client = client
        self.request_timeout = request_timeout if request_timeout is not None else client_timeout(client)
        self.deadline = deadline
        self.persona_dirs = persona_dirs
        if isinstance(persona, str) and persona == AUTO_PERSONA:
            persona = None
        self.persona: Persona | None = (
            load_persona(persona, persona_dirs) if isinstance(persona, str) else persona
        )
        self.model = model
        self.budget = Budget(max_usd=max_usd, max_tokens=max_tokens)
        self.max_output_tokens = max_output_tokens
        self.max_iterations = max_iterations
        self.prices = prices or PriceTable.load()
        self.retry = retry or RetryPolicy(max_retries=client_max_retries(client))
        self.limits = limits or SafetyLimits()
        self.last_usage: RunUsage | None = None
        self.on_usage: Callable[[RunUsage], None] | None = None

    def _persona_for(self, task: NarrationTask[Any]) -> Persona:
        return self.persona or load_persona(task_persona(task), self.persona_dirs)

    def narrate(self, task: NarrationTask[NarrativeT]) -> NarrativeT:
        persona_name = self.persona.name if self.persona else task_persona(task)
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
                deadline=self.deadline,
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
            return self._done(
                template_fallback(task, persona=persona_name, model=model, reason=reason, usage=usage), usage
            )
        if outcome.answer is None:
            return self._done(
                template_fallback(
                    task,
                    persona=persona.name,
                    model=model,
                    reason=outcome.failure or "no answer",
                    usage=usage,
                ),
                usage,
            )
        return self._done(
            claude_answer(outcome.answer, persona=persona.name, model=model, usage=usage), usage
        )

    def _done(self, narrative: NarrativeT, usage: RunUsage | None) -> NarrativeT:
        self.last_usage = usage
        if usage is not None and self.on_usage is not None:
            self.on_usage(usage)
        return narrative


def client_timeout(client: Any) -> float:
    """The client's own request timeout when it is a plain number, else :data:`DEFAULT_REQUEST_TIMEOUT`.

    The SDK's default is an ``httpx.Timeout`` of 10 minutes: far too long for a scheduled task, so
    only a number the caller chose (``Anthropic(timeout=30)``) is honoured.
    """
    value = getattr(client, "timeout", None)
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return DEFAULT_REQUEST_TIMEOUT


def client_max_retries(client: Any) -> int:
    """The client's own ``max_retries`` (the SDK's are switched off; ours take their number)."""
    value = getattr(client, "max_retries", None)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return RetryPolicy().max_retries


def _float_env(env: Mapping[str, str], name: str) -> float | None:
    return _number_env(env, name)


def _check_persona(settings: NarrationSettings) -> None:
    persona = settings.persona
    if persona is not None and persona != AUTO_PERSONA:
        try:
            load_persona(persona)
        except DataengError as exc:
            raise InputError("DATAENG_AGENT_PERSONA", str(exc)) from exc


def narrator_from_env(
    env: Mapping[str, str] | None = None,
    *,
    persona: str | None = None,
    model: str | None = None,
    max_usd: float | None = None,
    **client_kwargs: Any,
) -> Narrator:
    """``ClaudeNarrator`` when ``ANTHROPIC_API_KEY`` is set, else ``TemplateNarrator`` (offline, free).

    Every setting is validated first (:class:`NarrationSettings`), with or without a key, so a bad
    value is the same usage error on every machine. Environment: ``ANTHROPIC_API_KEY``,
    ``ANTHROPIC_BASE_URL`` and the variables of :class:`NarrationSettings`; the arguments override
    them. ``DATAENG_NARRATOR=claude`` without a key is an error (the user asked for Claude).
    ``client_kwargs`` go to ``anthropic.Anthropic``.

    :raises InputError: a bad setting, naming the variable.
    """
    env = os.environ if env is None else env
    settings = NarrationSettings.from_env(env)
    _check_persona(settings)
    if max_usd is not None and (not math.isfinite(max_usd) or max_usd < 0):
        raise InputError("max_usd", f"must be a non-negative number, got {max_usd!r}")
    if settings.narrator == "template":
        return TemplateNarrator()
    if not env.get("ANTHROPIC_API_KEY"):
        if settings.narrator == "claude":
            raise InputError("ANTHROPIC_API_KEY", "DATAENG_NARRATOR=claude needs ANTHROPIC_API_KEY")
        return TemplateNarrator()
    from dataeng_agents.core.llm.client import build_client

    options = dict(client_kwargs)
    if settings.request_timeout is not None:
        options.setdefault("timeout", settings.request_timeout)
    client = build_client(env["ANTHROPIC_API_KEY"], base_url=env.get("ANTHROPIC_BASE_URL") or None, **options)
    return ClaudeNarrator(
        client,
        persona=persona or settings.persona,
        model=model or settings.model,
        max_usd=max_usd if max_usd is not None else settings.max_usd,
        max_tokens=settings.max_tokens,
        deadline=settings.deadline,
    )
