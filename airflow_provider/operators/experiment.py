"""Operators for the data-driven-feature workflow: analyse a running experiment, design the next one."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any, ClassVar, Literal, cast

from airflow.sdk import Asset
from airflow.sdk.exceptions import AirflowFailException
from dataeng_agents.airflow_provider.links.report import ReportLink
from dataeng_agents.airflow_provider.operators._narrated import (
    NarratedOperator,
    decode_pending,
    default_reports_root,
    map_index_of,
    narration_summary,
    write_outputs,
)

if TYPE_CHECKING:
    from airflow.sdk import Context
    from dataeng_agents.airflow_provider.hooks.warehouse import ExperimentWarehouseHook
    from dataeng_agents.core.narrative import NarrationTask, Narrator

Policy = Literal["fail", "warn"]
REPORT_FORMATS = ("json", "md", "html")


class ExperimentPolicyError(AirflowFailException):
    """The analysis found a sample-ratio mismatch or a guardrail regression and the policy is ``fail``.

    Raised *after* the report is written, so the analyst can read why the task failed. An
    ``AirflowFailException``: the same data gives the same verdict, so a retry cannot help.
    """


def report_asset_for(dag_id: str | None, task_id: str, output_path: str | None = None) -> Asset:
    """The ``Asset`` an analysis task publishes its report as (when ``report_asset`` is not given).

    Its URI is where the reports are written: ``output_path`` (up to its first Jinja expression,
    when templated), else ``<[dataeng] reports_root>/<dag_id>/<task_id>``. A bare local path
    becomes a ``file://`` URI.
    """
    import os

    uri = f"{default_reports_root()}/{dag_id}/{task_id}"
    if output_path:
        static = output_path.split("{{", 1)[0]
        if "{{" in output_path:
            static = static.rsplit("/", 1)[0]
        static = static.rstrip("/")
        if static:
            uri = static if "://" in static else f"file://{os.path.abspath(static)}"
    return Asset(name=f"dataeng_report__{dag_id}__{task_id}", uri=uri, group="dataeng_reports")


def _as_json_value(value: Any) -> Any:
    """XCom-safe copy of a summary (datetimes and other scalars become strings)."""
    import json

    return json.loads(json.dumps(value, default=str))


class _ExperimentOperator(NarratedOperator):
    """Shared arguments of the experiment operators (config, warehouse, report folder and formats) and
    what they do alike: narrate a core report (deferred or not) and write it with its summary."""

    def __init__(
        self,
        *,
        config: str | dict[str, Any],
        conn_id: str | None = None,
        duckdb_path: str | None = None,
        dialect: str | None = None,
        output_path: str | None = None,
        formats: Sequence[str] = REPORT_FORMATS,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.config = config
        self.conn_id = conn_id
        self.duckdb_path = duckdb_path
        self.dialect = dialect
        self.output_path = output_path
        self.formats = tuple(formats)

    @cached_property
    def hook(self) -> ExperimentWarehouseHook:
        """The warehouse: ``conn_id`` (any common-sql DbApiHook), else ``duckdb_path``, else the config's URL."""
        from dataeng_agents.airflow_provider.hooks.warehouse import ExperimentWarehouseHook

        return ExperimentWarehouseHook(
            conn_id=self.conn_id, duckdb_path=self.duckdb_path, dialect=self.dialect
        )

    def load_config(self) -> Any:
        """The experiment config (path, YAML text or dict), read by the core's one loader.

        A config with lifecycle sections (``exploration:``, ``tracking:``, ``rollout:`` or a
        structured ``hypothesis:``) is accepted, so one YAML serves both. A bad config fails the
        task without retries (the error names the field).
        """
        from dataeng_agents.core.errors import ConfigError
        from dataeng_agents.core.experiment import load_experiment_config

        try:
            return load_experiment_config(self.config)
        except ConfigError as e:
            raise AirflowFailException(f"experiment config: {e}") from e

    def pending_report(self) -> tuple[type[Any], Callable[[Any], NarrationTask[Any]]]:
        """The core report type this operator computes and its narration task (for a resumed deferral)."""
        raise NotImplementedError

    def provenances(self, result: Any) -> list[Any]:
        return [result.narrative.provenance] if result.narrative is not None else []

    def save_pending(self, result: Any) -> str | None:
        from dataeng_agents.airflow_provider.operators._narrated import encode_pending

        return encode_pending(result)

    def resume_pending(self, saved: str, narrator: Narrator) -> Any:
        report_type, narration_task = self.pending_report()
        report = decode_pending(report_type, saved)
        report.narrative = narrator.narrate(narration_task(report))
        return report

    def write_report_files(self, context: Context, result: Any) -> dict[str, Any]:
        """Write the report under ``output_path`` (or the run's default folder); its JSON-able summary
        with the written files (``report``) and who wrote the prose (``narration``)."""
        from dataeng_agents.core.report import write_report

        dest = self.resolve_output_dir(context, self.output_path)
        paths = write_outputs(partial(write_report, result, formats=self.formats), dest)
        summary: dict[str, Any] = _as_json_value(result.summary())
        summary["report"] = paths
        summary["narration"] = narration_summary(self.provenances(result))
        return summary


class ExperimentAnalysisOperator(_ExperimentOperator):
    """
    Analyse an A/B experiment on the warehouse for the run's data interval and publish the report.

    Every number (effects, confidence/credible intervals, sequential p-values, SRM, guardrails, the
    decision) comes from the deterministic statistics core; Claude only writes the prose, and only
    when ``anthropic_conn_id`` is set. The report (JSON, Markdown, HTML) is written through
    ``ObjectStoragePath`` under ``output_path`` (any fsspec URL; a local folder by default), a compact,
    secret-free summary is returned to XCom, the HTML report is linked from the task ("Report") and
    the report is declared as an ``Asset`` outlet so downstream DAGs can be scheduled on it.

    .. code-block:: python

        ExperimentAnalysisOperator(
            task_id="analyse",
            config="/opt/airflow/experiments/checkout.yaml",
            conn_id="warehouse_postgres",
            anthropic_conn_id="anthropic_default",
        )

    :param config: Experiment config: a path to a YAML/JSON file, a YAML string or a dict (templated).
    :param conn_id: Any Airflow connection with a common-sql ``DbApiHook`` (``postgres``,
        ``snowflake``, ...). ``None`` uses ``duckdb_path``, else the config's ``warehouse`` URL.
    :param duckdb_path: DuckDB file to read when ``conn_id`` is ``None`` (templated).
    :param dialect: sqlglot dialect of the warehouse; inferred from the connection type when ``None``.
    :param output_path: Folder for the report, any ``ObjectStoragePath`` URL (``s3://...``,
        ``file:///...``); templated. ``None`` writes to
        ``<[dataeng] reports_root>/<dag_id>/<task_id>/<run_id>`` (default root
        ``file://$AIRFLOW_HOME/dataeng_reports``).
    :param formats: Report formats to write (``json``, ``md``, ``html``).
    :param window: ``cumulative`` (default): every exposure from the experiment's start up to the
        end of the run's data interval, the daily-report view (the analysis is sequential by default,
        so looking every day does not inflate false positives); ``data_interval``: only exposures
        inside the run's data interval; ``all``: the config's whole period, ignoring the run.
    :param srm_policy: ``fail`` the task (after writing the report) or only ``warn`` when the
        sample-ratio-mismatch check fails.
    :param guardrail_policy: ``fail`` or ``warn`` when a guardrail metric regressed.
    :param report_asset: The ``Asset`` the report is published as; ``None`` derives one from the
        DAG and task ids whose URI is ``output_path`` (or the default report folder). Every task
        instance, each mapped instance of ``.partial(...).expand(config=[...])`` included, emits
        its own asset event (``extra``: experiment id, verdict, report files, map index).
    :param anthropic_conn_id: See :class:`~dataeng_agents.airflow_provider.operators._narrated.NarratedOperator`
        (templated, like ``model``).
    :param deferrable: Narrate through the Message Batches API while deferred (see the base class);
        the warehouse is queried once, the computed report waits in ``task_state_store``.

    Mapped over many experiments (``ExperimentAnalysisOperator.partial(task_id=...,
    conn_id=...).expand(config=[...])``), each instance writes to ``.../map_index=<i>`` and gets its
    own XCom summary, "Report" link and asset event.
    """

    template_fields: Sequence[str] = (
        "config",
        "duckdb_path",
        "output_path",
        "conn_id",
        "anthropic_conn_id",
        "model",
    )
    template_ext: Sequence[str] = ()
    template_fields_renderers: ClassVar[dict[str, str]] = {"config": "json"}
    ui_color = "#e8f4fd"
    operator_extra_links = (ReportLink(),)

    def __init__(
        self,
        *,
        config: str | dict[str, Any],
        conn_id: str | None = None,
        duckdb_path: str | None = None,
        dialect: str | None = None,
        output_path: str | None = None,
        formats: Sequence[str] = REPORT_FORMATS,
        window: Literal["cumulative", "data_interval", "all"] = "cumulative",
        srm_policy: Policy = "fail",
        guardrail_policy: Policy = "warn",
        report_asset: Asset | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            config=config,
            conn_id=conn_id,
            duckdb_path=duckdb_path,
            dialect=dialect,
            output_path=output_path,
            formats=formats,
            **kwargs,
        )
        for name, value in (("srm_policy", srm_policy), ("guardrail_policy", guardrail_policy)):
            if value not in ("fail", "warn"):
                raise ValueError(f"{name} must be 'fail' or 'warn', got {value!r}")
        unknown = set(formats) - set(REPORT_FORMATS)
        if unknown:
            raise ValueError(f"formats: unknown format(s) {sorted(unknown)}; choose from {REPORT_FORMATS}")
        from dataeng_agents.core.experiment.window import ANALYSIS_WINDOWS

        if window not in ANALYSIS_WINDOWS:
            raise ValueError(f"window must be one of {ANALYSIS_WINDOWS}, got {window!r}")
        self.window = window
        self.srm_policy = srm_policy
        self.guardrail_policy = guardrail_policy
        self.report_asset = report_asset or report_asset_for(self.dag_id, self.task_id, output_path)
        if self.report_asset not in self.outlets:
            self.add_outlets([self.report_asset])

    @classmethod
    def partial(cls, **kwargs: Any) -> Any:  # type: ignore[override]
        """``BaseOperator.partial`` with the report ``Asset`` declared as an outlet.

        A mapped task is serialized from its partial arguments (its ``__init__`` runs only on the
        worker), so the outlet must be one of them or the scheduler never registers the asset and
        the mapped instances' asset events are dropped.
        """
        from airflow.sdk.bases.operator import partial as base_partial
        from airflow.sdk.definitions._internal.contextmanager import DagContext, TaskGroupContext

        if not kwargs.get("outlets"):
            dag = kwargs.get("dag") or DagContext.get_current()
            task_id = str(kwargs["task_id"])
            group = kwargs.get("task_group") or (TaskGroupContext.get_current(dag) if dag else None)
            full_task_id = group.child_id(task_id) if group else task_id
            output_path = kwargs.get("output_path")
            asset = kwargs.get("report_asset") or report_asset_for(
                dag.dag_id if dag else None,
                full_task_id,
                output_path if isinstance(output_path, str) else None,
            )
            kwargs["outlets"] = [asset]
        return base_partial(cls, **kwargs)

    def data_interval(self, context: Context, config: Any) -> tuple[Any, Any] | None:
        """The ``(start, end)`` the core reads, from ``window`` and the run's data interval
        (:func:`dataeng_agents.core.experiment.analysis_interval`)."""
        from dataeng_agents.core.experiment import analysis_interval

        return analysis_interval(
            config, self.window, context.get("data_interval_start"), context.get("data_interval_end")
        )

    def compute(self, context: Context, narrator: Narrator) -> Any:
        from dataeng_agents.core.experiment import analyze_experiment

        config = self.load_config()
        return analyze_experiment(
            config, self.hook.get_conn(), data_interval=self.data_interval(context, config), narrator=narrator
        )

    def pending_report(self) -> tuple[type[Any], Callable[[Any], NarrationTask[Any]]]:
        from dataeng_agents.core.experiment import experiment_narration_task
        from dataeng_agents.core.report.model import ExperimentReport

        return ExperimentReport, experiment_narration_task

    def finish(self, context: Context, result: Any) -> dict[str, Any]:
        summary = self.write_report_files(context, result)
        paths: dict[str, str] = summary["report"]
        self.log.info("Report written: %s", ", ".join(paths.values()))
        if summary["narration"]["fell_back"]:
            self.log.warning(
                "The template wrote the prose: %s", "; ".join(summary["narration"]["fallback_reasons"])
            )

        ti = context["ti"]
        if "html" in paths:
            self.publish_report_link(context, paths["html"])
        ti.xcom_push(key="summary", value=summary)  # also readable when a policy fails the task below
        context["outlet_events"][self.report_asset].extra = {
            "experiment_id": summary.get("experiment_id"),
            "verdict": summary.get("verdict"),
            "variant": summary.get("variant"),
            "report": cast("dict[str, Any]", paths),
            "run_id": str(context["run_id"]),
            "map_index": map_index_of(context),
        }
        self._apply_policies(result)
        return summary

    def _apply_policies(self, report: Any) -> None:
        """Fail or warn on SRM / guardrail problems; called after the report is safely written."""
        problems: list[tuple[Policy, str]] = []
        for message in report.policy_problems("srm"):
            problems.append((self.srm_policy, message))
        for message in report.policy_problems("guardrail"):
            problems.append((self.guardrail_policy, message))
        for policy, message in problems:
            self.log.warning("%s (policy: %s)", message, policy)
        failing = [message for policy, message in problems if policy == "fail"]
        if failing:
            raise ExperimentPolicyError("; ".join(failing))


class ExperimentDesignOperator(_ExperimentOperator):
    """
    Size an experiment from warehouse baselines: sample size per variant, duration, MDE.

    Baseline means and variances are measured on the config's ``design`` period (or population)
    through the same warehouse connection the analysis will use; the power calculation is the core's.
    Returns the compact design summary to XCom and writes the design report next to the analysis
    reports.

    :param config: Experiment config: a path, a YAML string or a dict (templated).
    :param conn_id: Any Airflow connection with a common-sql ``DbApiHook``; ``None`` uses
        ``duckdb_path``, else the config's ``warehouse`` URL.
    :param duckdb_path: DuckDB file to read when ``conn_id`` is ``None`` (templated).
    :param dialect: sqlglot dialect of the warehouse; inferred when ``None``.
    :param output_path: Folder for the design report (``ObjectStoragePath`` URL, templated).
    :param formats: Report formats to write (``json``, ``md``, ``html``).
    """

    template_fields: Sequence[str] = (
        "config",
        "duckdb_path",
        "output_path",
        "conn_id",
        "anthropic_conn_id",
        "model",
    )
    template_fields_renderers: ClassVar[dict[str, str]] = {"config": "json"}
    ui_color = "#eef7ee"
    operator_extra_links = (ReportLink(),)

    def compute(self, context: Context, narrator: Narrator) -> Any:
        from dataeng_agents.core.experiment import design_experiment

        return design_experiment(self.load_config(), self.hook.get_conn(), narrator=narrator)

    def pending_report(self) -> tuple[type[Any], Callable[[Any], NarrationTask[Any]]]:
        from dataeng_agents.core.experiment import design_narration_task
        from dataeng_agents.core.report.model import ExperimentDesignReport

        return ExperimentDesignReport, design_narration_task

    def finish(self, context: Context, result: Any) -> dict[str, Any]:
        summary = self.write_report_files(context, result)
        if "html" in summary["report"]:
            self.publish_report_link(context, summary["report"]["html"])
        return summary
