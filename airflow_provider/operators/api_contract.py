"""Operators that review API contracts and gate breaking changes between two contract versions."""

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
DiffFailOn = Literal["breaking", "warning", "never"]
API_REVIEW_FORMATS = ("json", "md", "sarif", "html")
API_DIFF_FORMATS = ("json", "md")


class ApiContractReviewFailed(AirflowFailException):
    """Findings at or above ``fail_on`` (or an unreadable contract); raised after the review is written."""


class ApiBreakingChangeFound(AirflowFailException):
    """The new contract breaks clients of the old one; raised after the diff is written."""


class ApiContractReviewOperator(NarratedOperator):
    """
    Review OpenAPI, GraphQL SDL and protobuf contracts with the API rules and fail by severity.

    The findings come from the deterministic API rules (stable id, rule, severity, file and line);
    with ``anthropic_conn_id`` set, the backend-architect persona prioritises them, but can neither
    add nor drop a finding. The review is written as JSON, Markdown, SARIF and HTML under
    ``output_path``; the XCom value is the compact summary. The task fails *after* writing when a
    finding reaches ``fail_on``.

    .. code-block:: python

        ApiContractReviewOperator(task_id="review_contracts", paths=["/repo/api"], profile="strict")

    :param paths: Contract files or folders (templated).
    :param profile: Rule profile: ``default``, ``strict`` or ``examples``.
    :param fail_on: Fail the task when a finding is at least this severe (``error``, ``warn``), or ``never``.
    :param config: Review configuration, templated: a ``pyproject.toml`` path (its ``[tool.dataeng.api]``
        table) or a dict of overrides (rule severities, exceptions).
    :param output_path: Folder for the review (``ObjectStoragePath`` URL, templated); ``None`` writes under
        ``[dataeng] reports_root``.
    :param formats: Review formats to write (``json``, ``md``, ``sarif``, ``html``).
    """

    template_fields: Sequence[str] = ("paths", "output_path", "config")
    ui_color = "#e8f0fd"
    operator_extra_links = (ReportLink(),)

    def __init__(
        self,
        *,
        paths: Sequence[str] | str,
        profile: str = "default",
        fail_on: FailOn = "error",
        config: str | dict[str, Any] | None = None,
        output_path: str | None = None,
        formats: Sequence[str] = API_REVIEW_FORMATS,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if fail_on not in ("error", "warn", "never"):
            raise ValueError(f"fail_on must be 'error', 'warn' or 'never', got {fail_on!r}")
        unknown = set(formats) - set(API_REVIEW_FORMATS)
        if unknown:
            raise ValueError(
                f"formats: unknown format(s) {sorted(unknown)}; choose from {API_REVIEW_FORMATS}"
            )
        self.paths = paths
        self.profile = profile
        self.fail_on = fail_on
        self.config = config
        self.output_path = output_path
        self.formats = tuple(formats)

    def review_config(self) -> Any:
        """The core API review config: ``profile`` plus ``config`` (a TOML path or a dict of overrides)."""
        from dataeng_agents.core.api import load_api_config

        if isinstance(self.config, str):
            return load_api_config(profile=self.profile, pyproject=self.config)
        return load_api_config(profile=self.profile, overrides=self.config)

    def compute(self, context: Context, narrator: Narrator) -> tuple[Any, Any]:
        from dataeng_agents.core.api import narrate_api_review, review_api_paths

        paths = [self.paths] if isinstance(self.paths, str) else list(self.paths)
        result = review_api_paths(paths, config=self.review_config())
        return result, narrate_api_review(result, narrator)

    def finish(self, context: Context, result: tuple[Any, Any]) -> dict[str, Any]:
        from dataeng_agents.core.api import write_api_review

        review, advice = result
        dest = self.resolve_output_dir(context, self.output_path)
        written = write_outputs(partial(write_api_review, review, advice, formats=self.formats), dest)
        summary: dict[str, Any] = dict(review.summary())
        summary["report"] = written
        summary["advice"] = advice.provenance.narrator
        context["ti"].xcom_push(key="summary", value=summary)
        link = written.get("html") or written.get("md") or written.get("json")
        if link:
            context["ti"].xcom_push(key=ReportLink().xcom_key, value=link)
        counts = summary["findings"]
        self.log.info(
            "API review of %d file(s): %d error(s), %d warning(s), %d info. Written to %s",
            summary["files"],
            counts["error"],
            counts["warn"],
            counts["info"],
            ", ".join(written.values()),
        )
        if review.exit_code(self.fail_on):
            worst = sorted(review.findings, key=lambda f: -f.severity.rank)[:10]
            listing = "; ".join(f"{f.path}:{f.line} {f.rule_id} {f.message}" for f in worst)
            bad_files = [f"{f.path}: {f.error}" for f in review.files if f.status == "error"]
            raise ApiContractReviewFailed(
                f"API review at or above {self.fail_on!r}: {listing or '; '.join(bad_files)}"
            )
        return summary


class ApiContractDiffOperator(NarratedOperator):
    """
    Compare two versions of a contract and fail on breaking changes (a contract-drift check).

    Typical use: the spec the deployed service serves (downloaded by an upstream task) against the
    one in the repository, nightly. The diff is deterministic; the backend-architect persona only
    writes the advice. The diff (JSON and Markdown) is written under ``output_path`` and its summary
    is the XCom value; the task fails *after* writing when a change reaches ``fail_on``.

    .. code-block:: python

        ApiContractDiffOperator(task_id="drift", old_path="/tmp/deployed.yaml", new_path="/repo/api/openapi.yaml")

    :param old_path: The old contract (templated), e.g. the deployed one.
    :param new_path: The new contract (templated), e.g. the repository's.
    :param base_ref: Read the old version of ``new_path`` from this git ref instead of ``old_path``.
    :param fail_on: ``breaking`` (default), ``warning`` or ``never``.
    :param output_path: Folder for the diff (``ObjectStoragePath`` URL, templated).
    :param formats: Diff formats to write (``json``, ``md``).
    """

    template_fields: Sequence[str] = ("old_path", "new_path", "base_ref", "output_path")
    ui_color = "#e8f0fd"
    operator_extra_links = (ReportLink(),)

    def __init__(
        self,
        *,
        new_path: str,
        old_path: str | None = None,
        base_ref: str | None = None,
        fail_on: DiffFailOn = "breaking",
        output_path: str | None = None,
        formats: Sequence[str] = API_DIFF_FORMATS,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (old_path is None) == (base_ref is None):
            raise ValueError("give exactly one of old_path and base_ref")
        if fail_on not in ("breaking", "warning", "never"):
            raise ValueError(f"fail_on must be 'breaking', 'warning' or 'never', got {fail_on!r}")
        unknown = set(formats) - set(API_DIFF_FORMATS)
        if unknown:
            raise ValueError(f"formats: unknown format(s) {sorted(unknown)}; choose from {API_DIFF_FORMATS}")
        self.old_path = old_path
        self.new_path = new_path
        self.base_ref = base_ref
        self.fail_on = fail_on
        self.output_path = output_path
        self.formats = tuple(formats)

    def compute(self, context: Context, narrator: Narrator) -> tuple[Any, Any]:
        from dataeng_agents.core.api import diff_paths, narrate_api_diff

        diff = diff_paths(self.old_path or self.new_path, self.new_path, base_ref=self.base_ref)
        return diff, narrate_api_diff(diff, narrator)

    def finish(self, context: Context, result: tuple[Any, Any]) -> dict[str, Any]:
        from dataeng_agents.core.api import write_api_diff

        diff, advice = result
        dest = self.resolve_output_dir(context, self.output_path)
        written = write_outputs(partial(write_api_diff, diff, formats=self.formats), dest)
        summary: dict[str, Any] = dict(diff.summary())
        summary["report"] = written
        summary["advice"] = advice.summary
        context["ti"].xcom_push(key="summary", value=summary)
        link = written.get("md") or written.get("json")
        if link:
            context["ti"].xcom_push(key=ReportLink().xcom_key, value=link)
        counts = summary["changes"]
        self.log.info(
            "API diff: %d breaking, %d warning(s), %d additive. Written to %s",
            counts["breaking"],
            counts["warning"],
            counts["info"],
            ", ".join(written.values()),
        )
        if diff.exit_code(self.fail_on):
            listing = "; ".join(f"{c.kind} {c.subject}" for c in diff.changes[:10])
            raise ApiBreakingChangeFound(f"changes at or above {self.fail_on!r}: {listing}")
        return summary
