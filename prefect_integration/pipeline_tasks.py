"""Prefect task and flow: from a request in a sentence (or a spec file) to a pipeline design.

The same path as ``dataeng pipeline design`` and Airflow's ``PipelineDesignOperator``: one call of
the core facade :func:`~dataeng_agents.core.commands.data_pipeline.design_request`. A sentence is
drafted into a spec by Claude when the ``AgentSettings`` block has credentials (the offline extractor
otherwise, or when Claude fails), the deterministic designer runs on the spec, the drafted spec and
the runnable project are written when asked, and the design is published as a Markdown artifact.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from dataeng_agents.prefect_integration.artifacts import artifact_key
from dataeng_agents.prefect_integration.blocks import AgentSettings
from dataeng_agents.prefect_integration.tasks import NARRATION_TIMEOUT
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

if TYPE_CHECKING:
    from dataeng_agents.core.commands.data_pipeline import DesignRun

#: The drafting persona when the block says ``auto`` (the CLI's drafter).
DRAFTING_PERSONA = "data-engineer"


def design_markdown(run: DesignRun) -> str:
    """The design artifact: who drafted the spec, the design, the spec as YAML, the project's files.

    Args:
        run: The core's result of one request.

    Returns:
        The Markdown of the artifact.
    """
    lines: list[str] = []
    if run.draft is not None:
        how = "Claude" if run.draft.drafted_by == "claude" else "the offline extractor"
        note = f" (Claude not used: {run.draft.fallback_reason})" if run.draft.fallback_reason else ""
        where = f", written to `{run.spec_path}`" if run.spec_path else ""
        lines += [f"_Spec drafted by {how}{note}{where} from: {run.request}_", ""]
    lines.append(run.to_markdown().rstrip())
    drafted = [q for q in run.open_questions() if q not in run.design.open_questions]
    if drafted:  # the design's own questions are in its Markdown already
        lines += ["", "## Open questions from drafting the spec", "", *(f"- {q}" for q in drafted)]
    lines += ["", "## Spec", "", "```yaml", run.spec_text().rstrip(), "```"]
    if run.scaffold_dir is not None:
        lines += ["", f"## Project in `{run.scaffold_dir}`", "", *(f"- `{f}`" for f in run.scaffold_files)]
    return "\n".join(lines) + "\n"


@task(
    name="design-pipeline-from-request", timeout_seconds=NARRATION_TIMEOUT, retries=0, cache_policy=NO_CACHE
)
def design_pipeline_from_request(
    request: str,
    agent_settings: AgentSettings | None = None,
    spec_out: str | None = None,
    scaffold_dir: str | None = None,
    force: bool = False,
    max_usd: float | None = None,
    publish: bool = True,
) -> DesignRun:
    """Designs a pipeline from a request in a sentence, or from a spec file, and publishes the design.

    A sentence such as ``"Design a real-time streaming pipeline from Kafka to BigQuery"`` is drafted
    into a spec (Claude with the block's credentials, with one repair turn; the offline extractor
    without them or when Claude fails, the reason kept in ``draft.fallback_reason``); a spec file is
    designed as it is. Not retried: drafting never fails on the LLM, and a retry would find the
    spec it already wrote.

    Args:
        request: The request in a sentence, or the path of a spec file (YAML or JSON).
        agent_settings: Credentials, model and persona that draft the spec; offline when ``None``
            or without credentials.
        spec_out: Where the drafted spec is written for the user to edit (``{name}`` is replaced by
            the spec's name); not written when ``None`` (the artifact shows it). Unused for a spec file.
        scaffold_dir: Also write the runnable project (Airflow DAG, Prefect flow, dbt, checks) to this
            folder (``{name}`` is replaced by the spec's name).
        force: Overwrite an existing ``spec_out`` and scaffold files that differ.
        max_usd: The most the drafting call may spend; the block's ``max_usd`` when ``None``.
        publish: Publish the design as the Markdown artifact ``<spec name>-design``.

    Returns:
        The core ``DesignRun``: the design, the draft (or ``None`` for a spec file), the spec path and
        the scaffold's files.

    Raises:
        InputError: An empty request, a spec file that does not exist or is invalid (``ConfigError``),
            an existing ``spec_out`` or differing scaffold files without ``force``, a negative ``max_usd``.
    """
    from dataeng_agents.core.commands.data_pipeline import design_request
    from dataeng_agents.core.design.draft import is_sentence

    logger = get_run_logger()
    client = None
    model = None
    persona = DRAFTING_PERSONA
    if agent_settings is not None:
        if agent_settings.persona != "auto":
            persona = agent_settings.persona
        model = agent_settings.model
        if max_usd is None:
            max_usd = agent_settings.max_usd
        if agent_settings.anthropic_credentials is not None and is_sentence(request):
            client = agent_settings.anthropic_credentials.get_client()
    run = design_request(
        request,
        client=client,
        model=model,
        persona=persona,
        spec_out=spec_out,
        scaffold_dir=scaffold_dir,
        force=force,
        max_usd=max_usd,
    )
    if run.draft is not None and run.draft.fallback_reason:
        logger.warning("Claude did not draft the spec: %s", run.draft.fallback_reason)
    design = run.design
    logger.info(
        "Design of %s: %s on %s (schedule %s), about $%s/month%s",
        design.spec_name,
        design.recommendation_label,
        design.cost.warehouse,
        design.schedule,
        f"{design.cost.total_usd_per_month:,.2f}",
        f"; project ({len(run.scaffold_files)} files) in {run.scaffold_dir}" if run.scaffold_dir else "",
    )
    if publish:
        create_markdown_artifact(
            markdown=design_markdown(run),
            key=artifact_key(design.spec_name, "design"),
            description=f"Pipeline design {design.spec_name}",
        )
    return run


@flow(name="pipeline-design", retries=0, timeout_seconds=3600, validate_parameters=True)
def pipeline_design_flow(
    request: str,
    agent_settings: AgentSettings | str | None = None,
    spec_out: str | None = None,
    scaffold_dir: str | None = None,
    force: bool = False,
    max_usd: float | None = None,
) -> dict[str, Any]:
    """Designs a pipeline from a request and publishes the design (see ``design_pipeline_from_request``).

    Args:
        request: The request in a sentence, or the path of a spec file.
        agent_settings: An ``AgentSettings`` block or the name of a saved one; offline drafting when empty.
        spec_out: Where the drafted spec is written (``{name}``: the spec's name).
        scaffold_dir: Also write the runnable project here (``{name}``: the spec's name).
        force: Overwrite an existing ``spec_out`` and scaffold files that differ.
        max_usd: The most the drafting call may spend.

    Returns:
        The design's summary: architecture, warehouse, monthly cost, spec path, who drafted the spec
        (and why Claude was not used), the number of assumptions and the open questions.
    """
    from dataeng_agents.prefect_integration.flows import warn_unsaved_secret_blocks

    warn_unsaved_secret_blocks(agent_settings=agent_settings)
    settings: AgentSettings | None
    if isinstance(agent_settings, str):  # a deployment passes the saved block's name
        # Block.load is sync-compatible: in a synchronous flow it returns the block itself
        settings = cast("AgentSettings", AgentSettings.load(agent_settings))
    else:
        settings = agent_settings
    run = design_pipeline_from_request(
        request,
        agent_settings=settings,
        spec_out=spec_out,
        scaffold_dir=scaffold_dir,
        force=force,
        max_usd=max_usd,
    )
    return run.summary()
