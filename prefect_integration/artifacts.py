"""Publishing reports as Prefect artifacts: a Markdown report, a results table and a link.

Artifact keys group the runs of the same experiment (or pipeline) in the Prefect UI, so they are
derived from the experiment id; Prefect accepts only lowercase letters, digits and dashes.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

_NOT_KEY = re.compile(r"[^a-z0-9]+")
# Keys are shown in the UI sidebar and used in URLs; a short bounded length keeps them readable.
MAX_KEY_LENGTH = 100


def artifact_key(subject: str, suffix: str) -> str:
    """A valid Prefect artifact key for one kind of artifact of a subject (experiment or pipeline).

    ``artifact_key("Checkout_Button v2", "report")`` -> ``"checkout-button-v2-report"``. A subject
    with no ASCII letter or digit (``"实验"``) gets a stable hash instead, so it still has a key.

    Args:
        subject: The experiment or pipeline id.
        suffix: The kind of artifact (``report``, ``results``, ``html``).

    Returns:
        A key of lowercase letters, digits and dashes, at most ``MAX_KEY_LENGTH`` long.
    """
    head = _NOT_KEY.sub("-", subject.lower()).strip("-")
    if not head:
        head = "subject-" + hashlib.sha1(subject.encode()).hexdigest()[:10]
    tail = _NOT_KEY.sub("-", suffix.lower()).strip("-")
    head = head[: MAX_KEY_LENGTH - len(tail) - 1].rstrip("-")
    return f"{head}-{tail}" if tail else head


def report_link(html_path: str | Path, base_url: str | None = None, root: str | Path | None = None) -> str:
    """Where the HTML report can be opened.

    Args:
        html_path: The written HTML report.
        base_url: Where the report directory ``root`` is published (a bucket, a static site), if it is.
        root: The published report directory; the flows write each run below its own folder of it,
            so each run's link points at its own report.

    Returns:
        ``base_url/<path below root>`` (``base_url/<file name>`` without ``root``) with a
        ``base_url``, else a ``file://`` URI of the local file.
    """
    path = Path(html_path)
    if base_url:
        relative = path.name
        if root is not None:
            try:
                relative = path.resolve().relative_to(Path(root).resolve()).as_posix()
            except ValueError:
                relative = path.name
        return f"{base_url.rstrip('/')}/{quote(relative)}"
    return path.resolve().as_uri()


def _cell(value: Any) -> Any:
    # NaN/inf are not JSON: Prefect's UI would show "null" anyway; make it explicit and stable.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


@dataclass(frozen=True)
class PublishedArtifacts:
    """Keys and ids of the three artifacts one report produced."""

    markdown_key: str
    table_key: str
    link_key: str
    ids: dict[str, str]

    def as_dict(self) -> dict[str, Any]:
        """The keys and ids as a JSON-ready dict (a flow's return value)."""
        return {
            "markdown_key": self.markdown_key,
            "table_key": self.table_key,
            "link_key": self.link_key,
            "ids": dict(self.ids),
        }


def publish_report(
    subject_id: str,
    *,
    markdown: str,
    rows: Sequence[Mapping[str, Any]],
    link: str,
    title: str,
    table_name: str = "results",
) -> PublishedArtifacts:
    """Creates the Markdown, table and link artifacts of one report, keyed by ``subject_id``.

    Must run inside a flow or task run so the artifacts are attached to it.

    Args:
        subject_id: The experiment or pipeline id the keys are made from.
        markdown: The report as Markdown.
        rows: The results table, one mapping per row (NaN and infinities become null).
        link: Where the HTML report can be opened (:func:`report_link`).
        title: Shown as the artifacts' descriptions.
        table_name: The table artifact's key suffix.

    Returns:
        The three keys and the ids Prefect gave the artifacts.
    """
    md_key = artifact_key(subject_id, "report")
    table_key = artifact_key(subject_id, table_name)
    link_key = artifact_key(subject_id, "html")
    table = [{str(k): _cell(v) for k, v in row.items()} for row in rows]
    md_id = create_markdown_artifact(markdown=markdown, key=md_key, description=title)
    table_id = create_table_artifact(table=table, key=table_key, description=f"{title}: {table_name}")
    link_id = create_link_artifact(
        link=link, link_text=f"{title} (HTML)", key=link_key, description=f"{title}: HTML report"
    )
    return PublishedArtifacts(
        markdown_key=md_key,
        table_key=table_key,
        link_key=link_key,
        ids={"markdown": str(md_id), "table": str(table_id), "link": str(link_id)},
    )
