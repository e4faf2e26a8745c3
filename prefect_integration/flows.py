"""Ready-made flows: a scheduled experiment report and a pipeline review.

Each flow calls the tasks, writes the report files through the core (``write_report``), publishes
three artifacts keyed by the experiment id (Markdown report, results table, link to the HTML
report) and returns the core's compact, secret-free ``summary()``. The experiment flow also emits a
``dataeng.experiment.analyzed`` event carrying the decision, and fails when the run hits a stop
condition of the policy (sample-ratio mismatch, harmed guardrail), *after* publishing the report so
the analyst sees why.

The flows persist their results (``persist_result=True``), so ``run_deployment(...).state.result()``
returns the summary of a deployed run, or re-raises the policy failure with its own type; the
summary holds the prose and who wrote it. Each run writes its report files below its own folder of
``report_dir`` (``<report_dir>/<subject>/<flow run id>``), so link artifacts never point at a report
a later run overwrote. The decision event carries the verdict and the experiment id as *resource
labels* (``dataeng.verdict``, ``dataeng.experiment_id``), which is what automations match on.
"""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from dataeng_agents.prefect_integration.artifacts import artifact_key, publish_report, report_link
from dataeng_agents.prefect_integration.blocks import AgentSettings, ExperimentWarehouse
from dataeng_agents.prefect_integration.tasks import (
    analyze_experiment,
    check_tracking,
    design_hypothesis,
    narrator_for,
    review_pipeline,
    rollout_check,
)
from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.events import emit_event
from prefect.runtime import flow_run

StopReason = Literal["srm", "guardrail"]
EXPERIMENT_ANALYZED_EVENT = "dataeng.experiment.analyzed"
PIPELINE_REVIEWED_EVENT = "dataeng.pipeline.reviewed"
ROLLOUT_CHECKED_EVENT = "dataeng.rollout.checked"


class ExperimentPolicyError(RuntimeError):
    """The experiment hit a stop condition of the policy (SRM, harmed guardrail)."""

    def __init__(self, experiment_id: str, reasons: list[str]) -> None:
        self.experiment_id = experiment_id
        self.reasons = list(reasons)
        super().__init__(f"experiment {experiment_id!r} stopped by policy: " + "; ".join(reasons))

    def __reduce__(self) -> tuple[type[ExperimentPolicyError], tuple[str, list[str]]]:
        # Prefect pickles a failed run's exception into its result; rebuilt from the constructor's
        # arguments, `state.result()` re-raises this type instead of a TypeError
        return (type(self), (self.experiment_id, self.reasons))


class PipelineReviewError(RuntimeError):
    """The review found findings at or above the ``fail_on`` severity."""


def _load_block(value: Any, block_type: type[Any]) -> Any:
    # Deployments pass block names (strings); Python callers may pass the block itself.
    if value is None or isinstance(value, block_type):
        return value
    return block_type.load(value)


def _report_dir(report_dir: str | None, subject: str) -> Path:
    """This run's folder: ``<report_dir>/<subject>/<flow run id>`` (a temp dir without ``report_dir``).

    One folder per run: a link artifact keeps pointing at its own run's report.
    """
    if not report_dir:
        return Path(tempfile.mkdtemp(prefix=f"dataeng-{subject}-"))
    run_id = str(flow_run.id or "") or datetime.now().strftime("%Y%m%dT%H%M%S%f")
    path = Path(report_dir) / artifact_key(subject, "") / run_id
    path.mkdir(parents=True, exist_ok=True)
    return path


def prose_line(provenance: Any) -> str:
    """Who wrote the prose, one Markdown line for the artifacts."""
    if provenance is None:
        return "_Prose: none._"
    if provenance.fallback_reason:
        return f"_Prose: written by the template because Claude failed ({provenance.fallback_reason})._"
    if provenance.narrator == "claude":
        who = " ".join(x for x in (provenance.persona, provenance.model) if x)
        return f"_Prose: written by Claude ({who})._" if who else "_Prose: written by Claude._"
    return "_Prose: written by the deterministic template (no Claude configured)._"


def narrative_summary(narrative: Any) -> dict[str, Any] | None:
    """The prose of a report and who wrote it, for the flow's (persisted) return value."""
    if narrative is None:
        return None
    p = narrative.provenance
    return {
        "headline": narrative.headline,
        "summary": narrative.summary,
        "recommendation": narrative.recommendation,
        "narrator": p.narrator,
        "fallback_reason": p.fallback_reason,
        "model": p.model,
        # one line, e.g. "Claude (claude-sonnet-4-5, persona data-engineer)", where the core has it
        "written_by": getattr(p, "written_by", None),
    }


@flow(
    name="experiment-report",
    # Transient errors are retried by the tasks; a policy stop must not be retried.
    retries=0,
    timeout_seconds=2 * 3600,
    validate_parameters=True,
    # a deployed run's summary (or its policy failure) stays readable through state.result()
    persist_result=True,
)
def experiment_report_flow(
    config: str | dict[str, Any],
    warehouse: ExperimentWarehouse | str,
    agent_settings: AgentSettings | str | None = None,
    report_dir: str | None = None,
    report_base_url: str | None = None,
    data_interval: tuple[str, str] | None = None,
    fail_on: list[StopReason] | None = None,
) -> dict[str, Any]:
    """Analyses an experiment, publishes the report as artifacts and emits the decision event.

    :param config: the experiment config (YAML path, YAML text or dict; a lifecycle YAML too).
    :param warehouse: an ``ExperimentWarehouse`` block or the name of a saved one.
    :param agent_settings: an ``AgentSettings`` block or the name of a saved one; template prose when empty.
    :param report_dir: where the JSON/Markdown/HTML report files are written (a temp dir when empty).
    :param report_base_url: public URL of ``report_dir`` (a bucket, a static site) for the link artifact.
    :param data_interval: ``(start, end)`` ISO timestamps; the config's window when empty.
    :param fail_on: stop conditions that fail the run; default ``["srm", "guardrail"]``, ``[]`` never fails.
    """
    logger = get_run_logger()
    stop_on: list[str] = ["srm", "guardrail"] if fail_on is None else list(fail_on)
    warn_unsaved_secret_blocks(warehouse=warehouse, agent_settings=agent_settings)
    wh = _load_block(warehouse, ExperimentWarehouse)
    agent = _load_block(agent_settings, AgentSettings)

    report = analyze_experiment(config, wh, agent, data_interval=data_interval)
    result, reasons = publish_experiment_report(report, report_dir, report_base_url, stop_on)
    logger.info("Experiment %s: verdict %r", report.experiment_id, report.decision.verdict)
    if reasons:
        raise ExperimentPolicyError(report.experiment_id, reasons)
    return result


def publish_experiment_report(
    report: Any, report_dir: str | None, report_base_url: str | None, stop_on: list[str]
) -> tuple[dict[str, Any], list[str]]:
    """Writes the report files, publishes the three artifacts and emits the analysed event.

    Returns the flow result (the core's summary, artifact keys, file paths) and the stop reasons.
    """
    from dataeng_agents.core.report import write_report

    logger = get_run_logger()
    experiment_id = report.experiment_id
    files = write_report(report, str(_report_dir(report_dir, experiment_id)), formats=("json", "md", "html"))
    provenance = report.narrative.provenance if report.narrative is not None else None
    if provenance is not None and provenance.fallback_reason:
        logger.warning(
            "Experiment %s: the template wrote the prose because Claude failed: %s",
            experiment_id,
            provenance.fallback_reason,
        )
    published = publish_report(
        experiment_id,
        markdown=prose_line(provenance) + "\n\n" + Path(files["md"]).read_text(encoding="utf-8"),
        rows=metric_rows(report),
        link=report_link(files["html"], report_base_url, root=report_dir),
        title=f"Experiment {experiment_id}",
        table_name="metrics",
    )
    reasons = [reason for kind in stop_on for reason in report.policy_problems(kind)]
    emit_event(
        event=EXPERIMENT_ANALYZED_EVENT,
        # Automations match resource labels (not payloads): the verdict and the id are labels.
        resource={
            "prefect.resource.id": f"dataeng.experiment.{experiment_id}",
            "prefect.resource.name": experiment_id,
            "dataeng.experiment_id": experiment_id,
            "dataeng.verdict": str(report.decision.verdict),
            "dataeng.stopped_by_policy": "true" if reasons else "false",
        },
        payload={
            "experiment_id": experiment_id,
            "verdict": report.decision.verdict,
            "variant": report.decision.variant,
            "per_variant": dict(report.decision.per_variant),
            "stopped_by_policy": bool(reasons),
            "stop_reasons": reasons,
            "report_artifact_key": published.markdown_key,
            "flow_run_id": str(flow_run.id),
        },
    )
    summary = {
        **report.summary(),
        "narrative": narrative_summary(report.narrative),
        "artifacts": published.as_dict(),
        "report_files": files,
    }
    return summary, reasons


@flow(name="pipeline-review", retries=0, timeout_seconds=3600, validate_parameters=True, persist_result=True)
def pipeline_review_flow(
    paths: list[str],
    pipeline_id: str = "pipeline-review",
    agent_settings: AgentSettings | str | None = None,
    profile: str | None = None,
    airflow_version: str = "3.3",
    review_config: str | None = None,
    report_dir: str | None = None,
    report_base_url: str | None = None,
    fail_on: Literal["error", "warn", "never"] = "error",
) -> dict[str, Any]:
    """Reviews DAGs, flows or pipeline specs and publishes the findings as artifacts.

    :param paths: files or folders to review.
    :param pipeline_id: names the artifacts (``<pipeline_id>-report``, ``-findings``, ``-html``).
    :param agent_settings: an ``AgentSettings`` block or the name of a saved one; template advice when empty.
    :param profile: the rule profile; ``None`` uses the review config's, else ``default``.
    :param airflow_version: the Airflow version the DAGs target.
    :param review_config: a review config file (severities, suppressions); ``None`` uses the
        ``pyproject.toml`` found upwards from the first path.
    :param report_dir: where the review report files are written (a temp dir when empty).
    :param report_base_url: public URL of ``report_dir`` for the link artifact.
    :param fail_on: the run fails when a finding at or above this severity exists.
    """
    logger = get_run_logger()
    warn_unsaved_secret_blocks(agent_settings=agent_settings)
    agent = _load_block(agent_settings, AgentSettings)
    result = review_pipeline(paths, profile=profile, airflow_version=airflow_version, config=review_config)
    advice = review_advice(result, agent)
    from dataeng_agents.core.commands.data_pipeline import write_review

    files = write_review(
        result, advice, _report_dir(report_dir, pipeline_id), title=f"Pipeline review {pipeline_id}"
    )
    if advice.provenance.fallback_reason:
        logger.warning(
            "Pipeline review %s: the template wrote the advice because Claude failed: %s",
            pipeline_id,
            advice.provenance.fallback_reason,
        )
    published = publish_report(
        pipeline_id,
        markdown=prose_line(advice.provenance) + "\n\n" + Path(files["md"]).read_text(encoding="utf-8"),
        rows=finding_rows(result),
        link=report_link(files["html"], report_base_url, root=report_dir),
        title=f"Pipeline review {pipeline_id}",
        table_name="findings",
    )
    summary = result.summary()
    emit_event(
        event=PIPELINE_REVIEWED_EVENT,
        resource={
            "prefect.resource.id": f"dataeng.pipeline.{artifact_key(pipeline_id, '')}",
            "prefect.resource.name": pipeline_id,
            "dataeng.pipeline_id": pipeline_id,
            "dataeng.failed": "true" if result.exit_code(fail_on) else "false",
        },
        payload={
            "pipeline_id": pipeline_id,
            "findings": summary["findings"],
            "fail_on": fail_on,
            "failed": bool(result.exit_code(fail_on)),
            "flow_run_id": str(flow_run.id),
        },
    )
    logger.info("Pipeline review %s: %s", pipeline_id, summary["findings"])
    if result.exit_code(fail_on):
        raise PipelineReviewError(
            f"pipeline review {pipeline_id!r}: findings at or above {fail_on!r}: {summary['findings']}"
        )
    return {
        **summary,
        "advice": advice.summary,
        "advice_narrator": advice.provenance.narrator,
        "advice_fallback_reason": advice.provenance.fallback_reason,
        "artifacts": published.as_dict(),
        "report_files": files,
    }


class RolloutStoppedError(RuntimeError):
    """A rollout check decided to roll back, or the tracking plan is broken."""


@flow(
    name="feature-lifecycle", retries=0, timeout_seconds=3 * 3600, validate_parameters=True, persist_result=True
)
def feature_lifecycle_flow(
    config: str | dict[str, Any],
    stage: int,
    warehouse: ExperimentWarehouse | str | None = None,
    agent_settings: AgentSettings | str | None = None,
    checked_at: datetime | None = None,
    report_dir: str | None = None,
    report_base_url: str | None = None,
    fail_on_tracking_errors: bool = True,
    final_fail_on: list[StopReason] | None = None,
) -> dict[str, Any]:
    """The data-driven-feature lifecycle in one scheduled run: design → tracking check → rollout
    check of the current stage → final analysis once the last stage may advance.

    Each step publishes a Markdown artifact (``<id>-hypothesis``, ``<id>-tracking``, ``<id>-rollout``);
    the rollout decision is emitted as ``dataeng.rollout.checked``. A ``roll back`` decision, or
    (``fail_on_tracking_errors``) a broken tracking plan, fails the run after publishing.

    :param config: the experiment YAML with its ``hypothesis:``, ``tracking:`` and ``rollout:`` sections.
    :param stage: the rollout stage currently live (1-based).
    :param warehouse: an ``ExperimentWarehouse`` block or its name; the config's ``warehouse:`` when empty.
    :param agent_settings: an ``AgentSettings`` block or its name; template prose when empty.
    :param checked_at: the check's time (default now); a backfill passes the time it stands for.
    :param report_dir: where the report files go (a temp dir when empty).
    :param report_base_url: public URL of ``report_dir`` for the final report's link artifact.
    :param fail_on_tracking_errors: fail the run when the tracking check finds errors.
    :param final_fail_on: stop conditions of the final analysis (default ``["srm", "guardrail"]``).
        A ramped rollout changes the allocation between stages, so an SRM against the configured
        weights is expected unless the final analysis reads only the last stage (``data_interval``).
    """
    from dataeng_agents.core.commands.lifecycle import rollout_markdown
    from dataeng_agents.core.experiment import load_configs

    logger = get_run_logger()
    wh = _load_block(warehouse, ExperimentWarehouse)
    agent = _load_block(agent_settings, AgentSettings)
    experiment, lifecycle = load_configs(config)
    experiment_id = experiment.id
    configs = (experiment, lifecycle)

    result: dict[str, Any] = {"experiment_id": experiment_id, "hypothesis": None, "tracking": None}
    problems: list[str] = []
    # Each step runs when its section is in the YAML: a rollout-only config skips design and tracking.
    if lifecycle.hypothesis is not None:
        plan = design_hypothesis(configs, wh, agent)
        create_markdown_artifact(
            markdown=plan.to_markdown(),
            key=artifact_key(experiment_id, "hypothesis"),
            description=f"Hypothesis and power plan of {experiment_id}",
        )
        result["hypothesis"] = plan.summary()
    if lifecycle.tracking.events:
        tracking = check_tracking(configs, wh, checked_at)
        create_markdown_artifact(
            markdown=tracking.to_markdown(),
            key=artifact_key(experiment_id, "tracking"),
            description=f"Tracking check of {experiment_id}",
        )
        result["tracking"] = tracking.summary()
        if fail_on_tracking_errors and not tracking.ok:
            problems.append(f"tracking plan broken: {tracking.summary()['errors']} error(s)")
    decision = rollout_check(configs, stage, wh, checked_at, agent)
    create_markdown_artifact(
        markdown=rollout_markdown(decision),
        key=artifact_key(experiment_id, "rollout"),
        description=f"Rollout check of {experiment_id}, stage {stage}",
    )
    emit_event(
        event=ROLLOUT_CHECKED_EVENT,
        resource={
            "prefect.resource.id": f"dataeng.experiment.{experiment_id}",
            "prefect.resource.name": experiment_id,
            "dataeng.experiment_id": experiment_id,
            "dataeng.rollout_decision": str(decision.decision),
            "dataeng.stage": str(stage),
        },
        payload={**decision.summary(), "flow_run_id": str(flow_run.id)},
    )
    logger.info("Rollout of %s, stage %d: %s", experiment_id, stage, decision.decision)
    result["rollout"] = decision.summary()
    result["final_report"] = None
    if decision.decision == "roll back":
        problems.append("rollout decision: roll back (" + "; ".join(decision.reasons) + ")")
    if decision.complete and not problems:
        report = analyze_experiment(experiment, wh, agent)
        stop_on: list[str] = ["srm", "guardrail"] if final_fail_on is None else list(final_fail_on)
        final, reasons = publish_experiment_report(report, report_dir, report_base_url, stop_on)
        result["final_report"] = final
        problems += reasons
    if problems:
        raise RolloutStoppedError(f"{experiment_id}: " + "; ".join(problems))
    return result


def warn_unsaved_secret_blocks(**parameters: Any) -> None:
    """Warn when a block holding a secret is passed by value instead of by its saved name.

    A flow parameter is stored with the run: a block passed by value (not saved, or not loaded by
    name) puts its password/API key into the run's parameters. Deployments should pass the saved
    block's name (``"warehouse": "prod-warehouse"``), which the flow loads.
    """
    from prefect.blocks.core import Block
    from pydantic import SecretStr

    logger = get_run_logger()

    def secrets_in(block: Block) -> list[str]:
        found = []
        for name, value in block:
            if isinstance(value, SecretStr) and value.get_secret_value():
                found.append(name)
            elif isinstance(value, Block):
                found += [f"{name}.{inner}" for inner in secrets_in(value)]
            elif isinstance(getattr(value, "password", None), SecretStr) and value.password.get_secret_value():
                found.append(f"{name}.password")
        return found

    for parameter, value in parameters.items():
        if not isinstance(value, Block):
            continue
        secrets = secrets_in(value)
        if secrets and value._block_document_id is None:
            logger.warning(
                "Parameter %r is an unsaved %s holding a secret (%s): it is stored with this run's "
                "parameters. Save the block and pass its name instead.",
                parameter,
                type(value).__name__,
                ", ".join(secrets),
            )


# ------------------------------------------------------------------------------ report translation
def metric_rows(report: Any) -> list[dict[str, Any]]:
    """One table row per metric and variant, straight from the core's results (no rounding)."""
    return [
        {
            "id": r.id,
            "metric": r.metric,
            "variant": r.variant,
            "role": r.role,
            "control_mean": r.control_mean,
            "variant_mean": r.variant_mean,
            "estimate": r.estimate,
            "ci_lower": r.ci_lower,
            "ci_upper": r.ci_upper,
            "p_value": r.p_value,
            "adjusted_p_value": r.adjusted_p_value,
            "chance_to_win": r.chance_to_win,
            "significant": r.significant,
            "direction": r.direction,
            "error": r.error,
        }
        for r in report.results
    ]


def finding_rows(result: Any) -> list[dict[str, Any]]:
    """One table row per finding, in the core's order."""
    return [
        {
            "id": f.id,
            "rule": f.rule_id,
            "severity": f.severity.value,
            "path": f.path,
            "line": f.line,
            "subject": f.subject,
            "message": f.message,
        }
        for f in result.findings
    ]


def review_advice(result: Any, agent_settings: AgentSettings | None) -> Any:
    """The persona's advice on the findings (priorities refer to finding ids only)."""
    from dataeng_agents.core.commands.data_pipeline import review_narration_task

    return narrator_for(agent_settings).narrate(review_narration_task(result))
