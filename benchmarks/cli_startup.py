#!/usr/bin/env python
"""Wall time of ``dataeng`` commands from a fresh process, against baselines measured in the same run.

Timed, each as a new process (best of ``--repeats``, the rounds interleaved so a busy machine slows
every line alike; one warm-up round first, so bytecode caches exist as after a normal install):

  * ``python -c pass``                               - the interpreter alone (the baseline)
  * ``python -c "import typer, pydantic, numpy, scipy.special"`` - the libraries ``stats analyze``
    cannot do without (the floor for that command)
  * ``dataeng --help``
  * ``dataeng stats analyze core/examples/stats_analyze_example.json``
  * with ``--compare PYTHON``: the same two ``dataeng`` lines from another environment's install
    (e.g. one built from an older commit), for a before/after in one run

Prints wall seconds, CPU seconds (user + system of the child: less sensitive to other processes on a
shared machine than the wall clock) and the ratios of the wall time to the baseline and to the
library floor. No timed assertion anywhere.

Run:  .venv/bin/python benchmarks/cli_startup.py [--repeats 7] [--compare /tmp/old/.venv/bin/python]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "core" / "examples" / "stats_analyze_example.json"
FLOOR_IMPORTS = "import typer, pydantic, numpy, scipy.special"


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    # as a user's shell: bytecode is cached (some CI images set this variable, which makes every run
    # recompile every module it imports and measures the compiler instead)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.setdefault("MPLBACKEND", "Agg")
    return env


def _commands(python: str, label: str) -> dict[str, list[str]]:
    dataeng = str(Path(python).with_name("dataeng"))
    return {
        f"{label}dataeng --help": [dataeng, "--help"],
        f"{label}dataeng stats analyze <example>": [dataeng, "stats", "analyze", str(EXAMPLE)],
    }


def _once(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall, cpu) seconds of one run of ``argv``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr[-1000:]}")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--compare", help="another environment's python (its dataeng is timed too)")
    args = parser.parse_args()

    env = _environment()
    lines: dict[str, list[str]] = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "libraries (typer, pydantic, numpy, scipy.special)": [sys.executable, "-c", FLOOR_IMPORTS],
    }
    if args.compare:
        lines |= _commands(args.compare, "[compare] ")
    lines |= _commands(sys.executable, "")

    best = {name: float("inf") for name in lines}
    best_cpu = {name: float("inf") for name in lines}
    for round_ in range(args.repeats + 1):
        for name, argv in lines.items():
            elapsed, cpu = _once(argv, env)
            if round_:  # round 0 warms the bytecode and file caches
                best[name] = min(best[name], elapsed)
                best_cpu[name] = min(best_cpu[name], cpu)

    base = best["python -c pass"]
    floor = best["libraries (typer, pydantic, numpy, scipy.special)"]
    print(f"best of {args.repeats}, {sys.executable}, load average {os.getloadavg()[0]:.1f}")
    print(f"{'command':<52} {'wall s':>7} {'cpu s':>7} {'x baseline':>11} {'x libraries':>12}")
    for name, seconds in best.items():
        print(
            f"{name:<52} {seconds:7.3f} {best_cpu[name]:7.3f} {seconds / base:10.1f}x {seconds / floor:11.2f}x"
        )


if __name__ == "__main__":
    main()
