"""Operator that asks a data-engineering persona a question about upstream results."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk.exceptions import AirflowFailException
from dataeng_agents.airflow_provider.operators._narrated import NarratedOperator, narration_summary

if TYPE_CHECKING:
    import os

    from airflow.sdk import Context
    from dataeng_agents.core.narrative import Narrator


class DataengAgentOperator(NarratedOperator):
    """
    Ask a persona (``data-engineer``, ``backend-architect``) a question, with upstream XComs as context.

    The context is the ``return_value`` XCom of each task in ``context_task_ids`` (typically the
    compact summaries of :class:`ExperimentAnalysisOperator` or :class:`PipelineReviewOperator`),
    keyed by task id, plus ``context`` given directly; each source reaches the persona as one
    context document (``context:<task_id>.json``), redacted and size-capped by the core. The
    answer's text, its points (with the ids of the context they are about) and its provenance
    (template or Claude, model, token usage) are returned to XCom, with ``narration`` saying whether
    the template stood in for Claude. Without ``anthropic_conn_id`` the answer is the deterministic
    template (which says that no answer was generated); with it, an answer that fails the core's
    grounding checks falls back to the template too (``fail_on_llm_error=True`` fails the task then).

    Before anything is asked, the task fails on an unknown ``persona``, an ``anthropic_conn_id``
    whose connection is not of type ``anthropic``, and a ``context_task_ids`` entry that is not a
    task of the DAG (deferred or not). Named ``DataengAgentOperator`` so it does not collide with the
    common-ai provider's ``AgentOperator``; ``AgentOperator`` stays as a deprecated alias.

    :param question: The question (templated).
    :param persona: Persona name (``data-engineer``, ``backend-architect``).
    :param context_task_ids: Upstream task ids whose XComs become the context.
    :param context_xcom_key: The XCom key pulled from each of them (``return_value``; the dataeng
        operators also push their summary as ``summary`` before failing a task on a policy).
    :param context: Extra JSON-able context (templated).
    :param anthropic_conn_id: Connection of type ``anthropic`` (templated, like ``model``).
    :param deferrable: Ask through the Message Batches API while deferred.
    """

    template_fields: Sequence[str] = ("question", "context", "persona", "anthropic_conn_id", "model")
    template_fields_renderers: ClassVar[dict[str, str]] = {"context": "json"}
    ui_color = "#f3ecfb"

    def __init__(
        self,
        *,
        question: str,
        persona: str = "data-engineer",
        context_task_ids: Sequence[str] = (),
        context_xcom_key: str = "return_value",
        context: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.question = question
        self.persona = persona
        self.context_task_ids = list(context_task_ids)
        self.context_xcom_key = context_xcom_key
        self.context = context

    def validate(self, context: Context) -> None:
        from dataeng_agents.core.agents.persona import load_persona

        try:
            load_persona(self.persona)
        except Exception as e:  # the core's ConfigError names the known personas
            raise AirflowFailException(f"persona: {e}") from e
        dag = self.get_dag()
        if dag is not None:
            unknown = [t for t in self.context_task_ids if not dag.has_task(t)]
            if unknown:
                raise AirflowFailException(
                    f"context_task_ids: no task {', '.join(map(repr, unknown))} in DAG {dag.dag_id!r}"
                )
        super().validate(context)

    def gather_context(self, context: Context) -> dict[str, Any]:
        """``context`` plus the ``context_xcom_key`` XCom of each task in ``context_task_ids``."""
        facts: dict[str, Any] = dict(self.context or {})
        ti = context["ti"]
        for task_id in self.context_task_ids:
            facts[task_id] = ti.xcom_pull(task_ids=task_id, key=self.context_xcom_key)
        return facts

    def context_files(self, context: Context) -> list[str]:
        """The context as one JSON file per source, the form the core's ``question_task`` reads.

        The core writes them redacted, ``0600`` in a ``0700`` folder. The folder is a function of the
        task instance only, so the files (and so the request's ``custom_id``) are the same when the
        task resumes from deferral or is retried.
        """
        import tempfile
        from pathlib import Path

        from dataeng_agents.airflow_provider.operators._narrated import safe_path_part
        from dataeng_agents.core.agents import write_context_files

        folder = Path(
            tempfile.gettempdir(),
            "dataeng-agent-context",
            safe_path_part(f"{self.dag_id}.{self.task_id}.{context['run_id']}.{context['ti'].map_index}"),
        )
        gathered = self.gather_context(context)
        return write_context_files(
            folder, {safe_path_part(name): gathered[name] for name in sorted(gathered)}
        )

    def compute(self, context: Context, narrator: Narrator) -> Any:
        from dataeng_agents.core.agents import question_task

        files: list[str | os.PathLike[str]] = [*self.context_files(context)]
        return narrator.narrate(question_task(self.persona, self.question, files))

    def provenances(self, result: Any) -> list[Any]:
        return [result.provenance]

    def finish(self, context: Context, result: Any) -> dict[str, Any]:
        answer: dict[str, Any] = result.model_dump(mode="json")
        answer["narration"] = narration_summary(self.provenances(result))
        self.log.info(
            "%s answered (%s): %s", self.persona, answer["provenance"]["narrator"], answer["answer"]
        )
        return answer


class AgentOperator(DataengAgentOperator):
    """Deprecated alias of :class:`DataengAgentOperator` (the common-ai provider has an ``AgentOperator``)."""

    def __init__(self, **kwargs: Any) -> None:
        warnings.warn(
            "dataeng_agents AgentOperator is deprecated: use DataengAgentOperator "
            "(the name no longer collides with the common-ai provider's AgentOperator).",
            DeprecationWarning,
            stacklevel=2,
        )
        super().__init__(**kwargs)
