"""Operator that turns a request in a sentence (or a spec file) into a pipeline design and project."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk.exceptions import AirflowFailException
from dataeng_agents.airflow_provider.links.report import ReportLink
from dataeng_agents.airflow_provider.operators._narrated import (
    NarratedOperator,
    NarrationFailed,
    write_outputs,
)

if TYPE_CHECKING:
    from airflow.sdk import Context
    from dataeng_agents.core.commands.data_pipeline import DesignRun

#: the facade's fields a bad-input error names as they are; any other error is about ``request``
_OWN_FIELDS = ("request", "spec_out", "scaffold_dir", "max_usd")


class PipelineDesignOperator(NarratedOperator):
    """
    Design a data pipeline from a request in a sentence, or from a spec file.

    The same path as ``dataeng pipeline design``: a sentence such as ``"Design a real-time streaming
    pipeline from Kafka to BigQuery"`` is drafted into a pipeline spec (Claude through the
    ``anthropic`` connection, with one repair turn; without a connection, or when Claude fails, the
    offline extractor), the deterministic designer scores the architectures, picks the components
    and estimates the monthly cost, and the runnable project (Airflow DAG, Prefect flow, dbt,
    checks) is written to ``scaffold_dir`` when given. A spec file is designed as it is.

    The run's folder (``output_path``, else ``<[dataeng] reports_root>/<dag_id>/<task_id>/<run_id>``,
    with ``map_index=<i>`` below it for a mapped task) gets ``design.json`` (what ``dataeng pipeline
    design -f json`` prints), ``design.md`` and ``spec.yaml`` (the drafted spec with its assumptions
    and open questions as comments). The XCom value is a compact summary: architecture, warehouse,
    monthly cost, spec path, who drafted the spec (and why Claude was not used), the number of
    assumptions and the open questions.

    .. code-block:: python

        PipelineDesignOperator(
            task_id="design",
            request="Design a real-time streaming pipeline from Kafka to BigQuery",
            scaffold_dir="/projects/{{ ds_nodash }}/{name}",
            anthropic_conn_id="anthropic_default",
        )

    A bad argument fails the task (no retry) before anything is written, with a message naming
    it: an empty ``request``, a spec file that does not exist or is invalid, a drafted spec already
    at ``spec_out`` or scaffold files that differ (without ``force``), a negative ``max_usd``, a
    connection that is not of type ``anthropic``. Drafting is one interactive tool call, so
    ``deferrable`` has no effect here.

    :param request: The request in a sentence, or the path of a spec file (YAML or JSON); templated.
    :param spec_out: Where the drafted spec is also written for the user to edit (a local path,
        templated; ``{name}`` is replaced by the spec's name). ``None``: only the run's ``spec.yaml``.
        Refuses to overwrite an existing file unless ``force``; unused for a spec file.
    :param scaffold_dir: Write the runnable project to this local folder (templated; ``{name}`` is
        replaced by the spec's name). ``None``: no project.
    :param output_path: Folder for ``design.json``/``design.md``/``spec.yaml`` (``ObjectStoragePath``
        URL, templated); ``None`` writes under ``[dataeng] reports_root``.
    :param force: Overwrite an existing ``spec_out`` and scaffold files that differ.
    :param persona: The persona whose prompt drafts the spec.
    :param anthropic_conn_id: Connection of type ``anthropic`` that drafts the spec (templated, like
        ``model``); ``None`` drafts with the offline extractor.
    :param model: Claude model id; ``None`` uses the connection's ``extra["model"]``, else the persona's.
    :param max_usd: The most the drafting call may spend (checked before the request is sent).
    :param fail_on_llm_error: Fail the task (after writing the outputs, so retries apply) when a
        connection is set but the offline extractor drafted the spec.
    """

    narrates: ClassVar[bool] = False
    template_fields: Sequence[str] = (
        "request",
        "spec_out",
        "scaffold_dir",
        "output_path",
        "anthropic_conn_id",
        "model",
    )
    ui_color = "#e9f6ee"
    operator_extra_links = (ReportLink(),)

    def __init__(
        self,
        *,
        request: str,
        spec_out: str | None = None,
        scaffold_dir: str | None = None,
        output_path: str | None = None,
        force: bool = False,
        persona: str = "data-engineer",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.request = request
        self.spec_out = spec_out
        self.scaffold_dir = scaffold_dir
        self.output_path = output_path
        self.force = force
        self.persona = persona

    def validate(self, context: Context) -> None:
        if not isinstance(self.request, str) or not self.request.strip():
            raise AirflowFailException(
                f"request: give a request sentence or the path of a spec file, got {self.request!r}"
            )
        from dataeng_agents.core.agents.persona import load_persona

        try:
            load_persona(self.persona)
        except Exception as e:  # the core's ConfigError names the known personas
            raise AirflowFailException(f"persona: {e}") from e
        if self.anthropic_conn_id:  # drafting calls Claude although this operator narrates nothing
            self._check_anthropic_connection()

    def design(self) -> DesignRun:
        """Run the core facade :func:`~dataeng_agents.core.commands.data_pipeline.design_request`."""
        from dataeng_agents.core.commands.data_pipeline import design_request
        from dataeng_agents.core.design.draft import is_sentence
        from dataeng_agents.core.errors import InputError

        drafting = bool(self.anthropic_conn_id) and is_sentence(self.request)
        try:
            return design_request(
                self.request,
                client=self.narrator_hook.get_client() if drafting else None,
                model=self.narrator_hook.resolved_model if drafting else None,
                persona=self.persona,
                spec_out=self.spec_out or None,
                scaffold_dir=self.scaffold_dir or None,
                force=self.force,
                max_usd=self.max_usd,
            )
        except InputError as e:
            if e.field in _OWN_FIELDS:
                raise AirflowFailException(str(e)) from e
            # a spec error names the spec file, or a field inside the spec: both are the request's
            where = str(e) if e.field == self.request else f"{self.request}: {e}"
            raise AirflowFailException(f"request: {where}") from e

    def execute(self, context: Context) -> dict[str, Any]:
        self.validate(context)
        run = self.design()
        return self._done(context, run)

    def provenances(self, result: DesignRun) -> list[Any]:
        return []

    def _done(self, context: Context, result: DesignRun) -> dict[str, Any]:
        out = self.finish(context, result)
        reason = result.draft.fallback_reason if result.draft is not None else None
        if self.fail_on_llm_error and self.anthropic_conn_id and reason:
            raise NarrationFailed(f"the offline extractor drafted the spec because Claude failed: {reason}")
        return out

    def finish(self, context: Context, result: DesignRun) -> dict[str, Any]:
        from dataeng_agents.core.commands.data_pipeline import write_design

        dest = self.resolve_output_dir(context, self.output_path)
        paths = write_outputs(partial(write_design, result), dest)
        summary = result.summary()
        if summary["spec_path"] is None:  # the drafted spec lives in the run's folder only
            summary["spec_path"] = paths["spec"]
        summary["report"] = paths
        self.publish_report_link(context, paths["md"])
        if result.draft is not None:
            how = "Claude" if result.draft.drafted_by == "claude" else "the offline extractor"
            self.log.info("Spec %r drafted by %s from: %s", result.spec.name, how, result.request)
            if result.draft.fallback_reason:
                self.log.warning("Claude did not draft the spec: %s", result.draft.fallback_reason)
        self.log.info(
            "Design of %s: %s on %s (schedule %s), about $%s/month. Written to %s",
            summary["spec"],
            result.design.recommendation_label,
            summary["warehouse"],
            summary["schedule"],
            f"{summary['monthly_cost_usd']:,.2f}",
            ", ".join(paths.values()),
        )
        if result.scaffold_dir is not None:
            self.log.info("Project: %d files in %s", len(result.scaffold_files), result.scaffold_dir)
        return summary
