"""Experiment health checks: sample ratio, multiple exposure, planned sample size, pre-period
balance of the CUPED covariates, guardrails.

The checks with a decision rule (H1 sample ratio, H2 multiple exposure, H3 pre-period balance) are
listed in :mod:`dataeng_agents.core.experiment.decision`.
"""

from __future__ import annotations

from typing import Any

from dataeng_agents.core.experiment.aggregates import ExperimentAggregates
from dataeng_agents.core.experiment.config import ExperimentConfig, Metric
from dataeng_agents.core.experiment.contract import analyze_tolerant
from dataeng_agents.core.report.model import HealthCheck, ResultRow, VariantSummary


def health_checks(
    cfg: ExperimentConfig,
    agg: ExperimentAggregates,
    srm: Any,
    results: list[ResultRow],
    variants: list[VariantSummary],
    planned: int | None,
    by_name: dict[str, Metric],
) -> list[HealthCheck]:
    checks: list[HealthCheck] = []
    shares = ", ".join(f"{v.name} {v.observed_share:.2%} (expected {v.expected_share:.2%})" for v in variants)
    if srm is not None:
        checks.append(
            HealthCheck(
                id="srm",
                name="Sample ratio",
                status="fail" if srm.mismatch else "pass",
                message=(
                    f"Sample ratio mismatch (p = {srm.p_value:.2g}): {shares}. The assignment or the exposure "
                    "logging is broken; results cannot be trusted."
                    if srm.mismatch
                    else f"Units split as configured (p = {srm.p_value:.3f}): {shares}."
                ),
                value=srm.p_value,
                threshold=cfg.analysis.srm_threshold,
            )
        )
    rate = agg.excluded_units / agg.total_units if agg.total_units else 0.0
    limit = cfg.decision.max_multiple_exposure_rate
    checks.append(
        HealthCheck(
            id="multiple_exposure",
            name="Units in several variants",
            status="fail" if rate > limit else "pass",
            message=(
                f"{agg.excluded_units:,} of {agg.total_units:,} units ({rate:.2%}) saw more than one variant "
                f"and were excluded; the limit is {limit:.2%}."
            ),
            value=rate,
            threshold=limit,
        )
    )
    smallest = min(v.units for v in variants)
    if planned is not None:
        reached = smallest >= planned
        checks.append(
            HealthCheck(
                id="sample_size",
                name="Planned sample size",
                status="pass" if reached else "warn",
                message=(
                    f"The smallest arm has {smallest:,} units of the planned {planned:,} per variant "
                    f"({smallest / planned:.0%})."
                ),
                value=float(smallest),
                threshold=float(planned),
            )
        )
    else:
        checks.append(
            HealthCheck(
                id="sample_size",
                name="Planned sample size",
                status="warn",
                message="No planned sample size: set decision.planned_units_per_variant or an mde on a goal metric.",
                value=float(smallest),
            )
        )
    cuped = [m for m in cfg.metrics if m.cuped is not None]
    if cuped:
        checks.append(balance_check(cfg, agg, cuped))
    guard_fail = [r for r in results if r.role == "guardrail" and r.significant and r.direction == "worse"]
    if any(m.role == "guardrail" for m in by_name.values()):
        checks.append(
            HealthCheck(
                id="guardrails",
                name="Guardrail metrics",
                status="fail" if guard_fail else "pass",
                message=(
                    "Significant guardrail regressions: " + ", ".join(r.id for r in guard_fail) + "."
                    if guard_fail
                    else "No guardrail metric is significantly worse."
                ),
                refs=[r.id for r in guard_fail],
            )
        )
    return checks


def balance_check(cfg: ExperimentConfig, agg: ExperimentAggregates, cuped: list[Metric]) -> HealthCheck:
    """Pre-period balance: the CUPED covariates must not differ between arms before exposure."""
    contract: dict[str, Any] = {
        "control": cfg.control_name,
        "variants": [{"name": v.name} for v in cfg.variants],
        "settings": {"method": "frequentist", "difference": "absolute", "alpha": cfg.analysis.alpha},
        "metrics": [
            {
                "name": m.name,
                "kind": "mean",
                "stats": {
                    v.name: {
                        "n": s["n"],
                        "sum": s["covariate_sum"],
                        "sum_squares": s["covariate_sum_squares"],
                    }
                    for v in cfg.variants
                    for s in [agg.overall.stats[v.name][m.name]]
                },
            }
            for m in cuped
        ],
    }
    out = analyze_tolerant(contract)
    threshold = cfg.decision.balance_threshold
    bad = [r for r in out.values() if r.p_value is not None and r.p_value < threshold]
    ps = [r.p_value for r in out.values() if r.p_value is not None]
    return HealthCheck(
        id="pre_period_balance",
        name="Pre-period balance (CUPED covariates)",
        status="fail" if bad else "pass",
        message=(
            "Arms differed before exposure: "
            + ", ".join(f"{r.metric}/{r.variant} (p = {r.p_value:.2g})" for r in bad)
            if bad
            else f"CUPED covariates balanced across arms (smallest p = {min(ps):.3f})."
            if ps
            else "CUPED covariates could not be compared (no variance)."
        ),
        value=min(ps) if ps else None,
        threshold=threshold,
        refs=[f"{r.metric}/{r.variant}" for r in bad],
    )
