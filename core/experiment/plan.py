"""Sample sizes and power for the analysis the report will actually run (issue 13).

The report tests goals and secondary metrics with ``analysis.method`` (sequential by default: a
confidence sequence, valid under daily peeking) and Holm over metrics x treatment arms, relative
lifts on the log ratio, and says "not enough data" below ``analysis.min_conversions``. A plan sized
with the fixed-horizon formula would promise 80% power where this analysis has ~20%; so design and
the stopping rule D5 size with :func:`dataeng_agents.core.stats.analysis_sample_size` for exactly
that analysis. Guardrails are tested uncorrected (their own family of one per arm).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from dataeng_agents.core.experiment.config import ExperimentConfig, Metric

if TYPE_CHECKING:
    from dataeng_agents.core.stats.power import AnalysisOptions, PlanMethod


@dataclass(frozen=True)
class MetricSizing:
    per_variant: int
    power: float  # what the analysis has at per_variant (>= the target)
    tests: int  # Holm family the metric is corrected in
    method: str  # the test sized for ("frequentist" stands in for a Bayesian analysis)


def holm_family(cfg: ExperimentConfig, metric: Metric) -> int:
    """How many comparisons share the metric's correction (1: uncorrected)."""
    treatments = max(len(cfg.variants) - 1, 1)
    if metric.role == "guardrail" or cfg.analysis.correction == "none":
        return 1
    return max(1, sum(1 for m in cfg.metrics if m.role != "guardrail") * treatments)


def sized_method(cfg: ExperimentConfig) -> PlanMethod:
    """The test a plan is sized for: the configured one, the fixed-horizon test standing in for a
    Bayesian analysis (it has no rejection rule to size for; its intervals shrink like that test's)."""
    return "sequential" if cfg.analysis.method == "sequential" else "frequentist"


def size_metric(
    cfg: ExperimentConfig, metric: Metric, mean: float, variance: float, *, power: float, alpha: float
) -> MetricSizing:
    """Units per variant for ``metric.mde`` (relative) at ``power`` under the configured analysis.

    :raises StatsInputError: the MDE cannot be reached (e.g. a proportion pushed past 1).
    """
    from dataeng_agents.core.stats import analysis_power, analysis_sample_size

    if metric.mde is None:
        raise ValueError("size_metric needs a metric with an mde")
    tests = holm_family(cfg, metric)
    a = cfg.analysis
    options: AnalysisOptions = {
        "kind": "proportion" if metric.kind == "proportion" else "mean",
        "baseline_mean": mean,
        "baseline_variance": variance,
        "mde_type": "relative",
        "method": sized_method(cfg),
        "difference": a.difference,
        "alpha": alpha,
        "tests": tests,
        "sequential_tuning": a.sequential_tuning,
        "min_conversions": a.min_conversions if metric.kind == "proportion" else 0,
    }
    n = analysis_sample_size(mde=metric.mde, power=power, **options)
    achieved = analysis_power(mde=metric.mde, n_per_variant=n, **options)
    return MetricSizing(per_variant=n, power=achieved, tests=tests, method=sized_method(cfg))


def describe(cfg: ExperimentConfig, sizing: MetricSizing) -> str:
    """One line naming the analysis a plan was sized for (shown on the design page)."""
    a = cfg.analysis
    test = (
        f"sequential confidence sequence (N* = {a.sequential_tuning:g})"
        if sizing.method == "sequential"
        else "fixed-horizon test"
    )
    if cfg.analysis.method == "bayesian":
        test += " (standing in for the Bayesian analysis)"
    family = f"Holm over {sizing.tests} comparisons" if sizing.tests > 1 else "no multiple-testing correction"
    return f"{test}, {family}, {a.difference} difference, alpha {a.alpha:g}"
