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

An operator whose result is expensive to compute (a warehouse query) implements
:meth:`NarratedOperator.save_pending` / :meth:`NarratedOperator.resume_pending`: the first pass keeps
the computed result (compressed JSON) in ``task_state_store`` and the resumed task only narrates it
again, so the warehouse is queried once per deferral.

The deferral is bounded by the task's ``execution_timeout`` (minus ``timeout_margin``): Airflow
fails a deferred task whose trigger outlives its timeout, so the trigger gives up first and the
task writes the report with the template prose. A batch that timed out, or whose task is killed
while it is pending, is cancelled so it stops billing.
"""

from __future__ import annotations

import re
import time
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator, conf
from airflow.sdk.exceptions import AirflowException, AirflowFailException

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
#: task_state_store key of the result computed before deferring (see ``save_pending``).
PENDING_RESULT_KEY = "dataeng_pending_result"


class NarrationFailed(AirflowException):
    """Claude was asked for the prose but the template wrote it (``fail_on_llm_error=True``).

    Raised after the outputs are written; an ``AirflowException``, so the task's retries apply (an
    overloaded or unreachable API usually recovers).
    """


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


def map_index_of(context: Context) -> int:
    """The task instance's map index (``-1`` when the task is not mapped)."""
    ti = context.get("ti")
    index = getattr(ti, "map_index", -1)
    return int(index) if isinstance(index, int) else -1


def narration_summary(provenances: list[Any]) -> dict[str, Any]:
    """Who wrote the prose, for XCom summaries: ``narrator``, ``fell_back`` and the reasons.

    ``narrator`` is ``claude`` only when Claude wrote every part; ``fell_back`` is true when Claude
    was configured but the template wrote some part (the reasons say why).
    """
    names = [getattr(p, "narrator", "template") for p in provenances]
    reasons = [str(p.fallback_reason) for p in provenances if getattr(p, "fallback_reason", None)]
    out: dict[str, Any] = {
        "narrator": "claude" if names and all(n == "claude" for n in names) else "template",
        "fell_back": bool(reasons),
        "fallback_reasons": reasons,
    }
    written_by = [w for p in provenances if (w := getattr(p, "written_by", None))]
    if written_by:
        out["written_by"] = written_by[0] if len(set(map(str, written_by))) == 1 else written_by
    return out


def encode_pending(model: Any) -> str:
    """A pydantic result as compressed, base64 JSON (small enough for ``task_state_store``)."""
    import base64
    import zlib

    return base64.b64encode(zlib.compress(model.model_dump_json().encode("utf-8"), 9)).decode("ascii")


def decode_pending(model_type: Any, blob: str) -> Any:
    """The inverse of :func:`encode_pending`."""
    import base64
    import zlib

    return model_type.model_validate_json(zlib.decompress(base64.b64decode(blob)).decode("utf-8"))


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
    :param batch_timeout: Seconds to wait for the batch before falling back to the templates (and
        cancelling the batch). Also bounded by ``execution_timeout`` minus ``timeout_margin``.
    :param timeout_margin: Seconds of ``execution_timeout`` kept free after the deferral to write the
        report (the trigger gives up this long before Airflow's own deferral timeout).
    :param fail_on_llm_error: Fail the task (after writing the outputs, so retries apply) when
        Claude was configured but the template wrote the prose. Default: keep the template prose
        and say so in the summary (``narration.fell_back``).
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
        timeout_margin: float = 120.0,
        fail_on_llm_error: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if timeout_margin < 0:
            raise ValueError(f"timeout_margin must be >= 0 seconds, got {timeout_margin!r}")
        self.anthropic_conn_id = anthropic_conn_id
        self.model = model
        self.max_usd = max_usd
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.batch_timeout = batch_timeout
        self.timeout_margin = timeout_margin
        self.fail_on_llm_error = fail_on_llm_error
        #: batches this execution submitted or re-attached to (cancelled by ``on_kill``)
        self._pending_batches: list[str] = []
        self._pending_ledger: TaskStateLedger | None = None
        self._pending_custom_ids: list[str] = []
        self._execute_started: float | None = None
        #: URL of the report this task instance wrote (read by ReportLink when the instance ends)
        self.report_url: str | None = None
        #: True while the task hands over to the triggerer (ReportLink then has nothing to show)
        self.deferring = False

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

    def provenances(self, result: Any) -> list[Any]:
        """The ``NarrationProvenance`` of every piece of prose in ``result`` (for the summary and
        ``fail_on_llm_error``)."""
        return []

    def save_pending(self, result: Any) -> str | None:
        """The first-pass result as a string kept in ``task_state_store`` across the deferral, or
        ``None`` to compute the result again on resume (cheap results)."""
        return None

    def resume_pending(self, saved: str, narrator: Narrator) -> Any:
        """The result saved by :meth:`save_pending`, with its prose written again by ``narrator``."""
        raise NotImplementedError

    def validate(self, context: Context) -> None:
        """Check the (rendered) arguments before anything is computed; raise a clear error."""
        if self.anthropic_conn_id and self.narrates:
            self._check_anthropic_connection()

    def _check_anthropic_connection(self) -> None:
        from airflow.sdk import BaseHook

        try:
            conn = BaseHook.get_connection(str(self.anthropic_conn_id))
        except Exception as e:
            raise AirflowFailException(
                f"anthropic_conn_id: connection {self.anthropic_conn_id!r} could not be read: {e}"
            ) from e
        if conn.conn_type != "anthropic":
            raise AirflowFailException(
                f"anthropic_conn_id: connection {self.anthropic_conn_id!r} has type {conn.conn_type!r}, "
                "expected 'anthropic' (the official Anthropic provider's connection type)"
            )

    def _compute(self, context: Context, narrator: Any) -> Any:
        """:meth:`compute`; a warehouse error no retry can clear fails the task at once."""
        from dataeng_agents.airflow_provider.operators._errors import permanent_warehouse_errors_fail_at_once

        with permanent_warehouse_errors_fail_at_once():
            return self.compute(context, narrator)

    def _done(self, context: Context, result: Any) -> Any:
        """``finish`` (outputs written), then ``fail_on_llm_error``."""
        out = self.finish(context, result)
        if self.fail_on_llm_error and self.anthropic_conn_id:
            reasons = [p.fallback_reason for p in self.provenances(result) if p.fallback_reason]
            if reasons:
                raise NarrationFailed(
                    "the template wrote the prose because Claude failed: " + "; ".join(reasons)
                )
        return out

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
        self._execute_started = time.monotonic()
        self.validate(context)
        if not (self.deferrable and self.narrates and self.anthropic_conn_id):
            return self._done(context, self._compute(context, self.narrator_hook.get_conn()))

        recorder = RecordingNarrator()
        result = self._compute(context, recorder)
        if not recorder.tasks:
            self.log.info("Nothing to narrate; writing the outputs now.")
            return self._done(context, result)

        ledger = self._ledger(context)
        wait = self._deferral_seconds()
        if wait <= 0:
            reason = (
                f"no time left to wait for a batch within execution_timeout={self.execution_timeout} "
                f"(timeout_margin={self.timeout_margin:g}s)"
            )
            self.log.warning("%s; writing the outputs with the templates.", reason)
            return self._done(context, self._renarrate(context, result, None, ledger, reason))

        from dataeng_agents.core.agents import submit_or_attach_many

        narrations = [self._prepare(task) for task in recorder.tasks]
        known = {n.custom_id: entry.batch_id for n in narrations if (entry := ledger.get(n.custom_id))}
        try:
            batch_ids = submit_or_attach_many(narrations, self.narrator_hook.get_client(), ledger)
        except Exception as e:  # budget, auth, platform without batches: never lose the report
            reason = f"batch submit failed: {type(e).__name__}: {e}"
            self.log.warning("%s; writing the report with the templates.", reason)
            return self._done(context, self._renarrate(context, result, None, ledger, reason))
        self._pending_batches = sorted(set(batch_ids.values()))
        self._pending_ledger = ledger
        self._pending_custom_ids = sorted(batch_ids)
        for custom_id, batch_id in sorted(batch_ids.items()):
            how = "re-attached to" if custom_id in known else "submitted in"
            self.log.info("Narration request %s %s batch %s.", custom_id, how, batch_id)
        saved = self.save_pending(result)
        if saved is not None:
            context["task_state_store"].set(PENDING_RESULT_KEY, saved)
        self._defer_on(self._pending_batches, wait)

    def _deferral_seconds(self) -> float:
        """How long the trigger may wait: ``batch_timeout``, bounded by what is left of
        ``execution_timeout`` in this execution minus ``timeout_margin``."""
        wait = float(self.batch_timeout)
        if self.execution_timeout is not None:
            elapsed = time.monotonic() - (self._execute_started or time.monotonic())
            left = self.execution_timeout.total_seconds() - elapsed - self.timeout_margin
            wait = min(wait, left)
        return wait

    def _defer_on(self, batch_ids: list[str], wait: float | None = None) -> None:
        from dataeng_agents.airflow_provider.triggers.narration import NarrationBatchTrigger

        if wait is None:
            wait = self._deferral_seconds()
        # Airflow fails a deferred task when this timeout passes; it is a backstop only: the trigger
        # ends `timeout_margin` seconds earlier with a "timeout" event and the task writes the report.
        self.deferring = True
        backstop = (
            wait + self.timeout_margin
            if self.execution_timeout is not None
            else wait + self.poll_interval + 60
        )
        self.defer(
            trigger=NarrationBatchTrigger(
                conn_id=str(self.anthropic_conn_id),
                batch_ids=batch_ids,
                poll_interval=self.poll_interval,
                end_time=time.time() + wait,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=backstop),
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
            self._cancel_batches(list(event.get("batch_ids") or []))
        client = self.narrator_hook.get_client() if reason is None else None
        store = context["task_state_store"]
        saved = store.get(PENDING_RESULT_KEY)
        if isinstance(saved, str):
            result = self.resume_pending(
                saved, ReplayNarrator(self._prepare, client, ledger, fallback_reason=reason)
            )
        else:
            result = self._compute(
                context, ReplayNarrator(self._prepare, client, ledger, fallback_reason=reason)
            )
        out = self._done(context, result)
        ledger.clear()
        store.delete(PENDING_RESULT_KEY)
        return out

    def _renarrate(
        self, context: Context, result: Any, client: Any, ledger: TaskStateLedger, reason: str | None
    ) -> Any:
        """``result`` with its prose written by the replay narrator (the templates when ``reason``)."""
        narrator = ReplayNarrator(self._prepare, client, ledger, fallback_reason=reason)
        saved = self.save_pending(result)
        if saved is not None:
            return self.resume_pending(saved, narrator)
        return self._compute(context, narrator)

    def _cancel_batches(self, batch_ids: list[str]) -> None:
        """Cancel batches that are no longer waited for (best effort: they stop billing)."""
        if not batch_ids:
            return
        try:
            client = self.narrator_hook.get_client()
        except Exception as e:
            self.log.warning("Could not build the Anthropic client to cancel %s: %s", batch_ids, e)
            return
        for batch_id in batch_ids:
            try:
                client.messages.batches.cancel(batch_id)
                self.log.warning("Requested cancellation of Message Batch %s.", batch_id)
            except Exception as e:  # an ended batch cannot be cancelled; nothing else to do
                self.log.warning("Cancelling Message Batch %s failed: %s", batch_id, e)

    def on_kill(self) -> None:
        """Cancel the batch this execution submitted (or re-attached to) when the task is killed
        before it deferred, and forget it so a retry submits a fresh one."""
        batches, self._pending_batches = self._pending_batches, []
        self._cancel_batches(batches)
        if self._pending_ledger is not None:
            for custom_id in self._pending_custom_ids:
                try:
                    self._pending_ledger.discard(custom_id)
                except Exception as e:
                    self.log.warning("Could not forget narration request %s: %s", custom_id, e)

    # -- outputs --------------------------------------------------------------------------------------
    def publish_report_link(self, context: Context, url: str) -> None:
        """Make ``url`` this task instance's "Report" link (and an XCom, readable right away)."""
        from dataeng_agents.airflow_provider.links.report import ReportLink

        self.report_url = url
        context["ti"].xcom_push(key=ReportLink().xcom_key, value=url)

    def resolve_output_dir(self, context: Context, output_path: str | None) -> ObjectStoragePath:
        """``output_path``, else ``<reports_root>/<dag_id>/<task_id>/<run_id>``.

        A mapped task instance writes to ``.../map_index=<i>`` below that folder (below
        ``output_path`` too), so the instances of ``.expand()`` never overwrite each other's report.
        """
        from airflow.sdk import ObjectStoragePath

        if output_path:
            base = output_path.rstrip("/")
        else:
            run_id = safe_path_part(str(context["run_id"]))
            base = f"{default_reports_root()}/{self.dag_id}/{self.task_id}/{run_id}"
        index = map_index_of(context)
        return ObjectStoragePath(f"{base}/map_index={index}" if index >= 0 else base)


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
