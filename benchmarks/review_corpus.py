"""The pipeline reviewer on other people's code: a corpus of public DAG and flow files, reviewed end
to end (no crash, no hang), counted per rule, and a seeded sample of findings to judge by hand.

The corpus is a list (``benchmarks/review_corpus.json``: repository, commit, file paths) of files
from public GitHub repositories nobody here wrote. The files themselves are not committed: they are
assembled from local snapshots of those repositories into ``benchmarks/.corpus/`` (git-ignored).

    # 1. snapshots: one bare or normal git clone per repository, at <mirror>/<owner>+<name>/repo
    #    (git clone https://github.com/<owner>/<name> <mirror>/<owner>+<name>/repo)
    .venv/bin/python benchmarks/review_corpus.py assemble [--mirror /work/.mirror]
    # 2. review everything: per-repository files/DAGs/errors, per-rule counts, timing; exit 1 on a crash
    .venv/bin/python benchmarks/review_corpus.py run [--profile default] [--airflow-version 3.3]
    # 3. the judging sample (seeded): rewrites the sample rows of benchmarks/review_corpus_judging.csv,
    #    keeping verdicts already written for the same finding ids
    .venv/bin/python benchmarks/review_corpus.py sample [--seed 14] [--size 80]
    # 4. precision per rule from the judged sample (the table in docs/review.md)
    .venv/bin/python benchmarks/review_corpus.py precision

``select`` rebuilds the corpus list from the snapshots (every ``.py`` file that imports airflow or
prefect, at most ``--per-repo`` per repository, chosen by a hash of the path so the pick is stable).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
LIST = HERE / "review_corpus.json"
JUDGING = HERE / "review_corpus_judging.csv"
CORPUS = HERE / ".corpus"
#: kept out of the corpus on purpose: used by others for independent checks of the reviewer
EXCLUDED = (
    "mozilla/telemetry-airflow",
    "astronomer/astronomer-cosmos",
    "cal-itp/data-infra",
    "elifesciences/data-hub-core-airflow-dags",
    "prefeitura-rio/",
    "DataTalksClub/",
    "apache/airflow",
)
SOURCES = (
    "airflow-plugins/Example-Airflow-DAGs",
    "NYCPlanning/db-airflow-dags",
    "cityofaustin/atd-prefect",
    "PrefectHQ/prefect-recipes",
    "aws-samples/amazon-mwaa-examples",
    "Newton-School/airflow-dags",
    "superdao-inc/airflow-dags",
    "Greenstand/treetracker-airflow-dags",
    "TogetherCrew/airflow-dags",
    "digital-land/airflow-dags",
    "anna-geller/prefect-deployment-patterns",
    "mortenoh/prefect-examples",
)
FIELDS = ["n", "id", "rule", "severity", "repo", "path", "line", "message", "verdict", "reason"]


def _git(repo_dir: Path, *args: str) -> bytes:
    return subprocess.run(["git", "-C", str(repo_dir), *args], capture_output=True, check=True).stdout


def _snapshot(mirror: Path, repo: str) -> Path:
    base = mirror / repo.replace("/", "+")
    for cand in (base / "repo", base / "repo.git", base):
        if (cand / ".git").exists() or (cand / "HEAD").exists():
            return cand
    sys.exit(f"no snapshot of {repo} under {base} (clone https://github.com/{repo} there)")


def select(mirror: Path, per_repo: int) -> None:
    entries = []
    for repo in SOURCES:
        assert not any(repo.startswith(x) for x in EXCLUDED), repo
        snap = _snapshot(mirror, repo)
        commit = _git(snap, "rev-parse", "HEAD").decode().strip()
        names = [
            n
            for n in _git(snap, "ls-tree", "-r", "--name-only", commit).decode().splitlines()
            if n.endswith(".py")
        ]
        picked = []
        for name in names:
            text = _git(snap, "show", f"{commit}:{name}").decode("utf-8", "replace")
            if any(m in text for m in ("from airflow", "import airflow", "from prefect", "import prefect")):
                picked.append(name)
        picked.sort(key=lambda n: hashlib.sha1(f"{repo}:{n}".encode()).hexdigest())
        entries.append({"repo": repo, "commit": commit, "paths": sorted(picked[:per_repo])})
        print(f"{repo}: {len(picked)} DAG/flow files, {min(len(picked), per_repo)} kept")
    LIST.write_text(json.dumps(entries, indent=1) + "\n", encoding="utf-8")
    print(f"{sum(len(e['paths']) for e in entries)} files from {len(entries)} repositories -> {LIST}")


def assemble(mirror: Path) -> None:
    entries = json.loads(LIST.read_text(encoding="utf-8"))
    n = 0
    for e in entries:
        snap = _snapshot(mirror, e["repo"])
        dest = CORPUS / e["repo"].replace("/", "__")
        for path in e["paths"]:
            target = dest / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(_git(snap, "show", f"{e['commit']}:{path}"))
            n += 1
    print(f"assembled {n} files from {len(entries)} repositories into {CORPUS}")


def _corpus_folders() -> list[Path]:
    entries = json.loads(LIST.read_text(encoding="utf-8"))
    folders = [CORPUS / e["repo"].replace("/", "__") for e in entries]
    missing = [f for f in folders if not f.is_dir()]
    if missing:
        sys.exit(f"corpus not assembled ({missing[0]} missing): run `{Path(__file__).name} assemble` first")
    return folders


def _review_all(profile: str, airflow_version: str):  # type: ignore[no-untyped-def]
    """Each repository reviewed on its own (it is its own deployment: a dag_id repeated in another
    repository is no duplicate), merged into one result."""
    from dataeng_agents.core.review import review_paths

    results = [
        review_paths([folder], profile=profile, airflow_version=airflow_version)
        for folder in _corpus_folders()
    ]
    merged = results[0]
    for r in results[1:]:
        merged.files += r.files
        merged.findings += r.findings
        merged.unresolved += r.unresolved
        merged.suppressed += r.suppressed
    return merged


def run(profile: str, airflow_version: str) -> None:
    t0 = time.process_time()
    wall = time.perf_counter()
    result = _review_all(profile, airflow_version)
    cpu, wall = time.process_time() - t0, time.perf_counter() - wall
    by_repo: dict[str, Counter[str]] = {}
    for f in result.files:
        repo = Path(f.path).relative_to(CORPUS).parts[0].replace("__", "/")
        c = by_repo.setdefault(repo, Counter())
        c["files"] += 1
        c["dags/flows"] += len(f.dags)
        c["file errors"] += f.status == "error"
        c[f"kind {f.kind}"] += 1
    print(
        f"corpus: {len(result.files)} files from {len(by_repo)} repositories; profile {profile}, "
        f"Airflow {airflow_version}; {cpu:.2f} s CPU, {wall:.2f} s wall"
    )
    for repo, c in sorted(by_repo.items()):
        print(f"  {repo:45s} " + ", ".join(f"{k} {v}" for k, v in sorted(c.items())))
    counts = result.counts()
    print(
        f"findings: {len(result.findings)} ({counts['error']} error, {counts['warn']} warn, {counts['info']} info); "
        f"unresolved {len(result.unresolved)} (of which not fully resolved files: "
        f"{len({u.path for u in result.unresolved if u.rule_id == '*'})})"
    )
    per_rule: dict[str, Counter[str]] = {}
    for f in result.findings:
        per_rule.setdefault(f.rule_id, Counter())[f.severity.value] += 1
    for rule, c in sorted(per_rule.items()):
        print(f"  {rule:8s} {sum(c.values()):5d}  " + ", ".join(f"{k} {v}" for k, v in sorted(c.items())))
    for f in result.files:
        if f.status == "error":
            print(f"  could not review {f.path}: {f.error}")


def sample(seed: int, size: int, profile: str, airflow_version: str) -> None:
    """A seeded sample, stratified by rule and severity: up to 8 error-level findings and 3 others per
    rule, then uniform over the rest up to ``size``."""
    result = _review_all(profile, airflow_version)
    findings = sorted(result.findings, key=lambda f: f.id)
    rng = random.Random(seed)
    by_rule: dict[tuple[str, str], list[int]] = {}
    for i, f in enumerate(findings):
        by_rule.setdefault((f.rule_id, f.severity.value), []).append(i)
    chosen: list[int] = []
    for rule, severity in sorted(by_rule):
        idx = by_rule[(rule, severity)]
        # error-level findings gate CI: judged more deeply
        chosen += rng.sample(idx, min(8 if severity == "error" else 3, len(idx)))
    rest = [i for i in range(len(findings)) if i not in set(chosen)]
    chosen += rng.sample(rest, max(0, min(len(rest), size - len(chosen))))
    old = {r["id"]: r for r in _read_judging()}
    rows = []
    for n, i in enumerate(sorted(chosen, key=lambda i: (findings[i].rule_id, findings[i].id)), start=1):
        f = findings[i]
        rel = Path(f.path).relative_to(CORPUS)
        prev = old.get(f.id, {})
        rows.append(
            {
                "n": n,
                "id": f.id,
                "rule": f.rule_id,
                "severity": f.severity.value,
                "repo": rel.parts[0].replace("__", "/"),
                "path": "/".join(rel.parts[1:]),
                "line": f.line,
                "message": f.message,
                "verdict": prev.get("verdict", ""),
                "reason": prev.get("reason", ""),
            }
        )
    with JUDGING.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(rows)
    print(f"{len(rows)} findings sampled (seed {seed}) from {len(findings)} -> {JUDGING}")


def _read_judging() -> list[dict[str, str]]:
    if not JUDGING.is_file():
        return []
    with JUDGING.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def precision() -> None:
    rows = _read_judging()
    per: dict[tuple[str, str], Counter[str]] = {}
    for r in rows:
        per.setdefault((r["rule"], r["severity"]), Counter())[r["verdict"] or "unjudged"] += 1
    total: Counter[str] = Counter()
    print("| Rule | Severity | Judged | True | False | Debatable | Precision (true / (true + false)) |")
    print("|---|---|---|---|---|---|---|")
    for (rule, sev), c in sorted(per.items()):
        total.update(c)
        tf = c["true"] + c["false"]
        prec = f"{c['true'] / tf:.0%}" if tf else "-"
        print(
            f"| {rule} | {sev} | {sum(c.values())} | {c['true']} | {c['false']} | {c['debatable']} | {prec} |"
        )
    tf = total["true"] + total["false"]
    print(
        f"| **all** | | {sum(total.values())} | {total['true']} | {total['false']} | {total['debatable']} | "
        f"**{total['true'] / tf:.1%}** |"
        if tf
        else ""
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("select")
    s.add_argument("--mirror", type=Path, default=Path("/work/.mirror"))
    s.add_argument("--per-repo", type=int, default=60)
    a = sub.add_parser("assemble")
    a.add_argument("--mirror", type=Path, default=Path("/work/.mirror"))
    for name in ("run", "sample"):
        p = sub.add_parser(name)
        p.add_argument("--profile", default="default")
        p.add_argument("--airflow-version", default="3.3")
        if name == "sample":
            p.add_argument("--seed", type=int, default=14)
            p.add_argument("--size", type=int, default=80)
    sub.add_parser("precision")
    args = ap.parse_args()
    if args.cmd == "select":
        select(args.mirror, args.per_repo)
    elif args.cmd == "assemble":
        assemble(args.mirror)
    elif args.cmd == "run":
        run(args.profile, args.airflow_version)
    elif args.cmd == "sample":
        sample(args.seed, args.size, args.profile, args.airflow_version)
    else:
        precision()


if __name__ == "__main__":
    main()
