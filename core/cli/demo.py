"""`dataeng demo`: generate the sample e-commerce experiment, analyse it, write the report.

Default output (relative to the working directory)::

    dataeng-demo/demo.duckdb              the generated warehouse (users, exposures, orders, sessions)
    dataeng-demo/report/report.html       the self-contained HTML report (open it in a browser)
    dataeng-demo/report/report.md         the same report as Markdown
    dataeng-demo/report/report.json       the full ExperimentReport model
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from dataeng_agents.core.cli._guard import fail, guarded, run_guarded
from dataeng_agents.core.cli.experiment import narrator

DEFAULT_DEMO_DIR = "dataeng-demo"


@guarded
def demo_command(
    out: Annotated[
        str, typer.Option("--out", "-o", help="Output directory (warehouse file and report/).")
    ] = DEFAULT_DEMO_DIR,
    seed: Annotated[int, typer.Option(help="Random seed of the generated data.")] = 7,
    users: Annotated[int, typer.Option(help="Number of users (units) to generate.")] = 120_000,
    aa: Annotated[bool, typer.Option("--aa", help="Generate an A/A test (no planted effects).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the compact summary as JSON.")] = False,
) -> None:
    """Generate a seeded e-commerce experiment into DuckDB, analyse it and write the report."""
    if users < 1000:
        fail("--users: at least 1000 users, so that every arm and day has data")

    def run() -> None:
        from dataeng_agents.core.experiment import analyze_experiment, load_experiment_config
        from dataeng_agents.core.report import write_report
        from dataeng_agents.core.warehouse import DuckDBWarehouse
        from dataeng_agents.core.warehouse.sample_data import DEFAULT_EFFECTS, aa_effects, generate
        from rich.console import Console
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        root = Path(out)
        root.mkdir(parents=True, exist_ok=True)
        db_path = root / "demo.duckdb"
        console = Console(stderr=True)
        t0 = time.perf_counter()
        effects = aa_effects(tuple(DEFAULT_EFFECTS)) if aa else DEFAULT_EFFECTS
        with Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description:<34}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TimeElapsedColumn(),
            console=console,
        ) as bar:
            gen = bar.add_task("generating data", total=1.0)
            sample = generate(
                db_path,
                users=users,
                seed=seed,
                effects=effects,
                progress=lambda step, frac: bar.update(
                    gen, completed=frac, description=f"generating data: {step}"
                ),
            )
            bar.update(gen, completed=1.0, description=f"generated {sum(sample.rows.values()):,} rows")
            steps = ["building the query", "running the query", "analysing", "writing the narrative", "done"]
            ana = bar.add_task("analysing", total=len(steps))

            def on_step(name: str) -> None:
                bar.update(ana, completed=steps.index(name) if name in steps else 0, description=name)

            cfg = load_experiment_config(_demo_config())
            report = analyze_experiment(cfg, DuckDBWarehouse(db_path), narrator=narrator(), progress=on_step)
            bar.update(ana, completed=len(steps), description="analysed")
            wr = bar.add_task("writing the report", total=1)
            paths = write_report(report, root / "report")
            bar.update(wr, completed=1, description="report written")
        elapsed = time.perf_counter() - t0
        summary = report.summary()
        if as_json:
            typer.echo(
                json.dumps(
                    {
                        **summary,
                        "files": paths,
                        "warehouse": str(db_path.resolve()),
                        "seconds": round(elapsed, 2),
                    },
                    indent=2,
                )
            )
            return
        _print(summary, paths, str(db_path.resolve()), elapsed, sample.rows)

    run_guarded(run)


def _demo_config() -> dict[str, Any]:
    """The bundled ``checkout_demo.yaml`` as a dict (its ``warehouse:`` is replaced by the caller)."""
    from importlib.resources import files

    import yaml

    text = files("dataeng_agents.core.examples.experiments").joinpath("checkout_demo.yaml").read_text("utf-8")
    raw: dict[str, Any] = yaml.safe_load(text)
    raw.pop("warehouse", None)
    return raw


def _print(
    summary: dict[str, Any], paths: dict[str, str], db: str, elapsed: float, rows: dict[str, int]
) -> None:
    from dataeng_agents.core.cli.experiment import verdict_line
    from rich.console import Console

    console = Console()
    console.print(verdict_line(summary))
    for vname, v in summary["per_variant"].items():
        console.print(f"  {vname}: {v}")
    console.print(
        "warehouse " + db + "  (" + ", ".join(f"{k} {n:,}" for k, n in rows.items()) + ")", soft_wrap=True
    )
    for fmt, path in paths.items():
        console.print(f"{fmt:<9} {path}", soft_wrap=True)
    console.print(f"done in {elapsed:.1f} s")
