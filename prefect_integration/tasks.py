"""Prefect tasks: analyse or design an experiment, review a pipeline, ask an agent.

Every task is a module-level ``@task`` that takes blocks as arguments and calls one core facade; the
numbers and findings come from the core. Retries are declared on the decorators and skip errors
that a retry cannot fix (bad config, budget exceeded).

LLM prose is produced through :func:`narrate`, a task whose cache key is the persona, the model and
the grounded facts handed to the model (never a timestamp or a run id): a daily report whose numbers
did not change reuses yesterday's prose instead of paying for it again.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

from dataeng_agents.prefect_integration.blocks import AgentSettings, ExperimentWarehouse
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE, CachePolicy
from prefect.context import TaskRunContext

if TYPE_CHECKING:
    from collections.abc import Callable

    from dataeng_agents.core.experiment.config import ConfigSource
    from dataeng_agents.core.lifecycle.hypothesis import HypothesisPlan
    from dataeng_agents.core.lifecycle.rollout import RolloutDecision
    from dataeng_agents.core.lifecycle.tracking import TrackingCheckReport
    from dataeng_agents.core.narrative import AgentAnswer, NarrationTask, NarrativeT, Narrator
    from dataeng_agents.core.report.model import ExperimentDesignReport, ExperimentReport
    from dataeng_agents.core.review.models import ReviewResult
    from prefect.client.schemas.objects import State, TaskRun
    from prefect.tasks import Task

# Prose for the same facts stays valid for a while; a month bounds how long a stale persona prompt
# (after an upgrade of the package) can keep being served from the cache.
NARRATION_CACHE_EXPIRATION = timedelta(days=30)
# Upper bounds, so a hung warehouse query or API call frees the worker instead of blocking a schedule.
WAREHOUSE_TIMEOUT = 3600
REVIEW_TIMEOUT = 1800
NARRATION_TIMEOUT = 900
# The Message Batches API answers within 24 h; a batch narration waits for it inside its task.
NARRATION_BATCH_TIMEOUT = 24 * 3600

P = ParamSpec("P")
R = TypeVar("R")


def _transient(exc: BaseException) -> bool:
    from dataeng_agents.core.errors import DataengError, WarehouseError

    # A dropped connection, a timeout or a busy server may pass on a retry; a missing table, a
    # missing DuckDB file or database, a bad config or a spent budget fails the same way every time
    # (and would hold the run for the whole retry schedule), so it is not retried.
    if isinstance(exc, WarehouseError):
        return exc.transient  # classified by the core from the driver's error
    if isinstance(exc, DataengError):
        return False
    if isinstance(exc, FileNotFoundError | PermissionError | IsADirectoryError | NotADirectoryError):
        return False
    return isinstance(exc, ConnectionError | TimeoutError | OSError)


def retry_transient_errors(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """``retry_condition_fn``: retry transient warehouse/network errors only."""
    exc = state.data if isinstance(state.data, BaseException) else None
    if exc is None:
        try:
            state.result(raise_on_failure=True)
        except BaseException as raised:  # the state's own exception
            exc = raised
    return exc is not None and _transient(exc)


# --------------------------------------------------------------------------------------- narration
# Facts keys that change on every run without changing what the prose may say.
VOLATILE_FACT_KEYS = frozenset({"generated_at", "checked_at", "timings", "elapsed_seconds", "run_id"})


def grounded_facts(value: Any) -> Any:
    """The facts without run-dependent noise (timestamps, timings), for the cache key."""
    if isinstance(value, dict):
        return {k: grounded_facts(v) for k, v in value.items() if k not in VOLATILE_FACT_KEYS}
    if isinstance(value, list | tuple):
        return [grounded_facts(v) for v in value]
    return value


def narration_cache_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    """Cache key of one narration: persona, model and the facts *as presented to the model*.

    The core's ``facts_fingerprint`` hashes the redacted facts with floats rounded as the model sees
    them, so two runs whose sums differ in the last bits (parallel aggregation) share their prose;
    run-dependent noise (timestamps, timings) is dropped first.
    """
    from dataclasses import replace

    from dataeng_agents.core.agents.prompting import facts_fingerprint

    narration: NarrationTask[Any] = parameters["narration"]
    settings: AgentSettings = parameters["agent_settings"]
    identity = {
        "agent": settings.cache_identity(),
        "task": facts_fingerprint(replace(narration, facts=grounded_facts(narration.facts))),
    }
    blob = json.dumps(identity, sort_keys=True, default=str, separators=(",", ":"))
    return "dataeng-narration-" + hashlib.sha256(blob.encode()).hexdigest()


NARRATION_CACHE_POLICY: CachePolicy = CachePolicy.from_cache_key_fn(narration_cache_key)


@task(
    name="narrate",
    timeout_seconds=NARRATION_TIMEOUT,
    task_run_name="narrate-{narration.kind}-{narration.subject_id}",
    cache_policy=NARRATION_CACHE_POLICY,
    cache_expiration=NARRATION_CACHE_EXPIRATION,
    persist_result=True,
    retries=1,
    retry_delay_seconds=5,
)
def narrate(narration: NarrationTask[NarrativeT], agent_settings: AgentSettings) -> NarrativeT:
    """Writes the prose of one narration with the configured persona (cached on the grounded facts)."""
    if agent_settings.batch_mode and agent_settings.anthropic_credentials is not None:
        narrative = narrate_in_batch(narration, agent_settings)
    else:
        narrative = agent_settings.get_narrator().narrate(narration)
    log_fallback(narration, narrative)
    return narrative


def log_fallback(narration: NarrationTask[Any], narrative: Any) -> None:
    """Warn through the run logger (forwarded to the Prefect API) when the template stood in for
    Claude, so a fallback shows in the run's logs in the UI."""
    provenance = getattr(narrative, "provenance", None)
    if provenance is not None and provenance.fallback_reason:
        get_run_logger().warning(
            "Claude did not write the %s prose of %s; the template did: %s",
            narration.kind,
            narration.subject_id,
            provenance.fallback_reason,
        )


def narrate_in_batch(narration: NarrationTask[NarrativeT], agent_settings: AgentSettings) -> NarrativeT:
    """Batch mode: submit (or re-attach to) a Message Batches request, poll until it ends, collect.

    The core builds the request with a deterministic ``custom_id`` and records the batch in a ledger,
    so a retried task run re-attaches to the batch it already paid for. Like every narrator, this
    never raises for an LLM failure: the template writes the prose and says why.
    """
    import time

    from dataeng_agents.core.agents import BatchNarration, JsonFileLedger, poll_batch

    logger = get_run_logger()
    credentials = agent_settings.anthropic_credentials
    assert credentials is not None
    batch = BatchNarration.prepare(
        narration,
        persona=agent_settings.persona,
        model=agent_settings.model,
        max_usd=agent_settings.max_usd,
        max_tokens=agent_settings.max_tokens,
        max_output_tokens=agent_settings.max_output_tokens,
    )
    ledger = JsonFileLedger(agent_settings.batch_ledger_dir or _default_ledger_dir())
    client = credentials.get_client()
    try:
        batch_id = batch.submit_or_attach(client, ledger)
    except Exception as exc:  # budget, API down: the template, with the reason recorded
        return batch.fallback(f"batch: {type(exc).__name__}: {exc}")
    logger.info("Narration %s is request %s of batch %s", narration.subject_id, batch.custom_id, batch_id)
    deadline = time.monotonic() + NARRATION_BATCH_TIMEOUT
    while True:
        try:
            status = poll_batch(client, batch_id)
        except Exception as exc:
            return batch.fallback(f"batch: polling {batch_id} failed: {type(exc).__name__}: {exc}")
        if status.ended:
            return batch.collect(client, batch_id, ledger=ledger)
        if time.monotonic() > deadline:
            return batch.fallback(f"batch: {batch_id} still {status.processing_status} after the timeout")
        time.sleep(agent_settings.batch_poll_seconds)


def _default_ledger_dir() -> str:
    from prefect.settings import PREFECT_HOME

    return str(Path(PREFECT_HOME.value()) / "dataeng-batches")


class PrefectNarrator:
    """A core ``Narrator`` that runs each narration as the cached :func:`narrate` task.

    A cached answer that came from the template *because Claude failed* is not reused: the
    narration runs again, so an outage does not freeze template prose into the cache.
    """

    name = "prefect"

    def __init__(self, agent_settings: AgentSettings) -> None:
        self.agent_settings = agent_settings

    def narrate(self, task: NarrationTask[NarrativeT]) -> NarrativeT:
        runner = narrate
        if self.agent_settings.batch_mode:  # a batch may take up to a day to end
            runner = narrate.with_options(timeout_seconds=NARRATION_BATCH_TIMEOUT + NARRATION_TIMEOUT)
        state = runner(task, self.agent_settings, return_state=True)
        # mypy does not solve Task's ``R`` for a constrained TypeVar through the return_state overload;
        # the narrate task returns the narration's own NarrativeT
        result = cast("NarrativeT", state.result())
        provenance = getattr(result, "provenance", None)
        if state.name == "Cached" and provenance is not None and provenance.fallback_reason:
            state = runner.with_options(refresh_cache=True)(task, self.agent_settings, return_state=True)
            result = cast("NarrativeT", state.result())
        return result


def narrator_for(agent_settings: AgentSettings | None) -> Narrator:
    from dataeng_agents.core.narrative import TemplateNarrator

    if agent_settings is None:
        return TemplateNarrator()
    return PrefectNarrator(agent_settings)


# ------------------------------------------------------------------------------------- experiments
def _core_task(
    name: str, timeout_seconds: int, *, retries: int, retry_delay_seconds: float | list[float]
) -> Callable[[Callable[P, R]], Task[P, R]]:
    """``@task`` of a call into a core facade: no result cache (the warehouse's data changes), the
    given timeout, and retries of transient errors only (:func:`retry_transient_errors`)."""
    return task(
        name=name,
        timeout_seconds=timeout_seconds,
        retries=retries,
        retry_delay_seconds=retry_delay_seconds,
        retry_condition_fn=retry_transient_errors,
        cache_policy=NO_CACHE,
    )


def _warehouse_task(name: str) -> Callable[[Callable[P, R]], Task[P, R]]:
    """``@task`` of a core facade that queries the warehouse: an hour, two retries 10 s and 60 s apart."""
    return _core_task(name, WAREHOUSE_TIMEOUT, retries=2, retry_delay_seconds=[10, 60])


def core_warehouse(warehouse: ExperimentWarehouse | None) -> Any:
    """The block's core ``Warehouse``; ``None`` (the config's ``warehouse:`` URL) without a block."""
    return warehouse.get_warehouse() if warehouse is not None else None


def _parse_data_interval(data_interval: tuple[str, str] | None) -> tuple[datetime, datetime] | None:
    """The core's ``(start, end)`` from the ISO strings a flow parameter carries (a date is its midnight)."""
    if data_interval is None:
        return None
    from dataeng_agents.core.errors import InputError

    start, end = data_interval
    try:
        return (datetime.fromisoformat(start), datetime.fromisoformat(end))
    except ValueError as exc:
        raise InputError(
            "data_interval", f"{data_interval!r} is not a pair of ISO dates or datetimes: {exc}"
        ) from exc


@_warehouse_task("analyze-experiment")
def analyze_experiment(
    config: ConfigSource,
    warehouse: ExperimentWarehouse | None = None,
    agent_settings: AgentSettings | None = None,
    data_interval: tuple[str, str] | None = None,
) -> ExperimentReport:
    """Analyses an experiment in the warehouse and returns the core ``ExperimentReport``.

    :param config: the experiment config (a YAML path, YAML text or a dict; a lifecycle YAML too),
        read by the core's one loader ``load_experiment_config``.
    :param warehouse: the ``ExperimentWarehouse`` block; the config's ``warehouse:`` URL when ``None``.
    :param agent_settings: who writes the prose; the offline template when ``None``.
    :param data_interval: ``(start, end)`` ISO timestamps to analyse; the config's window when ``None``.
    """
    from dataeng_agents.core.experiment import analyze_experiment as core_analyze
    from dataeng_agents.core.experiment import load_experiment_config

    logger = get_run_logger()
    experiment = load_experiment_config(config)
    interval = _parse_data_interval(data_interval)
    where = warehouse.describe() if warehouse is not None else "the config's warehouse"
    logger.info("Analysing experiment %r in %s", experiment.id, where)
    return core_analyze(
        experiment,
        core_warehouse(warehouse),
        data_interval=interval,
        narrator=narrator_for(agent_settings),
    )


@_warehouse_task("design-experiment")
def design_experiment(
    config: ConfigSource,
    warehouse: ExperimentWarehouse | None = None,
    agent_settings: AgentSettings | None = None,
) -> ExperimentDesignReport:
    """Designs an experiment (power, sample size, duration) and returns the core design report.

    :param config: the experiment config (a YAML path, YAML text or a dict; a lifecycle YAML too).
    :param warehouse: estimates baselines and traffic from history when given.
    :param agent_settings: who writes the prose; the offline template when ``None``.
    """
    from dataeng_agents.core.experiment import design_experiment as core_design
    from dataeng_agents.core.experiment import load_experiment_config

    experiment = load_experiment_config(config)
    return core_design(
        experiment,
        core_warehouse(warehouse),
        narrator=narrator_for(agent_settings),
    )


# --------------------------------------------------------------------------------------- pipelines
@_core_task("review-pipeline", REVIEW_TIMEOUT, retries=1, retry_delay_seconds=5)
def review_pipeline(
    paths: list[str],
    profile: str | None = None,
    airflow_version: str = "3.3",
    config: str | None = None,
) -> ReviewResult:
    """Reviews Airflow DAGs, Prefect flows or pipeline specs and returns the core ``ReviewResult``.

    :param paths: files or folders to review.
    :param profile: the rule profile; ``None`` uses the review config's (``[tool.dataeng.review]``),
        else ``default``. A profile given here wins.
    :param airflow_version: the Airflow version the DAGs target.
    :param config: a review config file (rule severities, suppressions); ``None`` uses the
        ``pyproject.toml`` found upwards from the first path, as the CLI does.
    """
    from dataeng_agents.core.review import review_paths

    return review_paths(paths, profile=profile, airflow_version=airflow_version, config=config)


# ------------------------------------------------------------------------------------------ agents
@_core_task("ask-agent", NARRATION_TIMEOUT, retries=1, retry_delay_seconds=5)
def ask_agent(
    question: str,
    agent_settings: AgentSettings,
    context: dict[str, Any] | None = None,
    context_files: list[str] | None = None,
) -> AgentAnswer:
    """Asks the configured persona a question and returns the core ``AgentAnswer``.

    :param question: the question.
    :param agent_settings: persona, model, budget and credentials.
    :param context: JSON-able results the answer is grounded in (e.g. a report ``summary()``).
    :param context_files: files whose (redacted, size-capped) text the persona may read.
    """
    from dataclasses import replace

    from dataeng_agents.core.agents import question_task

    narration = question_task(agent_settings.persona, question, list(context_files or []))
    if context:
        narration = replace(narration, facts={**narration.facts, "results": context})
    return narrator_for(agent_settings).narrate(narration)


# --------------------------------------------------------------------------------------- lifecycle
@_warehouse_task("design-hypothesis")
def design_hypothesis(
    config: ConfigSource,
    warehouse: ExperimentWarehouse | None = None,
    agent_settings: AgentSettings | None = None,
) -> HypothesisPlan:
    """Explores the pre-period and checks the ``hypothesis:`` section (power plan, guardrails);
    returns the core ``HypothesisPlan``.

    :param config: the experiment YAML with its lifecycle sections (path or dict).
    :param warehouse: the warehouse; the config's ``warehouse:`` URL when ``None``.
    :param agent_settings: who writes the prose; the offline template when ``None``.
    """
    from dataeng_agents.core.commands.lifecycle import build_hypothesis

    return build_hypothesis(
        config,
        core_warehouse(warehouse),
        narrator=narrator_for(agent_settings),
    )


@_warehouse_task("check-tracking")
def check_tracking(
    config: ConfigSource,
    warehouse: ExperimentWarehouse | None = None,
    checked_at: datetime | None = None,
) -> TrackingCheckReport:
    """Checks the tracking plan per variant (missing events/properties, late arrivals); returns the
    core ``TrackingCheckReport``.

    :param config: the experiment YAML with its ``tracking:`` section.
    :param warehouse: the warehouse; the config's ``warehouse:`` URL when ``None``.
    :param checked_at: the check's time (default now); a backfill passes its own.
    """
    from dataeng_agents.core.commands.lifecycle import check_tracking as core_check_tracking

    return core_check_tracking(config, core_warehouse(warehouse), now=checked_at)


@_warehouse_task("rollout-check")
def rollout_check(
    config: ConfigSource,
    stage: int,
    warehouse: ExperimentWarehouse | None = None,
    checked_at: datetime | None = None,
    agent_settings: AgentSettings | None = None,
) -> RolloutDecision:
    """One scheduled check of rollout stage ``stage`` (1-based): the core ``RolloutDecision``
    (``advance``, ``hold`` or ``roll back``) with its always-valid evidence.

    :param config: the experiment YAML with its ``rollout:`` section.
    :param stage: the stage being checked.
    :param warehouse: the warehouse; the config's ``warehouse:`` URL when ``None``.
    :param checked_at: the check's time (default now); data after it is ignored.
    :param agent_settings: who writes the prose; the offline template when ``None``.
    """
    from dataeng_agents.core.commands.lifecycle import rollout_check as core_rollout_check

    return core_rollout_check(
        config,
        stage,
        core_warehouse(warehouse),
        checked_at,
        narrator=narrator_for(agent_settings),
    )
