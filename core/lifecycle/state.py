"""The rollout's memory: every decision in a table, and the history read back from it.

The YAML's ``rollout:`` section is the *plan* (stages, minimum durations, guardrails); what actually
happened — when each stage started, which checks held, since when the sample ratio is off — lives in
the decisions table that every check writes. A stage starts when the check before it decided
``advance`` (the flag hook moves the flag in the same run), so a stage that ran long is remembered
as long and its units are counted in the right stage.

The table is plain SQL over a DB-API connection (DuckDB, PostgreSQL, …); statements are built with
sqlglot (values are literals, the table name a checked identifier).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dataeng_agents.core.errors import InputError, WarehouseError
from dataeng_agents.core.lifecycle.config import RolloutPlan, as_utc
from dataeng_agents.core.lifecycle.rollout import RolloutDecision
from pydantic import BaseModel, ConfigDict
from sqlglot import exp

# column → SQL type (PostgreSQL spelling; sqlglot writes the connection's dialect)
DECISION_COLUMNS: dict[str, str] = {
    "experiment_id": "VARCHAR(200)",
    "stage": "INTEGER",
    "stage_percent": "DOUBLE PRECISION",
    "decision": "VARCHAR(20)",
    "next_stage_percent": "DOUBLE PRECISION",
    "checked_at": "TIMESTAMP",
    "reasons": "TEXT",
    "evidence": "TEXT",
    # added with the rollout's memory; older tables get them by ALTER TABLE … ADD COLUMN IF NOT EXISTS
    "flag_percent": "DOUBLE PRECISION",
    "stage_started_at": "TIMESTAMP",
    "srm_p_value": "DOUBLE PRECISION",
    "srm_mismatch": "BOOLEAN",
    "srm_since": "TIMESTAMP",
    "page": "BOOLEAN",
    "units_in_both_arms": "BIGINT",
    "warnings": "TEXT",
}
_ORIGINAL = (
    "experiment_id",
    "stage",
    "stage_percent",
    "decision",
    "next_stage_percent",
    "checked_at",
    "reasons",
    "evidence",
)


class DecisionRecord(BaseModel):
    """One row of the decisions table."""

    model_config = ConfigDict(extra="forbid")

    experiment_id: str
    stage: int
    stage_percent: float
    decision: str
    next_stage_percent: float | None = None
    flag_percent: float | None = None
    checked_at: datetime
    stage_started_at: datetime | None = None
    srm_p_value: float | None = None
    srm_mismatch: bool | None = None
    srm_since: datetime | None = None
    page: bool | None = None
    units_in_both_arms: int | None = None


class RolloutFinishedError(InputError):
    """The history says the rollout is over (rolled back or complete): there is no stage to check."""

    def __init__(self, message: str, last: DecisionRecord) -> None:
        super().__init__("stage", message)
        self.last = last


@dataclass
class RolloutHistory:
    """The decisions of one rollout, oldest first."""

    experiment_id: str
    records: list[DecisionRecord] = field(default_factory=list)

    @property
    def last(self) -> DecisionRecord | None:
        return self.records[-1] if self.records else None

    def current_stage(self, stages: int) -> int:
        """The stage live now: 1 without history, the next one after an ``advance``.

        :raises RolloutFinishedError: after a ``roll back``, or after the last stage advanced.
        """
        last = self.last
        if last is None:
            return 1
        if last.decision == "roll back":
            raise RolloutFinishedError(
                f"the rollout of {self.experiment_id} was rolled back at stage {last.stage} "
                f"({last.checked_at.isoformat()}); start a new rollout (a new experiment id) to try again",
                last,
            )
        if last.decision == "advance":
            if last.stage >= stages:
                raise RolloutFinishedError(
                    f"the rollout of {self.experiment_id} completed at {last.checked_at.isoformat()}", last
                )
            return last.stage + 1
        return last.stage

    def stage_starts(self, plan: RolloutPlan, stage: int, first: datetime) -> list[datetime]:
        """Start of stages 1..``stage``: stage 1 at ``first``; stage k+1 at the first ``advance`` of stage k.

        The YAML's ``stage_started_at`` entries win (the team knows better); a stage without either
        falls back to the minimum schedule, as the check did before it had a memory.
        """
        from datetime import timedelta

        given = [as_utc(t) for t in plan.stage_started_at]
        advanced: dict[int, datetime] = {}
        started: dict[int, datetime] = {}
        for r in self.records:
            if r.decision == "advance":
                advanced.setdefault(r.stage, as_utc(r.checked_at))
            if r.stage_started_at is not None:
                started.setdefault(r.stage, as_utc(r.stage_started_at))
        starts = [given[0] if given else first]
        for k in range(2, stage + 1):
            if k <= len(given):
                starts.append(given[k - 1])
            elif k - 1 in advanced:
                starts.append(advanced[k - 1])
            elif k in started:
                starts.append(started[k])
            else:
                starts.append(starts[-1] + timedelta(hours=plan.stages[k - 2].min_duration))
        return starts

    def srm_since(self) -> datetime | None:
        """First check of the trailing run of sample-ratio mismatches (None when the last check was fine)."""
        since: datetime | None = None
        for r in self.records:
            since = since or as_utc(r.srm_since or r.checked_at) if r.srm_mismatch else None
        return since


def _literal(v: Any) -> exp.Expr:
    if v is None:
        return exp.Null()
    if isinstance(v, bool):
        return exp.Boolean(this=v)
    if isinstance(v, int | float):
        return exp.Literal.number(v)
    if isinstance(v, datetime):
        return exp.cast(exp.Literal.string(as_utc(v).replace(tzinfo=None).isoformat(sep=" ")), "TIMESTAMP")
    return exp.Literal.string(str(v))


class DecisionStore:
    """The decisions table: :meth:`record` appends a decision, :meth:`history` reads a rollout back.

    >>> import duckdb
    >>> store = DecisionStore(lambda: duckdb.connect("flags.duckdb"), table="rollout_decisions")

    :param connection_or_factory: an open DB-API connection (kept open) or a zero-argument factory.
    :param table: the table name, optionally ``schema.table``; created when missing.
    :param dialect: sqlglot dialect of the connection (``duckdb``, ``postgres``, …).
    """

    def __init__(
        self, connection_or_factory: Any, *, table: str = "rollout_decisions", dialect: str = "duckdb"
    ) -> None:
        from dataeng_agents.core.warehouse.identifiers import check_identifier

        try:
            self.table = check_identifier(table, dotted=True)
        except ValueError as err:
            raise InputError("table", str(err)) from None
        self._target = connection_or_factory
        self.dialect = dialect

    # ------------------------------------------------------------------------------------------ SQL
    def _create(self) -> list[str]:
        create = exp.Create(
            this=exp.Schema(
                this=exp.to_table(self.table),
                expressions=[
                    exp.ColumnDef(this=exp.to_identifier(n), kind=exp.DataType.build(t, dialect="postgres"))
                    for n, t in DECISION_COLUMNS.items()
                ],
            ),
            kind="TABLE",
            exists=True,
        )
        table_sql = exp.to_table(self.table).sql(dialect=self.dialect)
        # a table written before the rollout kept its memory lacks the newer columns
        alters = [
            f"ALTER TABLE {table_sql} ADD COLUMN IF NOT EXISTS "
            f"{exp.to_identifier(n).sql(dialect=self.dialect)} "
            f"{exp.DataType.build(t, dialect='postgres').sql(dialect=self.dialect)}"
            for n, t in DECISION_COLUMNS.items()
            if n not in _ORIGINAL
        ]
        return [create.sql(dialect=self.dialect), *alters]

    def statements(self, decision: RolloutDecision) -> list[str]:
        """CREATE (if missing), DELETE of a retried check, INSERT — in the connection's dialect."""
        row: dict[str, Any] = {
            "experiment_id": decision.experiment_id,
            "stage": decision.stage,
            "stage_percent": decision.stage_percent,
            "decision": decision.decision,
            "next_stage_percent": decision.next_stage_percent,
            "checked_at": decision.checked_at,
            "reasons": json.dumps(decision.reasons),
            "evidence": json.dumps([g.model_dump(mode="json") for g in decision.guardrails]),
            "flag_percent": decision.flag_percent,
            "stage_started_at": decision.stage_started_at,
            "srm_p_value": decision.srm_p_value,
            "srm_mismatch": decision.srm_mismatch,
            "srm_since": decision.srm_since,
            "page": decision.page,
            "units_in_both_arms": decision.units_in_both_arms,
            "warnings": json.dumps(decision.warnings),
        }
        values = [_literal(row[c]) for c in DECISION_COLUMNS]
        insert = exp.insert(exp.select(*values), exp.to_table(self.table), columns=list(DECISION_COLUMNS))
        # a retried task writes the same check again: replace it instead of appending a duplicate
        delete = exp.delete(
            exp.to_table(self.table),
            where=exp.and_(
                exp.column("experiment_id").eq(_literal(decision.experiment_id)),
                exp.column("stage").eq(_literal(decision.stage)),
                exp.column("checked_at").eq(_literal(decision.checked_at)),
            ),
        )
        return [*self._create(), delete.sql(dialect=self.dialect), insert.sql(dialect=self.dialect)]

    def _run(self, work: Callable[[Any], Any], what: str) -> Any:
        owned = not hasattr(self._target, "cursor")
        try:
            conn = self._target() if owned else self._target
        except Exception as err:
            raise WarehouseError(f"{self.dialect}: cannot connect to {what}: {err}") from None
        try:
            out = work(conn)
            conn.commit()
            return out
        except Exception as err:
            with contextlib.suppress(Exception):
                conn.rollback()
            raise WarehouseError(f"{self.dialect}: cannot {what} ({self.table}): {err}") from None
        finally:
            if owned:
                conn.close()

    # ------------------------------------------------------------------------------------------ API
    def record(self, decision: RolloutDecision) -> None:
        """Writes the decision (replacing a retried check of the same time) in one transaction."""

        def work(conn: Any) -> None:
            cur = conn.cursor()
            for stmt in self.statements(decision):
                cur.execute(stmt)

        self._run(work, "write the rollout decision")

    __call__ = record  # a store is also a decision callback

    def history(self, experiment_id: str) -> RolloutHistory:
        """Every recorded decision of ``experiment_id``, oldest first (empty when the table is missing)."""
        cols = [c for c in DECISION_COLUMNS if c in DecisionRecord.model_fields]
        query = (
            exp.select(*[exp.column(c) for c in cols])
            .from_(exp.to_table(self.table))
            .where(exp.column("experiment_id").eq(_literal(experiment_id)))
            .order_by(exp.column("checked_at"))
            .sql(dialect=self.dialect)
        )

        def work(conn: Any) -> list[Sequence[Any]]:
            cur = conn.cursor()
            for stmt in self._create():
                cur.execute(stmt)
            cur.execute(query)
            return list(cur.fetchall())

        rows = self._run(work, "read the rollout history")
        records = []
        for r in rows:
            d = dict(zip(cols, r, strict=True))
            for k in ("checked_at", "stage_started_at", "srm_since"):
                if isinstance(d.get(k), str):
                    d[k] = datetime.fromisoformat(d[k])
                if d.get(k) is not None:
                    d[k] = as_utc(d[k])
            records.append(DecisionRecord.model_validate(d))
        return RolloutHistory(experiment_id, records)
