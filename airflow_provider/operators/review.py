"""Operator that reviews Airflow DAGs, Prefect flows or pipeline specs with the project's rules."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from dataeng_agents.airflow_provider.links.report import ReportLink
from dataeng_agents.airflow_provider.operators._narrated import NarratedOperator

if TYPE_CHECKING:
    from pathlib import Path

    from airflow.sdk import Context
    from dataeng_agents.core.narrative import Narrator

FailOn = Literal["error", "warn", "never"]
REVIEW_FORMATS = ("json", "md", "sarif")


class PipelineReviewFailed(Exception):
    """The review found findings at or above ``fail_on``; raised after the review is written."""


class PipelineReviewOperator(NarratedOperator):
    """
    Review DAG files, a DAG folder, Prefect flows or a pipeline spec and fail by severity.

    The findings come from the deterministic review rules (each with a stable id, rule, severity,
    file and line); with ``anthropic_conn_id`` set, a persona prioritises them and explains the
    fixes, but can neither add nor drop a finding. The review is written as JSON, Markdown and SARIF
    (for code-scanning UIs) under ``output_path``; the XCom value is the compact summary (counts per
    severity and rule). The task fails *after* writing the review when a finding reaches ``fail_on``.

    .. code-block:: python

        PipelineReviewOperator(task_id="review_dags", profile="strict", fail_on="error")

    :param paths: Files or folders to review (templated). ``None`` reviews this deployment's DAG
        folder (``[core] dags_folder``).
    :param profile: Rule profile: ``default``, ``strict`` or a profile defined in ``config``.
    :param fail_on: Fail the task when a finding is at least this severe (``error``, ``warn``), or
        ``never``.
    :param airflow_version: Airflow version the rules check against; ``None`` uses the running one.
    :param runtime: Also import the DAG files to decide what static analysis cannot (slower, runs
        DAG code).
    :param config: Review configuration (path or dict: rule severities, suppressions), templated.
    :param output_path: Folder for the review (``ObjectStoragePath`` URL, templated); ``None`` writes
        under ``[dataeng] reports_root``.
    :param formats: Review formats to write (``json``, ``md``, ``sarif``).
    :param anthropic_conn_id: Connection of type ``anthropic`` for the persona's advice; ``None``
        writes the advice from templates.
    """

    template_fields: Sequence[str] = ("paths", "output_path", "config")
    ui_color = "#fdf3e8"
    operator_extra_links = (ReportLink(),)

    def __init__(
        self,
        *,
        paths: Sequence[str] | str | None = None,
        profile: str = "default",
        fail_on: FailOn = "error",
        airflow_version: str | None = None,
        runtime: bool = False,
        config: str | dict[str, Any] | None = None,
        output_path: str | None = None,
        formats: Sequence[str] = REVIEW_FORMATS,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if fail_on not in ("error", "warn", "never"):
            raise ValueError(f"fail_on must be 'error', 'warn' or 'never', got {fail_on!r}")
        unknown = set(formats) - set(REVIEW_FORMATS)
        if unknown:
            raise ValueError(f"formats: unknown format(s) {sorted(unknown)}; choose from {REVIEW_FORMATS}")
        self.paths = paths
        self.profile = profile
        self.fail_on = fail_on
        self.airflow_version = airflow_version
        self.runtime = runtime
        self.config = config
        self.output_path = output_path
        self.formats = tuple(formats)

    def _review_paths(self) -> list[str]:
        from airflow.sdk import conf

        if self.paths is None:
            return [conf.get("core", "dags_folder")]
        return [self.paths] if isinstance(self.paths, str) else list(self.paths)

    def _airflow_version(self) -> str:
        if self.airflow_version:
            return self.airflow_version
        from airflow import __version__

        major, minor, *_ = __version__.split(".")
        return f"{major}.{minor}"

    def compute(self, context: Context, narrator: Narrator) -> Any:
        from dataeng_agents.core.commands.data_pipeline import review_with_advice

        return review_with_advice(
            self._review_paths(),
            profile=self.profile,
            airflow_version=self._airflow_version(),
            runtime=self.runtime,
            config=self.config,
            narrator=narrator,
        )

    def finish(self, context: Context, result: Any) -> dict[str, Any]:
        from dataeng_agents.core.commands.data_pipeline import write_review

        dest = self.resolve_output_dir(context, self.output_path)
        paths = self.publish(dest, lambda out_dir: _write(write_review, result, out_dir, self.formats))
        review = result.review if hasattr(result, "review") else result
        summary: dict[str, Any] = dict(review.summary())
        summary["report"] = paths
        if "md" in paths:
            context["ti"].xcom_push(key=ReportLink().xcom_key, value=paths["md"])
        counts = summary["findings"]
        self.log.info(
            "Review of %d file(s): %d error(s), %d warning(s), %d info.",
            summary["files"],
            counts["error"],
            counts["warn"],
            counts["info"],
        )
        if review.exit_code(self.fail_on):
            worst = [f for f in review.findings if f.severity.value in ("error", "warn")][:10]
            listing = "; ".join(f"{f.path}:{f.line} {f.rule_id} {f.message}" for f in worst)
            raise PipelineReviewFailed(f"findings at or above {self.fail_on!r}: {listing}")
        return summary


def _write(writer: Any, result: Any, out_dir: Path, formats: tuple[str, ...]) -> dict[str, str]:
    return dict(writer(result, out_dir, formats=formats))
