"""Operators for the data-driven-feature workflow: analyse a running experiment, design the next one."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from airflow.sdk import Asset
from airflow.sdk.exceptions import AirflowFailException
from dataeng_agents.airflow_provider.links.report import ReportLink
from dataeng_agents.airflow_provider.operators._narrated import (
    NarratedOperator,
    default_reports_root,
    write_outputs,
)

if TYPE_CHECKING:
    from airflow.sdk import Context
    from dataeng_agents.airflow_provider.hooks.warehouse import ExperimentWarehouseHook
    from dataeng_agents.core.narrative import Narrator

Policy = Literal["fail", "warn"]
REPORT_FORMATS = ("json", "md", "html")


class ExperimentPolicyError(AirflowFailException):
    """The analysis found a sample-ratio mismatch or a guardrail regression and the policy is ``fail``.

    Raised *after* the report is written, so the analyst can read why the task failed. An
    ``AirflowFailException``: the same data gives the same verdict, so a retry cannot help.
    """


def _as_json_value(value: Any) -> Any:
    """XCom-safe copy of a summary (datetimes and other scalars become strings)."""
    import json

    return json.loads(json.dumps(value, default=str))


class _ExperimentOperator(NarratedOperator):
    """Shared arguments of the experiment operators (config, warehouse)."""

    def __init__(
        self,
        *,
        config: str | dict[str, Any],
        conn_id: str | None = None,
        duckdb_path: str | None = None,
        dialect: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.config = config
        self.conn_id = conn_id
        self.duckdb_path = duckdb_path
        self.dialect = dialect

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
        DAG and task ids.
    :param anthropic_conn_id: See :class:`~dataeng_agents.airflow_provider.operators._narrated.NarratedOperator`.
    :param deferrable: Narrate through the Message Batches API while deferred (see the base class).
    """

    template_fields: Sequence[str] = ("config", "duckdb_path", "output_path", "conn_id")
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
        super().__init__(config=config, conn_id=conn_id, duckdb_path=duckdb_path, dialect=dialect, **kwargs)
        for name, value in (("srm_policy", srm_policy), ("guardrail_policy", guardrail_policy)):
            if value not in ("fail", "warn"):
                raise ValueError(f"{name} must be 'fail' or 'warn', got {value!r}")
        unknown = set(formats) - set(REPORT_FORMATS)
        if unknown:
            raise ValueError(f"formats: unknown format(s) {sorted(unknown)}; choose from {REPORT_FORMATS}")
        self.output_path = output_path
        self.formats = tuple(formats)
        from dataeng_agents.core.experiment.window import ANALYSIS_WINDOWS

        if window not in ANALYSIS_WINDOWS:
            raise ValueError(f"window must be one of {ANALYSIS_WINDOWS}, got {window!r}")
        self.window = window
        self.srm_policy = srm_policy
        self.guardrail_policy = guardrail_policy
        self.report_asset = report_asset or Asset(
            name=f"dataeng_report__{self.dag_id}__{self.task_id}",
            uri=f"{default_reports_root()}/{self.dag_id}/{self.task_id}",
            group="dataeng_reports",
        )
        self.add_outlets([self.report_asset])

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

    def finish(self, context: Context, result: Any) -> dict[str, Any]:
        from dataeng_agents.core.report import write_report

        dest = self.resolve_output_dir(context, self.output_path)
        paths = write_outputs(partial(write_report, result, formats=self.formats), dest)
        summary = _as_json_value(result.summary())
        summary["report"] = paths
        self.log.info("Report written: %s", ", ".join(paths.values()))

        ti = context["ti"]
        if "html" in paths:
            ti.xcom_push(key=ReportLink().xcom_key, value=paths["html"])
        ti.xcom_push(key="summary", value=summary)  # also readable when a policy fails the task below
        context["outlet_events"][self.report_asset].extra = {
            "experiment_id": summary.get("experiment_id"),
            "verdict": summary.get("verdict"),
            "variant": summary.get("variant"),
            "report": paths,
            "run_id": str(context["run_id"]),
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

    template_fields: Sequence[str] = ("config", "duckdb_path", "output_path", "conn_id")
    template_fields_renderers: ClassVar[dict[str, str]] = {"config": "json"}
    ui_color = "#eef7ee"
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
        **kwargs: Any,
    ) -> None:
        super().__init__(config=config, conn_id=conn_id, duckdb_path=duckdb_path, dialect=dialect, **kwargs)
        self.output_path = output_path
        self.formats = tuple(formats)

    def compute(self, context: Context, narrator: Narrator) -> Any:
        from dataeng_agents.core.experiment import design_experiment

        return design_experiment(self.load_config(), self.hook.get_conn(), narrator=narrator)

    def finish(self, context: Context, result: Any) -> dict[str, Any]:
        from dataeng_agents.core.report import write_report

        dest = self.resolve_output_dir(context, self.output_path)
        paths = write_outputs(partial(write_report, result, formats=self.formats), dest)
        summary = _as_json_value(result.summary())
        summary["report"] = paths
        if "html" in paths:
            context["ti"].xcom_push(key=ReportLink().xcom_key, value=paths["html"])
        return summary
