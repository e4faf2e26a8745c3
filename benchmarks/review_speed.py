"""Files per second of the static reviewer vs a bare ``ast.parse`` of the same files, in one run.

The corpus is every example DAG shipped with the Airflow in .venv-airflow (apache-airflow-core's
``airflow/example_dags`` and the standard provider's ``example_dags``), located on disk without
importing Airflow. Target: reviewer throughput >= 0.45x bare parse (pure Python).

    .venv/bin/python benchmarks/review_speed.py [--repeat 5] [--root .venv-airflow]
"""

from __future__ import annotations

import argparse
import ast
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from dataeng_agents.core.review import engine, load_config, review_paths

REPO = Path(__file__).resolve().parents[1]
CONFIG = load_config(profile="default")


def example_dag_files(venv: Path) -> list[Path]:
    site = next(venv.glob("lib/python3*/site-packages"))
    folders = [
        site / "airflow" / "example_dags",
        site / "airflow" / "providers" / "standard" / "example_dags",
    ]
    files = sorted(p for folder in folders for p in folder.rglob("*.py"))
    if not files:
        sys.exit(f"no example DAGs under {site}")
    return files


def bare_parse(files: list[Path]) -> None:
    for f in files:
        ast.parse(f.read_bytes().decode("utf-8"), filename=str(f))


def review(files: list[Path]) -> None:
    # the whole public entry point: file collection, analysis, suppression, Finding objects with ids
    review_paths(files, config=CONFIG, airflow_version="3.3")


def _timed(fn: Callable[[list[Path]], None], files: list[Path]) -> float:
    # CPU time of this process: on a shared machine wall-clock swings with other load
    t0 = time.process_time()
    fn(files)
    return time.process_time() - t0


def review_per_file(files: list[Path]) -> None:
    # only the per-file analysis (read, parse, model, checks), without assembling the result
    for f in files:
        engine.review_file(str(f), CONFIG, "3.3")


def measure(files: list[Path], repeat: int) -> dict[str, list[float]]:
    """Interleave the contenders round by round so load from other processes hits all of them alike."""
    times: dict[str, list[float]] = {"parse": [], "review": [], "per_file": []}
    for _ in range(repeat):
        times["parse"].append(_timed(bare_parse, files))
        times["review"].append(_timed(review, files))
        times["per_file"].append(_timed(review_per_file, files))
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--root", type=Path, default=REPO / ".venv-airflow")
    args = ap.parse_args()
    files = example_dag_files(args.root)
    size = sum(f.stat().st_size for f in files)
    review(files)  # warm-up: imports, regex compilation, page cache
    bare_parse(files)
    times = measure(files, args.repeat)
    parse_best, parse_med = min(times["parse"]), statistics.median(times["parse"])
    review_best, review_med = min(times["review"]), statistics.median(times["review"])
    n = len(files)
    print(
        f"corpus: {n} files, {size / 1024:.0f} KiB (Airflow example DAGs); CPU time, {args.repeat} interleaved rounds"
    )
    print(
        f"bare ast.parse : {n / parse_best:8.0f} files/s  (best {parse_best * 1000:.1f} ms, median {parse_med * 1000:.1f} ms)"
    )
    print(
        f"static review  : {n / review_best:8.0f} files/s  (best {review_best * 1000:.1f} ms, median {review_med * 1000:.1f} ms)"
    )
    ratio = parse_best / review_best
    print(
        f"ratio review/parse throughput (best of {args.repeat}): {ratio:.3f}x  (target >= 0.45x) -> "
        f"{'PASS' if ratio >= 0.45 else 'MISS'}"
    )
    per_file = min(times["per_file"])
    print(
        f"per-file analysis only (engine.review_file, no result assembly): {n / per_file:.0f} files/s, "
        f"{parse_best / per_file:.3f}x"
    )
    print(f"ratio of medians: {parse_med / review_med:.3f}x")


if __name__ == "__main__":
    main()
