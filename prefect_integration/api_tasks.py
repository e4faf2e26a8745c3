"""Prefect tasks and a flow for API contracts: review, breaking-change diff, nightly drift check.

The tasks are module-level ``@task`` functions around the core (:mod:`dataeng_agents.core.api`),
which computes every finding and change; the backend-architect persona only writes the advice,
through the same cached :func:`~dataeng_agents.prefect_integration.tasks.narrate` task as the
pipeline review. :func:`api_contract_drift_flow` is the nightly check: download the spec the
deployed service serves, diff it against the repository's, review the repository's, publish both
as artifacts and fail the run on a breaking change.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from dataeng_agents.prefect_integration.artifacts import artifact_key, publish_report, report_link
from dataeng_agents.prefect_integration.blocks import AgentSettings
from dataeng_agents.prefect_integration.tasks import narrator_for, retry_transient_errors
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

if TYPE_CHECKING:
    from dataeng_agents.core.api import ApiDiffResult, ApiReviewResult

API_REVIEW_TIMEOUT = 900
FETCH_TIMEOUT = 120
#: the deployed spec is fetched over the network: retry transient failures, not bad content
FETCH_RETRIES = 3


class ApiContractDriftError(RuntimeError):
    """The repository's contract breaks clients of the deployed one (or the review failed)."""


# one retry, for transient I/O only (a contract on a network mount): the same files give the same result
@task(
    name="review-api-contracts",
    timeout_seconds=API_REVIEW_TIMEOUT,
    retries=1,
    retry_delay_seconds=5,
    retry_condition_fn=retry_transient_errors,
    cache_policy=NO_CACHE,
)
def review_api_contracts(
    paths: list[str], profile: str = "default", config: str | None = None
) -> ApiReviewResult:
    """Reviews OpenAPI, GraphQL SDL and protobuf contracts and returns the core ``ApiReviewResult``.

    Args:
        paths: Contract files or folders.
        profile: The rule profile (``strict``, ``default`` or ``examples``).
        config: A TOML file with ``[tool.dataeng.api]`` (rule severities, exceptions).

    Returns:
        The core's ``ApiReviewResult`` (findings, ``exit_code``, renderers).
    """
    from dataeng_agents.core.api import review_api_paths

    return review_api_paths(paths, profile=profile, config=config)


@task(
    name="diff-api-contracts",
    timeout_seconds=API_REVIEW_TIMEOUT,
    retries=1,
    retry_delay_seconds=5,
    retry_condition_fn=retry_transient_errors,
    cache_policy=NO_CACHE,
)
def diff_api_contracts(old_path: str, new_path: str, base_ref: str | None = None) -> ApiDiffResult:
    """Compares two versions of a contract and returns the core ``ApiDiffResult``.

    Args:
        old_path: The old contract (ignored when ``base_ref`` is given).
        new_path: The new contract.
        base_ref: Read the old version of ``new_path`` from this git ref instead.

    Returns:
        The core's ``ApiDiffResult`` (changes by level, ``exit_code``).
    """
    from dataeng_agents.core.api import diff_paths

    return diff_paths(old_path, new_path, base_ref=base_ref)


@task(
    name="fetch-deployed-contract",
    timeout_seconds=FETCH_TIMEOUT,
    retries=FETCH_RETRIES,
    retry_delay_seconds=[5, 30, 120],
    cache_policy=NO_CACHE,
)
def fetch_deployed_contract(url: str, suffix: str = ".yaml", headers: dict[str, str] | None = None) -> str:
    """Downloads the contract the deployed service serves (e.g. ``/openapi.json``) to a temp file.

    Args:
        url: ``http(s)://`` URL of the served contract.
        suffix: File suffix that tells the contract type (``.yaml``, ``.json``, ``.graphql``, ``.proto``).
        headers: Extra request headers (e.g. an ``Authorization`` header from a Secret block).

    Returns:
        The path of the downloaded file.
    """
    import httpx

    response = httpx.get(url, headers=headers or {}, timeout=30.0, follow_redirects=True)
    response.raise_for_status()
    out = Path(tempfile.mkdtemp(prefix="dataeng-deployed-contract-")) / f"deployed{suffix}"
    out.write_bytes(response.content)
    return str(out)


def _change_rows(diff: ApiDiffResult) -> list[dict[str, Any]]:
    return [
        {"id": c.id, "level": c.level, "kind": c.kind, "subject": c.subject, "message": c.message}
        for c in diff.changes
    ]


@flow(name="api-contract-drift", retries=0, timeout_seconds=3600, validate_parameters=True)
def api_contract_drift_flow(
    repo_spec_path: str,
    deployed_spec_url: str | None = None,
    deployed_spec_path: str | None = None,
    contract_id: str = "api-contract",
    agent_settings: AgentSettings | str | None = None,
    review_profile: str = "default",
    review_config: str | None = None,
    report_dir: str | None = None,
    report_base_url: str | None = None,
    fail_on: Literal["breaking", "warning", "never"] = "breaking",
) -> dict[str, Any]:
    """Nightly contract-drift check between the deployed contract and the repository's.

    Args:
        repo_spec_path: The contract in the repository (what the next deploy will serve).
        deployed_spec_url: Where the running service serves its contract (downloaded each run).
        deployed_spec_path: A local copy of the deployed contract, instead of the URL.
        contract_id: Names the artifacts (``<contract_id>-report``, ``-changes``, ``-html``).
        agent_settings: An ``AgentSettings`` block or the name of a saved one; template advice when empty.
        review_profile: The API rule profile for the repository's contract.
        review_config: A TOML file with ``[tool.dataeng.api]``.
        report_dir: Where the report files are written (a temp dir when empty).
        report_base_url: Public URL of ``report_dir`` for the link artifact.
        fail_on: The run fails when a change at or above this level exists.

    Returns:
        The diff and review summaries, the advice and the written report files.
    """
    from dataeng_agents.core.api import write_api_review
    from dataeng_agents.core.api.narration import api_diff_narration_task, api_review_narration_task
    from dataeng_agents.core.api.render import write_api_diff
    from dataeng_agents.prefect_integration.flows import _load_block

    logger = get_run_logger()
    if (deployed_spec_url is None) == (deployed_spec_path is None):
        raise ValueError("give exactly one of deployed_spec_url and deployed_spec_path")
    agent = _load_block(agent_settings, AgentSettings)
    narrator = narrator_for(agent)
    if deployed_spec_url is not None:
        deployed = fetch_deployed_contract(deployed_spec_url, suffix=Path(repo_spec_path).suffix)
    else:
        assert deployed_spec_path is not None  # exactly one of the two, checked above
        deployed = deployed_spec_path
    diff = diff_api_contracts(deployed, repo_spec_path)
    review = review_api_contracts([repo_spec_path], profile=review_profile, config=review_config)
    diff_advice = narrator.narrate(api_diff_narration_task(diff))
    review_advice = narrator.narrate(api_review_narration_task(review))
    out = (
        Path(report_dir)
        if report_dir
        else Path(tempfile.mkdtemp(prefix=f"dataeng-{artifact_key(contract_id, '')}-"))
    )
    files = write_api_review(
        review, review_advice, out / "review", title=f"API contract review {contract_id}"
    )
    files.update({f"diff_{k}": v for k, v in write_api_diff(diff, out / "diff").items()})
    markdown = (
        Path(files["diff_md"]).read_text(encoding="utf-8") + "\n## Advice\n\n" + diff_advice.summary + "\n"
    )
    published = publish_report(
        contract_id,
        markdown=markdown,
        rows=_change_rows(diff),
        link=report_link(files["html"], report_base_url),
        title=f"API contract drift {contract_id}",
        table_name="changes",
    )
    counts = diff.counts()
    logger.info(
        "Contract drift %s: %s; review of %s: %s", contract_id, counts, repo_spec_path, review.counts()
    )
    summary = {
        "diff": diff.summary(),
        "review": review.summary(),
        "advice": diff_advice.summary,
        "review_advice": review_advice.summary,
        "artifacts": published.as_dict(),
        "report_files": files,
    }
    if diff.exit_code(fail_on):
        raise ApiContractDriftError(
            f"contract {contract_id!r}: {counts['breaking']} breaking change(s), {counts['warning']} warning(s) "
            f"between the deployed contract and {repo_spec_path}"
        )
    return summary
