"""``review_api_paths``: collect contract files, check each one, apply profiles and suppressions.

A file that cannot be read or parsed gets an :class:`ApiFileReport` with ``status="error"`` and the
run goes on; the exit code then fails (a contract nobody can parse is not a passing contract).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dataeng_agents.core.api.config import ApiReviewConfig, load_api_config
from dataeng_agents.core.api.context import ApiCheckContext
from dataeng_agents.core.api.graphql_checks import check_graphql
from dataeng_agents.core.api.loader import (
    ALL_SUFFIXES,
    OPENAPI_SUFFIXES,
    ApiDocument,
    ApiParseError,
    GraphQLDocument,
    NotOpenApiError,
    OpenApiDocument,
    ProtoDocument,
    kind_of,
    parse_document,
)
from dataeng_agents.core.api.models import ApiFileReport, ApiReviewResult
from dataeng_agents.core.api.openapi_checks import check_openapi
from dataeng_agents.core.api.proto_checks import check_proto
from dataeng_agents.core.api.rules import API_RULES
from dataeng_agents.core.review.context import RawFinding
from dataeng_agents.core.review.models import Finding

# the pipeline review's inline marker, with `//` accepted too (protobuf comments)
_IGNORE = re.compile(r"(?:#|//)\s*dataeng:\s*ignore(?P<file>-file)?\[(?P<rules>[A-Za-z0-9_,\s*]+)\]")


def collect_api_files(
    paths: Sequence[str | Path], config: ApiReviewConfig
) -> tuple[list[tuple[str, bool]], list[ApiFileReport]]:
    """``(path, named explicitly)`` of every contract file under ``paths`` plus reports of unusable entries.

    In a walked folder a ``.yaml``/``.json`` file is taken only when its first 64 KiB mention
    ``openapi`` (config files and pipeline specs live next to contracts)."""
    files: list[tuple[str, bool]] = []
    errors: list[ApiFileReport] = []
    seen: set[str] = set()
    for raw in paths:
        p = str(raw)
        if not os.path.exists(p):
            errors.append(ApiFileReport(path=p, kind="error", status="error", error="file not found"))
            continue
        if not os.path.isdir(p):
            if p not in seen and not config.excluded(p):
                seen.add(p)
                files.append((p, True))
            continue
        for root, dirnames, filenames in os.walk(p):
            dirnames[:] = sorted(
                d for d in dirnames if not d.startswith((".", "__pycache__", "node_modules"))
            )
            for name in sorted(filenames):
                full = os.path.join(root, name)
                if not name.lower().endswith(ALL_SUFFIXES) or full in seen or config.excluded(full):
                    continue
                if name.lower().endswith(OPENAPI_SUFFIXES) and not _mentions_openapi(full):
                    continue
                seen.add(full)
                files.append((full, False))
    return files, errors


def _mentions_openapi(path: str) -> bool:
    try:
        with open(path, "rb") as fh:
            return b"openapi" in fh.read(65536)
    except OSError:
        return False


def _suppressions(text: str) -> tuple[dict[int, set[str]], set[str]]:
    lines: dict[int, set[str]] = {}
    whole: set[str] = set()
    if "dataeng:" not in text:
        return lines, whole
    for n, line in enumerate(text.splitlines(), start=1):
        for m in _IGNORE.finditer(line):
            rules = {r.strip() for r in m.group("rules").split(",") if r.strip()}
            if m.group("file"):
                whole |= rules
            else:
                # the marker covers its own line and, written on a line of its own, the next one
                lines.setdefault(n, set()).update(rules)
                if line.strip().startswith(("#", "//")):
                    lines.setdefault(n + 1, set()).update(rules)
    return lines, whole


def check_document(doc: ApiDocument, config: ApiReviewConfig) -> tuple[list[RawFinding], int]:
    """Raw findings of one parsed document and its operation count (no suppression applied)."""
    ctx = ApiCheckContext(path=doc.path, config=config)
    if isinstance(doc, OpenApiDocument):
        n = check_openapi(ctx, doc)
    elif isinstance(doc, GraphQLDocument):
        n = check_graphql(ctx, doc)
    else:
        n = check_proto(ctx, doc)
    return ctx.findings, n


def _title(doc: ApiDocument) -> str:
    if isinstance(doc, OpenApiDocument):
        raw_info = doc.data.get("info")
        info: dict[str, Any] = raw_info if isinstance(raw_info, dict) else {}
        return f"{info.get('title', '')} {info.get('version', '')}".strip()
    if isinstance(doc, ProtoDocument):
        from dataeng_agents.core.api.proto_checks import collect

        return collect(doc.file)[0] or ""
    return "GraphQL schema"


def review_document(doc: ApiDocument, config: ApiReviewConfig) -> tuple[ApiFileReport, list[Finding], int]:
    """Check one parsed document and apply suppressions: ``(report, findings, suppressed)``."""
    raw, n_ops = check_document(doc, config)
    by_line, whole = _suppressions(doc.text)
    findings: list[Finding] = []
    suppressed = 0
    seen: set[tuple[str, int, str]] = set()
    for r in raw:
        key = (r.rule_id, r.line, r.message)
        if key in seen:
            continue
        seen.add(key)
        if (
            r.rule_id in whole
            or "*" in whole
            or r.rule_id in by_line.get(r.line, ())
            or "*" in by_line.get(r.line, ())
            or config.excepted(doc.path, r.rule_id)
        ):
            suppressed += 1
            continue
        rule = API_RULES[r.rule_id]
        findings.append(
            Finding(
                id=Finding.make_id(r.rule_id, doc.path, r.subject, r.message),
                rule_id=r.rule_id,
                severity=config.severity_of(r.rule_id),
                category=rule.category,
                path=doc.path,
                line=r.line,
                column=r.column,
                message=r.message,
                subject=r.subject,
                fix=rule.fix,
            )
        )
    report = ApiFileReport(
        path=doc.path,
        kind=doc.kind,
        title=_title(doc),
        operations=n_ops,
        findings=len(findings),
        suppressed=suppressed,
    )
    return report, findings, suppressed


def review_api_paths(
    paths: Sequence[str | Path],
    *,
    profile: str = "default",
    config: ApiReviewConfig | str | Path | dict[str, Any] | None = None,
) -> ApiReviewResult:
    """Review OpenAPI (``.yaml/.yml/.json``), GraphQL SDL (``.graphql/.gql``) and ``.proto`` files.

    :param paths: files and folders (folders are walked).
    :param profile: ``strict``, ``default`` or ``examples``; ignored when ``config`` is an
        :class:`ApiReviewConfig` (its profile wins).
    :param config: an :class:`ApiReviewConfig`, a path to a TOML file (``[tool.dataeng.api]`` or
        top-level keys) or a dict of settings.
    """
    t0 = time.perf_counter()
    if isinstance(config, ApiReviewConfig):
        cfg = config
    elif isinstance(config, dict):
        cfg = load_api_config(overrides={"profile": profile, **config})
    elif config is not None:
        cfg = load_api_config(pyproject=config, profile=profile)
    else:
        cfg = load_api_config(profile=profile)
    files, reports = collect_api_files(paths, cfg)
    result = ApiReviewResult(profile=cfg.profile)
    for path, explicit in files:
        report, findings = _review_file(path, explicit, cfg)
        if report is None:
            continue
        reports.append(report)
        result.findings.extend(findings)
        result.suppressed += report.suppressed
    result.files = sorted(reports, key=lambda r: r.path)
    result.findings.sort(key=lambda f: (f.path, f.line, f.rule_id, f.id))
    result.elapsed_seconds = time.perf_counter() - t0
    return result


def _review_file(
    path: str, explicit: bool, cfg: ApiReviewConfig
) -> tuple[ApiFileReport | None, list[Finding]]:
    kind = kind_of(path)
    if kind is None:
        return ApiFileReport(
            path=path,
            kind="error",
            status="error",
            error=f"unknown contract type: expected one of {', '.join(ALL_SUFFIXES)}",
        ), []
    try:
        size = os.path.getsize(path)
        if size > cfg.max_file_bytes:
            return ApiFileReport(
                path=path,
                kind="error",
                status="error",
                error=f"file is {size} bytes, over the {cfg.max_file_bytes}-byte limit",
            ), []
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        return ApiFileReport(path=path, kind="error", status="error", error=f"cannot read: {exc}"), []
    try:
        doc = parse_document(path, text, kind)
    except NotOpenApiError:
        if not explicit:
            return None, []  # a walked YAML/JSON file that merely mentions "openapi"
        return ApiFileReport(
            path=path,
            kind="error",
            status="error",
            error=f"{path}: not an OpenAPI 3 document (no top-level `openapi` key)",
        ), []
    except ApiParseError as exc:
        return ApiFileReport(path=path, kind="error", status="error", error=str(exc)), []
    except RecursionError:
        return ApiFileReport(path=path, kind="error", status="error", error="file is nested too deeply"), []
    report, findings, _ = review_document(doc, cfg)
    return report, findings
