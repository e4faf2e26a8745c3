"""The guarded-rollout operator: one scheduled check that records the decision and moves the flag.

Scheduled hourly (or daily), the same task advances a rollout through all its stages unattended:
the stage live now and the stage start times come from the decisions table (the rollout's
memory), the decision is recorded there first, then the flag is moved (advance → next stage,
roll back → 0) through a flag hook, and the task ends as the decision says.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from airflow.sdk import BaseHook, BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

if TYPE_CHECKING:
    from airflow.sdk import Context
    from dataeng_agents.airflow_provider.hooks.warehouse import ExperimentWarehouseHook
    from dataeng_agents.core.lifecycle.actions import FlagHook
    from dataeng_agents.core.lifecycle.rollout import RolloutDecision
    from dataeng_agents.core.lifecycle.state import DecisionStore

Policy = Literal["fail", "warn"]


class RolloutRolledBackError(AirflowFailException):
    """The check decided ``roll back`` (recorded, flag moved to 0). A retry cannot undo it."""


class RolloutPageError(AirflowFailException):
    """The check needs a human (an SRM past its hold limit, a biased comparison, a flag hook that failed)."""


class GuardedRolloutOperator(BaseOperator):
    """
    Check the live stage of a guarded rollout, record the decision, move the flag.

    .. code-block:: python

        GuardedRolloutOperator(
            task_id="rollout",
            config="/opt/airflow/experiments/checkout.yaml",
            conn_id="warehouse_postgres",
            decisions_conn_id="flags_postgres",
            flag_http_conn_id="unleash_admin",
            flag_endpoint="/api/admin/projects/default/features/checkout/environments/production/strategies/4f0c",
            flag_method="PUT",
            flag_body=lambda pct, d: {"name": "flexibleRollout", "parameters": {"rollout": str(round(pct))}},
        )

    :param config: The experiment YAML with its ``rollout:`` section (path, YAML text or dict; templated).
    :param conn_id: Warehouse connection (any common-sql ``DbApiHook``); ``None`` uses ``duckdb_path``,
        else the config's ``warehouse`` URL.
    :param duckdb_path: DuckDB warehouse file when ``conn_id`` is ``None`` (templated).
    :param dialect: sqlglot dialect of the warehouse; inferred from the connection when ``None``.
    :param decisions_conn_id: Connection of the database holding the decisions table (any
        common-sql ``DbApiHook``); ``None`` uses ``decisions_duckdb_path``.
    :param decisions_duckdb_path: DuckDB file of the decisions table when ``decisions_conn_id`` is ``None``.
    :param decisions_table: The decisions table (``schema.table`` allowed; created when missing).
    :param stage: Check this stage (1-based) instead of the one the history says is live.
    :param flag: A flag hook ``(experiment_id, percent, decision) -> None`` (an SDK call); or use
        ``flag_http_conn_id``.
    :param flag_http_conn_id: An HTTP connection of the flag service: host (and schema) give the base
        URL, the password is the API token (sent as ``Authorization``, never logged).
    :param flag_endpoint: Path appended to the connection's base URL (``{experiment_id}``,
        ``{percent}`` are filled in).
    :param flag_method: HTTP method of the flag update.
    :param flag_body: ``(percent, decision) -> dict``, the JSON body of the flag update.
    :param flag_token_prefix: Prefix of the token in the ``Authorization`` header.
    :param rollback_policy: ``fail`` the task on ``roll back`` (after recording it and moving the
        flag; the DAG's failure callback alerts) or only ``warn``.
    :param page_policy: ``fail`` the task when the decision pages, or only ``warn``.
    """

    template_fields: Sequence[str] = (
        "config",
        "duckdb_path",
        "decisions_duckdb_path",
        "decisions_table",
        "flag_endpoint",
    )
    template_fields_renderers: ClassVar[dict[str, str]] = {"config": "json"}
    ui_color = "#e8f4ea"

    def __init__(
        self,
        *,
        config: str | dict[str, Any],
        conn_id: str | None = None,
        duckdb_path: str | None = None,
        dialect: str | None = None,
        decisions_conn_id: str | None = None,
        decisions_duckdb_path: str | None = None,
        decisions_table: str = "rollout_decisions",
        stage: int | None = None,
        flag: FlagHook | None = None,
        flag_http_conn_id: str | None = None,
        flag_endpoint: str = "",
        flag_method: str = "PATCH",
        flag_body: Callable[[float, RolloutDecision], dict[str, Any]] | None = None,
        flag_token_prefix: str = "Bearer ",
        rollback_policy: Policy = "fail",
        page_policy: Policy = "fail",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if decisions_conn_id is None and decisions_duckdb_path is None:
            raise ValueError("decisions_conn_id / decisions_duckdb_path: the rollout needs a decisions table")
        if flag is not None and flag_http_conn_id is not None:
            raise ValueError("flag / flag_http_conn_id: give at most one flag hook")
        self.config = config
        self.conn_id = conn_id
        self.duckdb_path = duckdb_path
        self.dialect = dialect
        self.decisions_conn_id = decisions_conn_id
        self.decisions_duckdb_path = decisions_duckdb_path
        self.decisions_table = decisions_table
        self.stage = stage
        self.flag = flag
        self.flag_http_conn_id = flag_http_conn_id
        self.flag_endpoint = flag_endpoint
        self.flag_method = flag_method
        self.flag_body = flag_body
        self.flag_token_prefix = flag_token_prefix
        self.rollback_policy = rollback_policy
        self.page_policy = page_policy

    @cached_property
    def hook(self) -> ExperimentWarehouseHook:
        """The warehouse the guardrails are computed on."""
        from dataeng_agents.airflow_provider.hooks.warehouse import ExperimentWarehouseHook

        return ExperimentWarehouseHook(
            conn_id=self.conn_id, duckdb_path=self.duckdb_path, dialect=self.dialect
        )

    def decision_store(self) -> DecisionStore:
        """The decisions table, through the connection's DB-API (a fresh connection per use)."""
        from dataeng_agents.airflow_provider.hooks.warehouse import sqlglot_dialect
        from dataeng_agents.core.lifecycle.state import DecisionStore

        if self.decisions_conn_id is None:
            import duckdb

            path = str(self.decisions_duckdb_path)
            return DecisionStore(lambda: duckdb.connect(path), table=self.decisions_table, dialect="duckdb")
        conn = BaseHook.get_connection(self.decisions_conn_id)
        db_hook = conn.get_hook()
        dialect = sqlglot_dialect(conn.conn_type, getattr(db_hook, "dialect_name", None))
        return DecisionStore(db_hook.get_conn, table=self.decisions_table, dialect=dialect)

    def flag_hook(self) -> FlagHook | None:
        """``flag``, or an HTTP hook on ``flag_http_conn_id`` whose token is the connection's password."""
        if self.flag is not None or self.flag_http_conn_id is None:
            return self.flag
        from dataeng_agents.core.lifecycle.actions import HttpFlagHook

        conn = BaseHook.get_connection(self.flag_http_conn_id)
        scheme = conn.schema or "https"
        base = f"{scheme}://{conn.host}" + (f":{conn.port}" if conn.port else "")
        password = conn.password
        return HttpFlagHook(
            base.rstrip("/") + self.flag_endpoint,
            method=self.flag_method,
            body=self.flag_body,
            token_provider=(lambda: password) if password else None,
            token_prefix=self.flag_token_prefix,
        )

    def execute(self, context: Context) -> dict[str, Any] | None:
        from dataeng_agents.airflow_provider.operators._errors import permanent_warehouse_errors_fail_at_once
        from dataeng_agents.core.commands.lifecycle import rollout_check
        from dataeng_agents.core.lifecycle.actions import RolloutActionError
        from dataeng_agents.core.lifecycle.state import RolloutFinishedError

        now = context.get("data_interval_end") or context.get("logical_date")
        try:
            with permanent_warehouse_errors_fail_at_once():
                decision = rollout_check(
                    self.config,
                    self.stage,
                    self.hook.get_conn(),
                    now,
                    store=self.decision_store(),
                    flag=self.flag_hook(),
                )
        except RolloutFinishedError as e:
            raise AirflowSkipException(str(e)) from e
        except RolloutActionError as e:
            # recorded; the flag or a callback failed: a retry decides again and retries the action
            raise AirflowException(str(e)) from e
        summary: dict[str, Any] = json.loads(json.dumps(decision.summary(), default=str))
        self.log.info(
            "Rollout of %s, stage %d (%g%%): %s; flag at %g%%",
            decision.experiment_id,
            decision.stage,
            decision.stage_percent,
            decision.decision,
            decision.flag_percent,
        )
        for reason in decision.reasons:
            self.log.info("  %s", reason)
        for warning in decision.warnings:
            self.log.warning("  %s", warning)
        if decision.decision == "roll back" and self.rollback_policy == "fail":
            raise RolloutRolledBackError(f"rolled back: {'; '.join(decision.reasons)}")
        if decision.page and self.page_policy == "fail":
            raise RolloutPageError(f"needs a human: {'; '.join(decision.reasons)}")
        return summary
