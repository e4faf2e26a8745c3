"""Prefect blocks and a task that advance a guarded rollout on schedule.

Deploy :func:`advance_rollout` in an hourly flow: each run reads the rollout's history from the
decisions table, checks the live stage, records the decision, then moves the flag through the
flag service (advance → next stage's percent, roll back → 0). The numbers and the decision are the
core's (:func:`dataeng_agents.core.commands.lifecycle.rollout_check`).

Example:
    ```python
    from prefect import flow
    from dataeng_agents.prefect_integration.rollout_tasks import (
        FeatureFlagService, RolloutDecisionsTable, advance_rollout,
    )

    @flow
    def checkout_rollout() -> None:
        advance_rollout(
            "experiments/checkout.yaml",
            decisions=RolloutDecisionsTable.load("flags-db"),
            flag_service=FeatureFlagService.load("unleash-checkout"),
        )

    checkout_rollout.serve(name="checkout-rollout", cron="5 * * * *")
    ```
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from dataeng_agents.prefect_integration.blocks import AgentSettings, ExperimentWarehouse
from prefect import get_run_logger, task
from prefect.blocks.core import Block
from prefect.cache_policies import NO_CACHE
from pydantic import Field, SecretStr, model_validator

if TYPE_CHECKING:
    from dataeng_agents.core.lifecycle.actions import HttpFlagHook
    from dataeng_agents.core.lifecycle.rollout import RolloutDecision
    from dataeng_agents.core.lifecycle.state import DecisionStore


class RolloutStoppedError(RuntimeError):
    """The rollout was rolled back, or needs a human (the decision is recorded either way)."""

    def __init__(self, decision: RolloutDecision) -> None:
        self.decision = decision
        what = "rolled back" if decision.decision == "roll back" else "needs a human"
        super().__init__(f"rollout of {decision.experiment_id} {what}: {'; '.join(decision.reasons)}")


class RolloutDecisionsTable(Block):
    """The table holding every decision of the rollouts: their memory between scheduled runs.

    Attributes:
        duckdb_path: A DuckDB database file holding the table.
        postgres_dsn: A PostgreSQL DSN (``postgresql://user@host/db``); its password stays secret.
        table: The table name (``schema.table`` allowed); created when missing.

    Example:
        ```python
        store = RolloutDecisionsTable(duckdb_path="flags.duckdb").get_store()
        ```
    """

    _block_type_name = "Rollout Decisions Table"
    _block_type_slug = "dataeng-rollout-decisions"

    duckdb_path: str | None = Field(default=None, description="DuckDB file of the decisions table.")
    postgres_dsn: SecretStr | None = Field(default=None, description="PostgreSQL DSN of the decisions table.")
    table: str = Field(default="rollout_decisions", description="Table name, optionally schema.table.")

    @model_validator(mode="after")
    def _exactly_one(self) -> RolloutDecisionsTable:
        if (self.duckdb_path is None) == (self.postgres_dsn is None):
            raise ValueError("duckdb_path / postgres_dsn: set exactly one of them")
        return self

    def get_store(self) -> DecisionStore:
        """The core ``DecisionStore`` (a fresh connection per read or write)."""
        from dataeng_agents.core.lifecycle.state import DecisionStore

        if self.postgres_dsn is not None:
            dsn = self.postgres_dsn.get_secret_value()

            def pg() -> Any:
                import psycopg

                return psycopg.connect(dsn, connect_timeout=10)

            return DecisionStore(pg, table=self.table, dialect="postgres")
        import duckdb

        path = str(self.duckdb_path)
        return DecisionStore(lambda: duckdb.connect(path), table=self.table, dialect="duckdb")


class FeatureFlagService(Block):
    """A feature-flag service's HTTP API that sets a flag's rollout percentage.

    The JSON body is ``body_template`` with ``"{percent}"`` replaced by the new percentage (as a
    number, or as text inside a longer string) and ``"{experiment_id}"`` by the experiment id.

    Attributes:
        url: The endpoint (``{experiment_id}`` is filled in).
        method: HTTP method of the update.
        token: API token, sent as ``Authorization: <token_prefix><token>``.
        token_prefix: Prefix of the token in the header (``Bearer `` by default).
        body_template: JSON body of the update.

    Example:
        Unleash's admin API, flexible rollout of one environment:
        ```python
        FeatureFlagService(
            url="https://unleash.example.com/api/admin/projects/default/features/checkout"
                "/environments/production/strategies/4f0c",
            method="PUT",
            token="...",
            token_prefix="",
            body_template={"name": "flexibleRollout",
                           "parameters": {"rollout": "{percent}", "stickiness": "default", "groupId": "checkout"}},
        ).save("unleash-checkout")
        ```
    """

    _block_type_name = "Feature Flag Service"
    _block_type_slug = "dataeng-feature-flag-service"

    url: str = Field(description="Endpoint that sets the flag's percentage.")
    method: Literal["PUT", "PATCH", "POST"] = "PATCH"
    token: SecretStr | None = Field(default=None, description="API token of the flag service.")
    token_prefix: str = "Bearer "
    body_template: dict[str, Any] = Field(default_factory=lambda: {"percent": "{percent}"})

    def get_hook(self) -> HttpFlagHook:
        """The core flag hook for this service."""
        from dataeng_agents.core.lifecycle.actions import HttpFlagHook

        template = self.body_template
        secret = self.token

        def fill(value: Any, percent: float, experiment_id: str) -> Any:
            if value == "{percent}":
                return percent
            if isinstance(value, str):
                return value.replace("{percent}", f"{percent:g}").replace("{experiment_id}", experiment_id)
            if isinstance(value, dict):
                return {k: fill(v, percent, experiment_id) for k, v in value.items()}
            if isinstance(value, list):
                return [fill(v, percent, experiment_id) for v in value]
            return value

        return HttpFlagHook(
            self.url,
            method=self.method,
            body=lambda pct, d: fill(template, pct, d.experiment_id),
            token_provider=(lambda: secret.get_secret_value()) if secret is not None else None,
            token_prefix=self.token_prefix,
        )


def retry_actions_and_transient_errors(task: Any, task_run: Any, state: Any) -> bool:
    """``retry_condition_fn``: retry a failed flag hook or callback (the decision is recorded; the
    retry decides again and acts again) and transient warehouse/network errors — never a roll back
    or a page, which a retry cannot change."""
    from dataeng_agents.core.lifecycle.actions import RolloutActionError
    from dataeng_agents.prefect_integration.tasks import _transient

    exc = state.data if isinstance(state.data, BaseException) else None
    if exc is None:
        try:
            state.result(raise_on_failure=True)
        except BaseException as raised:  # the state's own exception
            exc = raised
    return exc is not None and (isinstance(exc, RolloutActionError) or _transient(exc))


@task(
    name="advance-rollout",
    retries=2,
    retry_delay_seconds=[30, 300],
    retry_condition_fn=retry_actions_and_transient_errors,
    cache_policy=NO_CACHE,
)
def advance_rollout(
    config: str | Path | dict[str, Any],
    decisions: RolloutDecisionsTable,
    warehouse: ExperimentWarehouse | None = None,
    flag_service: FeatureFlagService | None = None,
    checked_at: datetime | None = None,
    stage: int | None = None,
    agent_settings: AgentSettings | None = None,
    raise_on_stop: bool = True,
) -> dict[str, Any] | None:
    """Checks the live stage, records the decision, moves the flag; the decision's summary.

    Args:
        config: The experiment YAML with its ``rollout:`` section.
        decisions: The decisions table (the rollout's memory).
        warehouse: The warehouse; the config's ``warehouse:`` URL when ``None``.
        flag_service: Moves the flag; without it the decision is only recorded.
        checked_at: The check's time (default now); data after it is ignored.
        stage: Check this stage instead of the one the history says is live.
        agent_settings: Who writes the prose; the offline template when ``None``.
        raise_on_stop: Raise :class:`RolloutStoppedError` on roll back or page (after recording).

    Returns:
        The decision's summary, or ``None`` when the rollout is already over (rolled back or complete).
    """
    from dataeng_agents.core.commands.lifecycle import rollout_check
    from dataeng_agents.core.lifecycle.state import RolloutFinishedError
    from dataeng_agents.prefect_integration.tasks import core_warehouse, narrator_for

    logger = get_run_logger()
    try:
        decision = rollout_check(
            config,
            stage,
            core_warehouse(warehouse),
            checked_at,
            store=decisions.get_store(),
            flag=flag_service.get_hook() if flag_service is not None else None,
            narrator=narrator_for(agent_settings),
        )
    except RolloutFinishedError as e:
        logger.info("%s", e)
        return None
    logger.info(
        "Rollout of %s, stage %d: %s (flag at %g%%)",
        decision.experiment_id,
        decision.stage,
        decision.decision,
        decision.flag_percent,
    )
    for w in decision.warnings:
        logger.warning("%s", w)
    if raise_on_stop and (decision.decision == "roll back" or decision.page):
        raise RolloutStoppedError(decision)
    return decision.summary()
