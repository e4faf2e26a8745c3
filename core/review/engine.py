"""``review_paths``: collect files, analyse each one statically, apply profiles and suppressions.

A file that cannot be read or parsed (syntax error, bad bytes, too big, a directory named ``x.py``,
a symlink loop) gets a :class:`FileReport` with ``status="error"`` and the run continues.
"""

from __future__ import annotations

import ast
import codecs
import io
import operator
import os
import re
import stat
import sys
import time
import tokenize
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from dataeng_agents.core.errors import ConfigError
from dataeng_agents.core.review.airflow_checks import check_hardcoded_secrets, review_airflow_module
from dataeng_agents.core.review.airflow_model import build_module
from dataeng_agents.core.review.config import ReviewConfig, resolve_config
from dataeng_agents.core.review.context import CheckContext, RawFinding
from dataeng_agents.core.review.models import FileReport, Finding, ReviewResult, Severity, Unresolved
from dataeng_agents.core.review.prefect_checks import review_prefect_module
from dataeng_agents.core.review.pyast import Index, import_map
from dataeng_agents.core.review.rules import RULES

PY_SUFFIXES = (".py",)
SPEC_SUFFIXES = (".yaml", ".yml", ".json")
_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
_IGNORE = re.compile(r"#\s*dataeng:\s*ignore(?P<file>-file)?\[(?P<rules>[A-Za-z0-9_,\s*]+)\]")
_SPEC_HINT = re.compile(r"^(sources|sinks)\s*:", re.M)
_FINDING_ORDER = operator.attrgetter("path", "line", "rule_id", "id")
# O_NONBLOCK: opening a FIFO (or a device) named x.py must not wait for a writer; fstat then rejects it
_READ_FLAGS = (
    os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0)
)


@dataclass
class _FileOutcome:
    report: FileReport
    raw: list[RawFinding] = field(default_factory=list)
    unresolved: list[Unresolved] = field(default_factory=list)
    dag_ids: list[tuple[str, int]] = field(default_factory=list)
    suppress_lines: dict[int, set[str]] = field(default_factory=dict)
    suppress_file: set[str] = field(default_factory=set)


def collect_files(paths: Sequence[str | Path], config: ReviewConfig) -> tuple[list[str], list[FileReport]]:
    """Reviewable files under ``paths`` (sorted, deduplicated) plus error reports for unusable entries."""
    files: list[str] = []
    errors: list[FileReport] = []
    seen: set[str] = set()

    def add(p: str) -> None:
        if p not in seen and not config.excluded(p):
            seen.add(p)
            files.append(p)

    def unreadable(exc: OSError) -> None:  # os.walk's error callback: a folder it cannot list
        errors.append(
            FileReport(
                path=str(exc.filename),
                kind="error",
                status="error",
                error=f"cannot list directory: {exc.strerror or exc}",
            )
        )

    for raw in paths:
        p = str(raw)
        try:
            st = os.stat(p)
        except OSError as exc:
            reason = "symlink loop" if exc.errno == 40 else exc.strerror or str(exc)
            errors.append(FileReport(path=p, kind="error", status="error", error=f"cannot open: {reason}"))
            continue
        if not stat.S_ISDIR(st.st_mode):
            add(p)
            continue
        if p.endswith(PY_SUFFIXES) and st:
            errors.append(
                FileReport(
                    path=p,
                    kind="error",
                    status="error",
                    error="is a directory, not a Python file (its contents are reviewed)",
                )
            )
        for root, dirnames, filenames in os.walk(p, followlinks=False, onerror=unreadable):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "__pycache__")))
            for d in dirnames:
                full = os.path.join(root, d)
                if d.endswith(PY_SUFFIXES):
                    errors.append(
                        FileReport(
                            path=full, kind="error", status="error", error="is a directory, not a Python file"
                        )
                    )
                if os.path.islink(full) and d.endswith(PY_SUFFIXES):
                    continue
            for name in sorted(filenames):
                full = os.path.join(root, name)
                if name.endswith(PY_SUFFIXES):
                    if os.path.islink(full) and not os.path.exists(full):
                        errors.append(
                            FileReport(
                                path=full,
                                kind="error",
                                status="error",
                                error="cannot open: broken symlink or symlink loop",
                            )
                        )
                        continue
                    add(full)
                elif name.endswith(SPEC_SUFFIXES) and _looks_like_spec(full):
                    add(full)
    return files, errors


def _looks_like_spec(path: str) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(65536).decode("utf-8", "replace")
    except OSError:
        return False
    return len(_SPEC_HINT.findall(head)) >= 2


def _decode(data: bytes) -> str:
    if b"coding" not in data[:400]:  # no PEP 263 cookie: UTF-8 (tokenize's detection is slow Python)
        # the "utf-8-sig" codec is Python code around the C decoder: used only when there is a BOM to drop
        return data.decode("utf-8-sig") if data.startswith(codecs.BOM_UTF8) else data.decode("utf-8")
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError:
        encoding = "utf-8"
    return data.decode(encoding)


def _suppressions(source: str, outcome: _FileOutcome) -> None:
    if "dataeng:" not in source:
        return
    for n, line in enumerate(source.splitlines(), start=1):
        for m in _IGNORE.finditer(line):
            rules = {r.strip() for r in m.group("rules").split(",") if r.strip()}
            if m.group("file"):
                outcome.suppress_file |= rules
            else:
                outcome.suppress_lines.setdefault(n, set()).update(rules)


def review_file(
    path: str, config: ReviewConfig, airflow_version: str, enabled_rules: frozenset[str] | None = None
) -> _FileOutcome:
    """Read, parse and check one file; never raises for a bad file (the reason is in the report).

    :param enabled_rules: ``config.enabled_rules()``, when the caller reviews many files with one config.
    """
    ctx = CheckContext(
        path=path,
        config=config,
        airflow_version=airflow_version,
        enabled_rules=enabled_rules if enabled_rules is not None else config.enabled_rules(),
    )
    limit = config.max_file_bytes
    try:
        # fstat of the open file instead of a stat of the path (one path lookup per file, not two);
        # plain descriptor calls: a buffered file object costs as much again as the reading itself
        fd = os.open(path, _READ_FLAGS)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                what = (
                    "a FIFO"
                    if stat.S_ISFIFO(st.st_mode)
                    else "a device"
                    if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)
                    else "a socket"
                    if stat.S_ISSOCK(st.st_mode)
                    else "not a file"
                )
                return _FileOutcome(
                    FileReport(path=path, kind="error", status="error", error=f"not a regular file ({what})")
                )
            size = st.st_size
            if size > limit:
                return _FileOutcome(
                    FileReport(
                        path=path,
                        kind="error",
                        status="error",
                        error=f"file is {size} bytes, over the {limit}-byte limit (max_file_bytes)",
                    )
                )
            data = os.read(fd, size + 1)
            if len(data) != size:  # grew or shrank while read: read on to the end, up to the limit
                chunks = [data]
                total = len(data)
                while total <= limit and (chunk := os.read(fd, 65536)):
                    chunks.append(chunk)
                    total += len(chunk)
                if total > limit:
                    return _FileOutcome(
                        FileReport(
                            path=path,
                            kind="error",
                            status="error",
                            error=f"file grew over the {limit}-byte limit while read (max_file_bytes)",
                        )
                    )
                data = b"".join(chunks)
        finally:
            os.close(fd)
    except OSError as exc:
        reason = "symlink loop" if exc.errno == 40 else exc.strerror or str(exc)
        return _FileOutcome(
            FileReport(path=path, kind="error", status="error", error=f"cannot read: {reason}")
        )
    try:
        source = _decode(data)
    except (UnicodeDecodeError, LookupError) as exc:
        detail = (
            f"byte 0x{data[exc.start]:02x} at offset {exc.start}"
            if isinstance(exc, UnicodeDecodeError)
            else str(exc)
        )
        return _FileOutcome(
            FileReport(
                path=path,
                kind="error",
                status="error",
                error=f"not valid text in its declared encoding ({detail})",
            )
        )
    if path.endswith(SPEC_SUFFIXES):
        return _review_spec_file(path, source, ctx)
    if not source or source.isspace():  # what `not source.strip()` tests, without copying the text
        return _FileOutcome(FileReport(path=path, kind="python", status="reviewed", error="empty file"))
    try:
        tree = ast.parse(source, filename=path)
    except SyntaxError as exc:
        return _FileOutcome(
            FileReport(
                path=path,
                kind="error",
                status="error",
                # a file may use syntax of a newer Python (PEP 701 f-strings in 3.12): say which one parsed it
                error=f"syntax error at line {exc.lineno}: {exc.msg} (parsed by Python {_PYTHON})",
            )
        )
    except (ValueError, RecursionError, MemoryError) as exc:
        return _FileOutcome(FileReport(path=path, kind="error", status="error", error=f"cannot parse: {exc}"))
    index = Index(tree)
    imports = import_map(tree, index)
    # the top-level package of every import, once: `v == "airflow" or v.startswith("airflow.")`
    roots = {v.partition(".")[0] for v in imports.values()}
    is_airflow = "airflow" in roots
    # the report is built once at the end: assigning to a pydantic model field goes through Python code
    kind: Literal["airflow", "prefect", "python"] = "python"
    dags: list[str] = []
    tasks = 0
    dag_ids: list[tuple[str, int]] = []
    try:
        if is_airflow:
            mod = build_module(path, source, tree, index, imports)
            review_airflow_module(ctx, mod)
            kind = "airflow"
            dags = [d.name for d in mod.dags]
            tasks = len(mod.tasks)
            dag_ids = [(d.dag_id, d.line) for d in mod.dags if d.dag_id]
            # DAGs/tasks built out of sight: the file is not fully resolved, never a clean review
            ctx.unresolved += [
                Unresolved(rule_id="*", path=path, line=line, subject=subject, attribute="dag", reason=reason)
                for line, subject, reason in mod.opaque
            ]
            mod.release()
        if "prefect" in roots:  # what prefect_checks.is_prefect_module(imports) tests
            fns = review_prefect_module(ctx, tree, source, index)
            kind = "prefect" if not is_airflow else kind
            dags += [f.name for f in fns if f.kind == "flow"]
            tasks += sum(1 for f in fns if f.kind == "task")
        elif not is_airflow:
            # the modules beside the DAGs and flows (dags/common/settings.py, utils/postgres.py) hold the
            # connection settings they use: a secret hard-coded there is as exposed as in a DAG file
            check_hardcoded_secrets(ctx, index, source)
    except RecursionError:
        return _FileOutcome(
            FileReport(path=path, kind="error", status="error", error="file is nested too deeply")
        )
    report = FileReport(path=path, kind=kind, dags=dags, tasks=tasks)
    outcome = _FileOutcome(report, ctx.findings, ctx.unresolved, dag_ids)
    _suppressions(source, outcome)
    return outcome


def _review_spec_file(path: str, source: str, ctx: CheckContext) -> _FileOutcome:
    from dataeng_agents.core.pipeline_spec import load_spec
    from dataeng_agents.core.review.spec_checks import review_spec, yaml_line_index

    try:
        spec = load_spec(source if source.strip() else "{}")
    except ConfigError as exc:
        return _FileOutcome(FileReport(path=path, kind="error", status="error", error=f"invalid spec: {exc}"))
    review_spec(ctx, spec, yaml_line_index(source))
    outcome = _FileOutcome(FileReport(path=path, kind="spec", dags=[spec.name]), ctx.findings, ctx.unresolved)
    _suppressions(source, outcome)
    return outcome


def _apply_runtime(
    result: ReviewResult,
    outcomes: dict[str, _FileOutcome],
    config: ReviewConfig,
    *,
    python: str,
    timeout: float,
) -> None:
    from dataeng_agents.core.review.runtime import run_dagbag

    files = [p for p, o in outcomes.items() if o.report.kind == "airflow"]
    data = run_dagbag(files, python=python, timeout=timeout)
    for path, info in data["files"].items():
        o = outcomes.get(path)
        if o is None:
            continue
        o.report.parse_seconds = float(info.get("parse_seconds") or 0.0)
        if info.get("error"):
            o.report.error = f"runtime import error: {info['error']}"
        if o.report.parse_seconds > config.parse_time_budget_seconds and config.enabled("PERF004"):
            o.raw.append(
                RawFinding(
                    "PERF004",
                    1,
                    0,
                    path,
                    f"file takes {o.report.parse_seconds:.2f} s to parse "
                    f"(budget {config.parse_time_budget_seconds:g} s)",
                )
            )
        tasks = {(d["dag_id"], t["task_id"]): t for d in info.get("dags", []) for t in d["tasks"]}
        by_task = {tid: t for (_, tid), t in tasks.items()}
        still: list[Unresolved] = []
        for u in o.unresolved:
            t = by_task.get(u.subject.split(".", 1)[-1])
            decided = _decide(u, t)
            if decided is None:
                still.append(u)
            elif decided:
                o.raw.append(RawFinding(u.rule_id, u.line, 0, u.subject, f"{decided} (resolved at runtime)"))
        o.unresolved = still


def _decide(u: Unresolved, task: dict[str, object] | None) -> str | bool | None:
    """A message when the runtime value violates the rule, False when it passes, None when still unknown."""
    if task is None:
        return None
    name = u.subject.split(".", 1)[-1]
    if u.rule_id == "REL001":
        return f"task '{name}' has no retries" if not task.get("retries") else False
    if u.rule_id == "REL002":
        return f"task '{name}' has no execution_timeout" if task.get("execution_timeout") is None else False
    if u.rule_id == "OBS003":
        return (
            f"task '{name}' has the default owner"
            if task.get("owner") in {None, "", "airflow", "root"}
            else False
        )
    if u.rule_id == "REL004":
        return f"sensor '{name}' has the 7-day default timeout" if task.get("timeout") == 604800 else False
    return None


def review_paths(
    paths: Sequence[str | Path],
    *,
    profile: str | None = None,
    airflow_version: str = "3.3",
    runtime: bool = False,
    config: ReviewConfig | str | Path | dict[str, Any] | None = None,
    python: str | None = None,
    runtime_timeout: float = 300.0,
    progress: bool = False,
) -> ReviewResult:
    """Review Airflow DAG files, Prefect flow files and pipeline specs under ``paths``.

    :param paths: files and folders (folders are walked; ``.py`` plus ``.yaml/.yml/.json`` specs).
    :param profile: ``strict``, ``default`` or ``examples``; ``None`` keeps the config's profile. A
        profile given here wins over the config's.
    :param airflow_version: target Airflow version (config defaults and removed APIs depend on it).
    :param runtime: also load the files with Airflow's DagBag in a subprocess (``python``).
    :param config: a :class:`ReviewConfig`, a path to a TOML file (``[tool.dataeng.review]`` or top-level
        keys), a dict of settings, or ``None``: the ``pyproject.toml`` found upwards from the first path
        (see :func:`~dataeng_agents.core.review.config.resolve_config`, which every entry point uses).
    :param python: interpreter with Airflow installed, for ``runtime`` (default ``$DATAENG_AIRFLOW_PYTHON``,
        else the current interpreter — right inside an Airflow worker).
    :param progress: show a rich progress bar when there are many files.
    """
    if not _valid_version(airflow_version):
        raise ConfigError(
            "airflow_version", f"expected a version like '3.3' or '2.10', got {airflow_version!r}"
        )
    cfg = resolve_config(config, profile=profile, search_from=paths[0] if paths else None)
    return _review(
        paths,
        cfg,
        airflow_version,
        runtime=runtime,
        python=python,
        runtime_timeout=runtime_timeout,
        progress=progress,
    )


def _review(
    paths: Sequence[str | Path],
    cfg: ReviewConfig,
    airflow_version: str,
    *,
    runtime: bool,
    python: str | None,
    runtime_timeout: float,
    progress: bool,
) -> ReviewResult:
    t0 = time.perf_counter()
    files, error_reports = collect_files(paths, cfg)
    result = ReviewResult(profile=cfg.profile, airflow_version=airflow_version, runtime=runtime)
    outcomes: dict[str, _FileOutcome] = {}
    enabled = cfg.enabled_rules()
    if progress and len(files) > 10:
        from rich.progress import Progress

        with Progress(transient=True) as bar:
            task = bar.add_task("Reviewing", total=len(files))
            for f in files:
                outcomes[f] = review_file(f, cfg, airflow_version, enabled)
                bar.advance(task)
    else:
        for f in files:
            outcomes[f] = review_file(f, cfg, airflow_version, enabled)
    if not runtime:
        return _assemble(result, outcomes, error_reports, cfg, t0)
    interpreter = python or os.environ.get("DATAENG_AIRFLOW_PYTHON") or sys.executable
    _apply_runtime(result, outcomes, cfg, python=interpreter, timeout=runtime_timeout)
    return _assemble(result, outcomes, error_reports, cfg, t0)


def _assemble(
    result: ReviewResult,
    outcomes: dict[str, _FileOutcome],
    error_reports: list[FileReport],
    cfg: ReviewConfig,
    t0: float,
) -> ReviewResult:
    # duplicate dag_ids across files
    first: dict[str, tuple[str, int]] = {}
    for path, o in outcomes.items():
        for dag_id, line in o.dag_ids:
            if dag_id in first and first[dag_id][0] != path and cfg.enabled("SCH006"):
                o.raw.append(
                    RawFinding(
                        "SCH006",
                        line,
                        0,
                        dag_id,
                        f"dag_id '{dag_id}' is also defined in {first[dag_id][0]}:{first[dag_id][1]}",
                    )
                )
            first.setdefault(dag_id, (path, line))
    rules: dict[str, tuple[Severity, str, str]] = {}
    findings = result.findings
    unresolved, reports = result.unresolved, result.files
    total_suppressed = 0
    for path, o in outcomes.items():
        seen: set[tuple[str, int, str]] = set()
        suppressed = kept = 0
        check_suppression = bool(o.suppress_file or o.suppress_lines or cfg.exceptions)
        for raw in o.raw:
            key = (raw.rule_id, raw.line, raw.message)
            if key in seen:
                continue
            seen.add(key)
            if check_suppression and (
                raw.rule_id in o.suppress_file
                or "*" in o.suppress_file
                or raw.rule_id in o.suppress_lines.get(raw.line, ())
                or cfg.excepted(path, raw.rule_id)
            ):
                suppressed += 1
                continue
            rule_id = raw.rule_id
            per_rule = rules.get(rule_id)
            if per_rule is None:
                rule = RULES[rule_id]
                per_rule = rules[rule_id] = (cfg.severity_of(rule_id), rule.category, rule.fix)
            severity, category, fix = per_rule
            if raw.demoted:
                severity = _DEMOTED.get(severity, severity)
            # positional: a keyword call costs twice as much, and a review makes hundreds of findings
            finding_id = Finding.make_id(rule_id, path, raw.subject, raw.message)
            findings.append(
                Finding(
                    finding_id,
                    rule_id,
                    severity,
                    category,
                    path,
                    raw.line,
                    raw.column,
                    raw.message,
                    raw.subject,
                    fix,
                )
            )
            kept += 1
        # the file's raw findings are released as their findings are made (fewer live objects for the
        # cyclic GC to scan)
        o.raw = []
        o.report.suppressed, o.report.findings = suppressed, kept
        total_suppressed += suppressed
        unresolved.extend(o.unresolved)
        reports.append(o.report)
    result.suppressed = total_suppressed
    result.files.extend(error_reports)
    result.files.sort(key=lambda r: r.path)
    result.findings.sort(key=_FINDING_ORDER)
    result.elapsed_seconds = time.perf_counter() - t0
    return result


_DEMOTED = {Severity.error: Severity.warn, Severity.warn: Severity.info}


def _valid_version(v: str) -> bool:
    return bool(re.fullmatch(r"[23](\.\d+){0,2}", v))
