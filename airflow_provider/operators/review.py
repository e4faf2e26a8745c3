"""Operator that reviews Airflow DAGs, Prefect flows or pipeline specs with the project's rules."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

from airflow.sdk.exceptions import AirflowFailException
from dataeng_agents.airflow_provider.links.report import ReportLink
from dataeng_agents.airflow_provider.operators._narrated import NarratedOperator, write_outputs

if TYPE_CHECKING:
    from airflow.sdk import Context
    from dataeng_agents.core.narrative import Narrator

FailOn = Literal["error", "warn", "never"]
REVIEW_FORMATS = ("json", "md", "sarif", "html")


class PipelineReviewFailed(AirflowFailException):
    """The review found findings at or above ``fail_on``; raised after the review is written.

    An ``AirflowFailException``: the same files give the same findings, so a retry cannot help.
    """


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
    :param profile: Rule profile (``default``, ``strict``, ``examples``); ``None`` uses the profile of
        the review config (``[tool.dataeng.review] profile``), else ``default``. A profile given here wins.
    :param fail_on: Fail the task when a finding is at least this severe (``error``, ``warn``), or
        ``never``.
    :param airflow_version: Airflow version the rules check against; ``None`` uses the running one.
    :param runtime: Also import the DAG files to decide what static analysis cannot (slower, runs
        DAG code).
    :param config: Review configuration, templated: a ``pyproject.toml`` path (its
        ``[tool.dataeng.review]`` table) or a dict of settings (rule severities, suppressions);
        ``None`` uses the ``pyproject.toml`` found upwards from the first path, as the CLI does.
    :param output_path: Folder for the review (``ObjectStoragePath`` URL, templated); ``None`` writes
        under ``[dataeng] reports_root``.
    :param formats: Review formats to write (``json``, ``md``, ``sarif``, ``html``).
    :param anthropic_conn_id: Connection of type ``anthropic`` for the persona's advice; ``None``
        writes the advice from templates (templated, like ``model``).

    A path that does not exist fails the task whatever ``fail_on`` says (a typo must not pass as a
    clean review); a file that could not be reviewed (syntax error, unreadable) is named with its
    error in the failure message.
    """

    template_fields: Sequence[str] = ("paths", "output_path", "config", "anthropic_conn_id", "model")
    ui_color = "#fdf3e8"
    operator_extra_links = (ReportLink(),)

    def __init__(
        self,
        *,
        paths: Sequence[str] | str | None = None,
        profile: str | None = None,
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

    def review_config(self) -> Any:
        """The core review config, resolved as by the CLI and the Prefect task (``resolve_config``)."""
        from dataeng_agents.core.review import resolve_config

        return resolve_config(self.config, profile=self.profile, search_from=self._review_paths()[0])

    def validate(self, context: Context) -> None:
        super().validate(context)
        from pathlib import Path

        missing = [p for p in self._review_paths() if "://" not in p and not Path(p).exists()]
        if missing:
            raise AirflowFailException(f"paths: no such file or folder: {', '.join(map(repr, missing))}")

    def provenances(self, result: ReviewOutcome) -> list[Any]:
        return [result.advice.provenance]

    def compute(self, context: Context, narrator: Narrator) -> ReviewOutcome:
        from dataeng_agents.core.commands.data_pipeline import narrate_review, review_paths

        result = review_paths(
            self._review_paths(),
            profile=self.profile,
            airflow_version=self._airflow_version(),
            runtime=self.runtime,
            config=self.config,
        )
        return ReviewOutcome(result, narrate_review(result, narrator))

    def finish(self, context: Context, result: ReviewOutcome) -> dict[str, Any]:
        from dataeng_agents.core.commands.data_pipeline import write_review

        dest = self.resolve_output_dir(context, self.output_path)
        paths = write_outputs(partial(write_review, result.review, result.advice, formats=self.formats), dest)
        review = result.review
        summary: dict[str, Any] = dict(review.summary())
        summary["report"] = paths
        summary["advice"] = result.advice.provenance.narrator
        summary["prose"] = result.advice.provenance.summary()  # model id, or template and why
        from dataeng_agents.airflow_provider.operators._narrated import narration_summary

        summary["narration"] = narration_summary(self.provenances(result))
        # pushed before the fail_on check, so downstream tasks (all_done) can read a failed review
        context["ti"].xcom_push(key="summary", value=summary)
        link = paths.get("html") or paths.get("md") or paths.get("json")
        if link:
            self.publish_report_link(context, link)
        counts = summary["findings"]
        self.log.info(
            "Review of %d file(s): %d error(s), %d warning(s), %d info. Written to %s",
            summary["files"],
            counts["error"],
            counts["warn"],
            counts["info"],
            ", ".join(paths.values()),
        )
        unreviewed = [f for f in review.files if f.status == "error"]
        for f in unreviewed:
            self.log.error("Could not review %s: %s", f.path, f.error)
        if review.exit_code(self.fail_on):
            raise PipelineReviewFailed(self.failure_message(review))
        return summary

    def failure_message(self, review: Any) -> str:
        """Why the review fails the task: the files it could not review (with their errors), then
        the most severe findings."""
        parts = []
        unreviewed = [f for f in review.files if f.status == "error"]
        if unreviewed:
            listing = "; ".join(f"{f.path}: {f.error or 'unknown error'}" for f in unreviewed[:10])
            more = f" (and {len(unreviewed) - 10} more)" if len(unreviewed) > 10 else ""
            parts.append(f"{len(unreviewed)} file(s) could not be reviewed: {listing}{more}")
        if self.fail_on != "never":
            from dataeng_agents.core.review.models import Severity

            threshold = Severity(self.fail_on).rank
            at_or_above = [f for f in review.findings if f.severity.rank >= threshold]
            worst = sorted(at_or_above, key=lambda f: -f.severity.rank)[:10]
            if worst:
                listing = "; ".join(f"{f.path}:{f.line} {f.rule_id} {f.message}" for f in worst)
                parts.append(f"findings at or above {self.fail_on!r}: {listing}")
        return " | ".join(parts) or f"review failed at fail_on={self.fail_on!r}"


class ReviewOutcome:
    """A review and the advice written on top of it (the core's ``write_review`` renders both)."""

    def __init__(self, review: Any, advice: Any) -> None:
        self.review = review
        self.advice = advice
