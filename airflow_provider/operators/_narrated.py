"""Plumbing shared by the operators: who narrates, deferral through Message Batches, report output.

An operator computes its result twice at most and never twice with different inputs:

* ``deferrable=False`` (or no ``anthropic`` connection): one pass with the synchronous Claude
  narrator (or the template narrator), then the outputs are written.
* ``deferrable=True``: a first pass with a *recording* narrator collects the narration tasks and
  writes nothing; the core's :class:`~dataeng_agents.core.agents.BatchNarration` turns each into a
  Message Batches request with a deterministic ``custom_id`` and ``submit_or_attach_many`` sends the
  new ones in ONE batch, recording ``custom_id -> batch_id`` in a ledger kept in the task instance's
  ``task_state_store`` (it survives retries). The task defers to
  :class:`~dataeng_agents.airflow_provider.triggers.narration.NarrationBatchTrigger`, which polls in
  the triggerer and frees the worker slot. On resume the result is computed again (deterministic:
  same config, same data interval) with a *replay* narrator that collects each task's answer from the
  batch by its ``custom_id``; a task whose facts changed meanwhile has a different ``custom_id``,
  finds no ledger entry and falls back to the template, so prose never describes numbers it was not
  shown. A retry after a crash prepares the same requests, finds them in the ledger and re-attaches
  to the same batch instead of paying for a second one.
"""

from __future__ import annotations

import re
import time
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator, conf

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow.sdk import Context, ObjectStoragePath
    from dataeng_agents.airflow_provider.hooks.narrator import NarratorHook
    from dataeng_agents.core.llm.ledger import LedgerEntry
    from dataeng_agents.core.narrative import NarrationTask, Narrator

#: task_state_store key prefix of the batch ledger entries (one key per request custom_id).
LEDGER_PREFIX = "dataeng_batch:"
#: task_state_store key listing the custom_ids this task instance submitted (to clean up on success).
LEDGER_INDEX = "dataeng_batch_ids"


def default_reports_root() -> str:
    """``[dataeng] reports_root``, else ``file://$AIRFLOW_HOME/dataeng_reports``."""
    import os

    root = conf.get("dataeng", "reports_root", fallback=None)
    if root:
        return str(root).rstrip("/")
    home = os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow")
    return f"file://{os.path.abspath(home)}/dataeng_reports"


def safe_path_part(value: str) -> str:
    """A run id or task id as one path segment (no ``:``, ``+`` or ``/``)."""
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", value).strip("_") or "run"


class TaskStateLedger:
    """The core's batch ledger (``get``/``put``/``discard``) in Airflow's ``task_state_store``.

    ``task_state_store`` is scoped to the task instance and kept across its tries, which is exactly
    the lifetime a "which batch already carries this request" record needs.
    """

    def __init__(self, store: Any) -> None:
        self.store = store

    def get(self, custom_id: str) -> LedgerEntry | None:
        from dataeng_agents.core.llm.ledger import LedgerEntry

        raw = self.store.get(LEDGER_PREFIX + custom_id)
        return LedgerEntry(**raw) if isinstance(raw, dict) else None

    def put(self, entry: LedgerEntry) -> None:
        from dataclasses import asdict

        self.store.set(LEDGER_PREFIX + entry.custom_id, asdict(entry))
        ids = list(self.store.get(LEDGER_INDEX) or [])
        if entry.custom_id not in ids:
            self.store.set(LEDGER_INDEX, [*ids, entry.custom_id])

    def discard(self, custom_id: str) -> None:
        self.store.delete(LEDGER_PREFIX + custom_id)

    def clear(self) -> None:
        for custom_id in self.store.get(LEDGER_INDEX) or []:
            self.store.delete(LEDGER_PREFIX + custom_id)
        self.store.delete(LEDGER_INDEX)


class RecordingNarrator:
    """Answers every task with its template and remembers the task (first pass of a deferral)."""

    name = "recording"

    def __init__(self) -> None:
        self.tasks: list[NarrationTask[Any]] = []

    def narrate(self, task: NarrationTask[Any]) -> Any:
        self.tasks.append(task)
        return task.template()


class ReplayNarrator:
    """Answers every task from the ended batch recorded in the ledger (second pass of a deferral).

    :param prepare: builds the core ``BatchNarration`` of a task (same persona/model as at submit).
    :param fallback_reason: when set, every task gets its template with this reason (the batch
        failed or timed out).
    """

    name = "claude-batch"

    def __init__(
        self, prepare: Any, client: Any, ledger: TaskStateLedger, fallback_reason: str | None = None
    ) -> None:
        self.prepare = prepare
        self.client = client
        self.ledger = ledger
        self.fallback_reason = fallback_reason

    def narrate(self, task: NarrationTask[Any]) -> Any:
        narration = self.prepare(task)
        if self.fallback_reason is not None:
            return narration.fallback(self.fallback_reason)
        return narration.collect(self.client, ledger=self.ledger)


class NarratedOperator(BaseOperator):
    """
    Base class of the operators that write prose on top of deterministic results.

    :param anthropic_conn_id: Connection of type ``anthropic`` (the official Anthropic provider's
        connection type: first-party API, Bedrock, Vertex, ...). ``None`` writes the prose with the
        deterministic templates, offline and free.
    :param model: Claude model id; ``None`` uses the connection's default model.
    :param max_usd: The most one narration may cost (checked before any request is sent).
    :param deferrable: Send the narration through the Message Batches API (half price) and wait
        for it in the triggerer, freeing the worker slot. Needs a first-party platform
        (``anthropic`` or ``aws``) on the connection.
    :param poll_interval: Seconds between batch status polls while deferred.
    :param batch_timeout: Seconds to wait for the batch before falling back to the templates.
    """

    #: subclasses that never call an LLM set this to False (deferral then has nothing to wait for)
    narrates: ClassVar[bool] = True

    def __init__(
        self,
        *,
        anthropic_conn_id: str | None = None,
        model: str | None = None,
        max_usd: float | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 60.0,
        batch_timeout: float = 24 * 60 * 60,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.anthropic_conn_id = anthropic_conn_id
        self.model = model
        self.max_usd = max_usd
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.batch_timeout = batch_timeout

    @cached_property
    def narrator_hook(self) -> NarratorHook:
        """Builds the narrator from ``anthropic_conn_id`` through the official Anthropic hook."""
        from dataeng_agents.airflow_provider.hooks.narrator import NarratorHook

        return NarratorHook(
            anthropic_conn_id=self.anthropic_conn_id,
            model=self.model,
            narrator_kwargs={"max_usd": self.max_usd} if self.max_usd is not None else None,
        )

    # -- what subclasses implement ----------------------------------------------------------------
    def compute(self, context: Context, narrator: Narrator) -> Any:
        """Compute the result (numbers, findings, prose) with ``narrator``; write nothing."""
        raise NotImplementedError

    def finish(self, context: Context, result: Any) -> Any:
        """Write the outputs of ``result`` and return the compact XCom value."""
        raise NotImplementedError

    # -- execution ----------------------------------------------------------------------------------
    def _prepare(self, task: NarrationTask[Any]) -> Any:
        from dataeng_agents.core.agents import BatchNarration

        # the core hashes the custom_id from rounded facts, so the recomputed results after
        # resuming (not bit-identical in a parallel warehouse) find the same batch
        return BatchNarration.prepare(task, model=self.narrator_hook.resolved_model, max_usd=self.max_usd)

    def _ledger(self, context: Context) -> TaskStateLedger:
        store = context.get("task_state_store")
        if store is None:
            raise RuntimeError("deferrable narration needs Airflow's task_state_store (Airflow >= 3.3)")
        return TaskStateLedger(store)

    def execute(self, context: Context) -> Any:
        if not (self.deferrable and self.narrates and self.anthropic_conn_id):
            return self.finish(context, self.compute(context, self.narrator_hook.get_conn()))

        recorder = RecordingNarrator()
        result = self.compute(context, recorder)
        if not recorder.tasks:
            self.log.info("Nothing to narrate; writing the outputs now.")
            return self.finish(context, result)

        from dataeng_agents.core.agents import submit_or_attach_many

        ledger = self._ledger(context)
        narrations = [self._prepare(task) for task in recorder.tasks]
        known = {n.custom_id: entry.batch_id for n in narrations if (entry := ledger.get(n.custom_id))}
        try:
            batch_ids = submit_or_attach_many(narrations, self.narrator_hook.get_client(), ledger)
        except Exception as e:  # budget, auth, platform without batches: never lose the report
            reason = f"batch submit failed: {type(e).__name__}: {e}"
            self.log.warning("%s; writing the report with the templates.", reason)
            replay = ReplayNarrator(self._prepare, None, ledger, fallback_reason=reason)
            return self.finish(context, self.compute(context, replay))
        for custom_id, batch_id in sorted(batch_ids.items()):
            how = "re-attached to" if custom_id in known else "submitted in"
            self.log.info("Narration request %s %s batch %s.", custom_id, how, batch_id)
        self._defer_on(sorted(set(batch_ids.values())))

    def _defer_on(self, batch_ids: list[str]) -> None:
        from dataeng_agents.airflow_provider.triggers.narration import NarrationBatchTrigger

        self.defer(
            trigger=NarrationBatchTrigger(
                conn_id=str(self.anthropic_conn_id),
                batch_ids=batch_ids,
                poll_interval=self.poll_interval,
                end_time=time.time() + self.batch_timeout,
            ),
            method_name="execute_complete",
            timeout=self.execution_timeout or timedelta(seconds=self.batch_timeout + self.poll_interval + 60),
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """Resume after the trigger: answer the narration from the batch, then write the outputs."""
        event = event or {"status": "error", "message": "the trigger sent no event"}
        ledger = self._ledger(context)
        reason = None
        if event.get("status") != "success":
            # The LLM is never a reason to lose the report: fall back to the templates.
            reason = f"batch {event.get('status')}: {event.get('message', '')}".strip()
            self.log.warning("Narration batch did not complete (%s); using the templates.", reason)
        narrator = ReplayNarrator(
            self._prepare, self.narrator_hook.get_client(), ledger, fallback_reason=reason
        )
        out = self.finish(context, self.compute(context, narrator))
        ledger.clear()
        return out

    # -- outputs --------------------------------------------------------------------------------------
    def resolve_output_dir(self, context: Context, output_path: str | None) -> ObjectStoragePath:
        """``output_path``, else ``<reports_root>/<dag_id>/<task_id>/<run_id>``."""
        from airflow.sdk import ObjectStoragePath

        if output_path:
            return ObjectStoragePath(output_path)
        run_id = safe_path_part(str(context["run_id"]))
        return ObjectStoragePath(f"{default_reports_root()}/{self.dag_id}/{self.task_id}/{run_id}")


def local_dir(dest: ObjectStoragePath) -> str | None:
    """The local path of ``dest`` when it is on the local filesystem, else ``None``."""
    return dest.path if dest.protocol in ("file", "local", "") else None


def write_outputs(write: Callable[..., dict[str, str]], dest: ObjectStoragePath) -> dict[str, str]:
    """Run a core writer (``write_report``/``write_review`` with its arguments bound) for ``dest``.

    A local destination is written by the core in place (temp dir, then rename: never half-written)
    and returned as ``file://`` URIs; any other ``ObjectStoragePath`` gets the files rendered first
    and then uploaded one by one through :func:`object_storage_writer`.
    """
    from pathlib import Path

    local = local_dir(dest)
    if local is not None:
        return {fmt: Path(p).resolve().as_uri() for fmt, p in write(local).items()}
    return dict(write(str(dest), writer=object_storage_writer))


def object_storage_writer(path: str, data: bytes) -> None:
    """The core report writer's ``writer`` for non-local storage (``s3://``, ``gs://``, ...)."""
    from airflow.sdk import ObjectStoragePath

    ObjectStoragePath(path).write_bytes(data)
