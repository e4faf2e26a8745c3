"""`dataeng experiment explore | hypothesis | tracking-plan | rollout-check` (the feature lifecycle).

Errors print one line on stderr and exit with code 2, as every ``dataeng experiment`` command.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

_CONFIG = typer.Argument(help="Experiment config (YAML) with the lifecycle sections.", show_default=False)
_WAREHOUSE = typer.Option(
    "--warehouse",
    "-w",
    help="duckdb:///file.duckdb | postgresql://user@host/db (default: the config's `warehouse:`).",
)
_OUT = typer.Option("--out", "-o", help="Also write the result (JSON + Markdown) into this directory.")
_JSON = typer.Option("--json", help="Print JSON instead of Markdown.")


def _echo(report: Any, as_json: bool, out: Path | None) -> None:
    from dataeng_agents.core.commands.lifecycle import _markdown, write_lifecycle_report

    typer.echo(report.model_dump_json(indent=2) if as_json else _markdown(report))
    if out is not None:
        paths = write_lifecycle_report(report, out)
        typer.echo(f"wrote {', '.join(paths.values())}", err=True)


def _time(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    from dataeng_agents.core.errors import InputError

    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise InputError(name, f"{value!r} is not an ISO datetime such as 2025-03-04T06:00") from None


def explore_command(
    config: Annotated[Path, _CONFIG],
    warehouse: Annotated[str | None, _WAREHOUSE] = None,
    out: Annotated[Path | None, _OUT] = None,
    as_json: Annotated[bool, _JSON] = False,
) -> None:
    """Explore the candidate metrics over the pre-period: daily level and variance, weekday
    seasonality, tails and a capping suggestion, pre/post correlation (CUPED), traffic per day."""
    from dataeng_agents.core.cli._guard import run_guarded

    def run() -> None:
        from dataeng_agents.core.commands.lifecycle import explore_experiment

        _echo(explore_experiment(str(config), warehouse, progress=True), as_json, out)

    run_guarded(run)


def hypothesis_command(
    config: Annotated[Path, _CONFIG],
    warehouse: Annotated[str | None, _WAREHOUSE] = None,
    out: Annotated[Path | None, _OUT] = None,
    as_json: Annotated[bool, _JSON] = False,
) -> None:
    """Check the `hypothesis:` section against the exploration (is the MDE reachable in the planned
    time?) and write the plan document. Exit code 1 when a check fails."""
    from dataeng_agents.core.cli._guard import run_guarded
    from dataeng_agents.core.cli.experiment import narrator

    def run() -> bool:
        from dataeng_agents.core.commands.lifecycle import build_hypothesis

        plan = build_hypothesis(str(config), warehouse, narrator=narrator(), progress=True)
        _echo(plan, as_json, out)
        return plan.ok

    if not run_guarded(run):
        raise typer.Exit(code=1)


def tracking_plan_command(
    config: Annotated[Path, _CONFIG],
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="Run the plan against the warehouse (missing, malformed, late, per variant)."
        ),
    ] = False,
    warehouse: Annotated[str | None, _WAREHOUSE] = None,
    out: Annotated[Path | None, _OUT] = None,
    as_json: Annotated[bool, _JSON] = False,
) -> None:
    """Print the tracking plan as a versioned JSON Schema; with --check, check the warehouse against it
    (exit code 1 when an error is found)."""
    from dataeng_agents.core.cli._guard import run_guarded

    def run() -> bool:
        from dataeng_agents.core.commands.lifecycle import check_tracking, tracking_plan

        if not check:
            schema = tracking_plan(str(config))
            text = json.dumps(schema, indent=2) + "\n"
            typer.echo(text, nl=False)
            if out is not None:
                out.mkdir(parents=True, exist_ok=True)
                target = out / "tracking_plan.schema.json"
                tmp = target.with_suffix(".tmp")
                tmp.write_text(text, encoding="utf-8")
                tmp.replace(target)
                typer.echo(f"wrote {target}", err=True)
            return True
        report = check_tracking(str(config), warehouse, progress=True)
        _echo(report, as_json, out)
        return report.ok

    if not run_guarded(run):
        raise typer.Exit(code=1)


def rollout_check_command(
    config: Annotated[Path, _CONFIG],
    stage: Annotated[
        int | None,
        typer.Option(
            "--stage",
            "-s",
            help="Stage to check, 1-based; default the live stage from the --decisions-db history.",
            min=1,
        ),
    ] = None,
    warehouse: Annotated[str | None, _WAREHOUSE] = None,
    now: Annotated[
        str | None, typer.Option("--now", help="Check as of this UTC time (ISO); default: now.")
    ] = None,
    stage_started_at: Annotated[
        str | None, typer.Option("--stage-started-at", help="When the current stage started (ISO, UTC).")
    ] = None,
    decisions_db: Annotated[
        str | None,
        typer.Option(
            "--decisions-db",
            help="The rollout's decisions table in this database (duckdb:///… or postgresql://…): the "
            "history is read from it (live stage, stage starts, SRM since when) and the decision recorded.",
        ),
    ] = None,
    decisions_table: Annotated[
        str, typer.Option("--decisions-table", help="Table for --decisions-db.")
    ] = "rollout_decisions",
    fail_on_rollback: Annotated[
        bool, typer.Option("--fail-on-rollback", help="Exit code 1 when the decision is roll back.")
    ] = False,
    out: Annotated[Path | None, _OUT] = None,
    as_json: Annotated[bool, _JSON] = False,
) -> None:
    """Decide advance / hold / roll back for the live stage of a guarded rollout (always-valid
    confidence sequences: checking every hour does not inflate false alarms). Exit code 1 on roll back
    with --fail-on-rollback, and when the decision pages (a human must look)."""
    from dataeng_agents.core.cli._guard import run_guarded
    from dataeng_agents.core.cli.experiment import narrator

    def run() -> str:
        from dataeng_agents.core.commands.lifecycle import DecisionStore, rollout_check
        from dataeng_agents.core.errors import InputError

        store = None
        if decisions_db:
            factory, dialect = _connection(decisions_db)
            store = DecisionStore(factory, table=decisions_table, dialect=dialect)
        elif stage is None:
            raise InputError(
                "stage", "give --stage, or --decisions-db to take the live stage from the history"
            )
        decision = rollout_check(
            str(config),
            stage,
            warehouse,
            _time(now, "now"),
            stage_started_at=_time(stage_started_at, "stage_started_at"),
            store=store,
            narrator=narrator(),
        )
        _echo(decision, as_json, out)
        return "page" if decision.page else decision.decision

    outcome = run_guarded(run)
    if (outcome == "roll back" and fail_on_rollback) or outcome == "page":
        raise typer.Exit(code=1)


def _connection(url: str) -> tuple[Any, str]:
    """A connection factory and its sqlglot dialect, from a ``duckdb:///`` or ``postgresql://`` URL."""
    from dataeng_agents.core.errors import InputError

    if url.startswith("duckdb://"):
        rest = url[len("duckdb://") :]
        path = rest[1:] if rest.startswith("/") else rest

        def duck() -> Any:
            import duckdb

            return duckdb.connect(path)

        return duck, "duckdb"
    if url.startswith(("postgresql://", "postgres://")):
        from dataeng_agents.core.warehouse.runners import postgres_connector

        return postgres_connector(url), "postgres"
    raise InputError("decisions_db", "use duckdb:///file.duckdb or postgresql://user@host/db")


def lifecycle_demo_command(
    out: Annotated[Path, typer.Argument(help="Directory for the demo databases and configs.")] = Path(
        "lifecycle-demo"
    ),
    harm: Annotated[
        float,
        typer.Option("--harm", help="Planted relative change of conversion during the rollout (e.g. -0.3)."),
    ] = -0.3,
    seed: Annotated[int, typer.Option("--seed")] = 11,
) -> None:
    """Write a seeded product with known truth: pre-period + experiment (with a planted tracking bug)
    in lifecycle.duckdb / lifecycle.yaml, a staged rollout in rollout.duckdb / rollout.yaml."""
    from dataeng_agents.core.cli._guard import run_guarded

    def run() -> None:
        import yaml
        from dataeng_agents.core.lifecycle.demo_data import (
            generate_lifecycle_data,
            generate_rollout_data,
            lifecycle_demo_config,
            rollout_demo_config,
        )

        out.mkdir(parents=True, exist_ok=True)
        truth = generate_lifecycle_data(out / "lifecycle.duckdb", seed=seed, progress=True)
        cfg = lifecycle_demo_config(truth, "lifecycle.duckdb")
        (out / "lifecycle.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
        rollout = generate_rollout_data(out / "rollout.duckdb", seed=seed, conversion_lift=harm)
        rcfg = rollout_demo_config(rollout, "rollout.duckdb")
        (out / "rollout.yaml").write_text(yaml.safe_dump(rcfg, sort_keys=False), encoding="utf-8")
        typer.echo(f"wrote {out}/lifecycle.duckdb, lifecycle.yaml, rollout.duckdb, rollout.yaml")
        typer.echo(
            f"try: dataeng experiment hypothesis {out}/lifecycle.yaml; "
            f"dataeng experiment tracking-plan {out}/lifecycle.yaml --check; "
            f"dataeng experiment rollout-check {out}/rollout.yaml --stage 3 --now "
            f"{(rollout.stage_starts[2]).isoformat()[:10]}T14:00"
        )

    run_guarded(run)


def register(app: typer.Typer) -> None:
    """Adds the lifecycle commands to the ``dataeng experiment`` group."""
    from dataeng_agents.core.cli._guard import guarded

    app.command("explore")(guarded(explore_command))
    app.command("hypothesis")(guarded(hypothesis_command))
    app.command("tracking-plan")(guarded(tracking_plan_command))
    app.command("rollout-check")(guarded(rollout_check_command))
    app.command("lifecycle-demo")(guarded(lifecycle_demo_command))
