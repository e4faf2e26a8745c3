"""Plumbing shared by the operators: who narrates, deferral through Message Batches, report output.

An operator computes its result twice at most and never twice with different inputs:

* ``deferrable=False`` (or no ``anthropic`` connection): one pass with the synchronous Claude
  narrator (or the template narrator), then the report is written.
* ``deferrable=True``: a first pass with a *recording* narrator collects the narration tasks and
  writes nothing; the tasks go to the Message Batches API in one batch whose id is saved in the task
  instance's ``task_state_store`` (it survives retries); the task defers to
  :class:`~dataeng_agents.airflow_provider.triggers.narration.NarrationBatchTrigger`, which frees the
  worker slot. On resume the result is computed again (deterministic: same config, same data
  interval) with a *replay* narrator that answers each task from the batch results by its
  deterministic ``custom_id``; a task whose facts changed meanwhile gets a different ``custom_id``,
  finds no answer and falls back to the template, so prose never describes numbers it was not shown.
  A retry after a crash finds the batch id in ``task_state_store`` and re-attaches to the same batch
  instead of paying for a second one.
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
    from pathlib import Path

    from airflow.sdk import Context, ObjectStoragePath
    from dataeng_agents.airflow_provider.hooks.narrator import NarratorHook
    from dataeng_agents.core.narrative import NarrationTask, Narrator

#: task_state_store key holding the id of the batch this task instance paid for.
BATCH_ID_KEY = "dataeng_narration_batch_id"


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


class RecordingNarrator:
    """Answers every task with its template and remembers the task (first pass of a deferral)."""

    name = "recording"

    def __init__(self) -> None:
        self.tasks: list[NarrationTask[Any]] = []

    def narrate(self, task: NarrationTask[Any]) -> Any:
        self.tasks.append(task)
        return task.template()


class NarratedOperator(BaseOperator):
    """
    Base class of the operators that write prose on top of deterministic results.

    :param anthropic_conn_id: Connection of type ``anthropic`` (the official Anthropic provider's
        connection type: first-party API, Bedrock, Vertex, ...). ``None`` writes the prose with the
        deterministic templates, offline and free.
    :param model: Claude model id; ``None`` uses the connection's default model.
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
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 60.0,
        batch_timeout: float = 24 * 60 * 60,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.anthropic_conn_id = anthropic_conn_id
        self.model = model
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.batch_timeout = batch_timeout

    @cached_property
    def narrator_hook(self) -> NarratorHook:
        """Builds the narrator from ``anthropic_conn_id`` through the official Anthropic hook."""
        from dataeng_agents.airflow_provider.hooks.narrator import NarratorHook

        return NarratorHook(anthropic_conn_id=self.anthropic_conn_id, model=self.model)

    # -- what subclasses implement ----------------------------------------------------------------
    def compute(self, context: Context, narrator: Narrator) -> Any:
        """Compute the result (numbers, findings, prose) with ``narrator``; write nothing."""
        raise NotImplementedError

    def finish(self, context: Context, result: Any) -> Any:
        """Write the outputs of ``result`` and return the compact XCom value."""
        raise NotImplementedError

    # -- execution ----------------------------------------------------------------------------------
    def execute(self, context: Context) -> Any:
        if not (self.deferrable and self.narrates and self.anthropic_conn_id):
            return self.finish(context, self.compute(context, self.narrator_hook.get_conn()))

        store = context.get("task_state_store")
        batch_id = store.get(BATCH_ID_KEY) if store is not None else None
        if batch_id:
            # A retry (worker crash, OOM, ...): the batch is paid for, wait for it again.
            self.log.info("Re-attaching to narration batch %s from an earlier try.", batch_id)
            self._defer_on(str(batch_id))

        recorder = RecordingNarrator()
        self.compute(context, recorder)
        if not recorder.tasks:
            self.log.info("Nothing to narrate; writing the outputs now.")
            return self.finish(context, self.compute(context, self.narrator_hook.get_conn()))

        from dataeng_agents.core.llm.batch import submit_batch

        batch_id = submit_batch(
            self.narrator_hook.get_client(), recorder.tasks, model=self.narrator_hook.resolved_model
        )
        if store is not None:
            store.set(BATCH_ID_KEY, batch_id)
        self.log.info("Submitted %d narration request(s) as batch %s.", len(recorder.tasks), batch_id)
        self._defer_on(batch_id)

    def _defer_on(self, batch_id: str) -> None:
        from dataeng_agents.airflow_provider.triggers.narration import NarrationBatchTrigger

        self.defer(
            trigger=NarrationBatchTrigger(
                conn_id=str(self.anthropic_conn_id),
                batch_id=batch_id,
                poll_interval=self.poll_interval,
                end_time=time.time() + self.batch_timeout,
            ),
            method_name="execute_complete",
            timeout=self.execution_timeout or timedelta(seconds=self.batch_timeout + self.poll_interval + 60),
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """Resume after the trigger: answer the narration from the batch, then write the outputs."""
        from dataeng_agents.core.llm.batch import ReplayNarrator, collect_batch

        event = event or {"status": "error", "message": "the trigger sent no event"}
        batch_id = event.get("batch_id")
        if event.get("status") == "success" and batch_id:
            answers = collect_batch(self.narrator_hook.get_client(), str(batch_id))
            narrator: Narrator = ReplayNarrator(answers, model=self.narrator_hook.resolved_model)
        else:
            # The LLM is never a reason to lose the report: fall back to the templates.
            reason = f"batch {batch_id}: {event.get('status')}: {event.get('message', '')}".strip()
            self.log.warning("Narration batch did not complete (%s); using the templates.", reason)
            narrator = ReplayNarrator({}, fallback_reason=reason)
        result = self.compute(context, narrator)
        out = self.finish(context, result)
        store = context.get("task_state_store")
        if store is not None:
            store.delete(BATCH_ID_KEY)
        return out

    # -- outputs --------------------------------------------------------------------------------------
    def resolve_output_dir(self, context: Context, output_path: str | None) -> ObjectStoragePath:
        """``output_path``, else ``<reports_root>/<dag_id>/<task_id>/<run_id>``."""
        from airflow.sdk import ObjectStoragePath

        if output_path:
            return ObjectStoragePath(output_path)
        run_id = safe_path_part(str(context["run_id"]))
        return ObjectStoragePath(f"{default_reports_root()}/{self.dag_id}/{self.task_id}/{run_id}")

    def publish(self, dest: ObjectStoragePath, write: Callable[[Path], dict[str, str]]) -> dict[str, str]:
        """Write outputs with ``write(local_dir)`` (the core's atomic writer), then place them at ``dest``.

        A local destination is written in place (temp dir, then rename, by the core). Anything else
        (``s3://``, ``gs://``, ...) is written to a local temp dir first and then uploaded file by
        file through ``ObjectStoragePath``, the JSON last so its presence means the set is complete.
        """
        import tempfile
        from pathlib import Path

        if dest.protocol in ("file", "local", ""):
            written = write(Path(dest.path))
            return {fmt: f"file://{Path(p).resolve()}" for fmt, p in written.items()}
        with tempfile.TemporaryDirectory(prefix="dataeng-report-") as tmp:
            written = write(Path(tmp) / "out")
            out: dict[str, str] = {}
            for fmt in sorted(written, key=lambda f: f == "json"):
                local = Path(written[fmt])
                target = dest / local.name
                target.write_bytes(local.read_bytes())
                out[fmt] = str(target)
            return out
