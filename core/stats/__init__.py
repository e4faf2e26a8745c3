"""The experiment statistics engine (``dataeng_agents.core.stats``).

Inputs are per-variant sufficient statistics, never rows. One call to :func:`analyze` tests every
metric x variant against control as numpy arrays (proportion, mean, ratio, quantile; CUPED;
post-stratification; frequentist, sequential and Bayesian methods) with gbstats' conventions.

>>> from dataeng_agents.core.stats import analyze
>>> out = analyze({"control": "control",
...     "variants": [{"name": "control"}, {"name": "treatment"}],
...     "metrics": [{"name": "conversion", "kind": "proportion",
...                  "stats": {"control": {"n": 10000, "sum": 1000}, "treatment": {"n": 10000, "sum": 1100}}}]})
>>> round(out.results[0].p_value, 4)
0.0279
"""

from __future__ import annotations

from dataeng_agents.core.stats.analysis import analyze, analyze_arrays
from dataeng_agents.core.stats.columnar import ColumnarResults, analyze_columns
from dataeng_agents.core.stats.engine import ArrayResults, sequential_rho
from dataeng_agents.core.stats.models import (
    AnalysisInput,
    AnalysisOutput,
    AnalysisPlan,
    AnalysisSettings,
    MetricInput,
    MetricResult,
    PowerInput,
    PowerOutput,
    PriorInput,
    Risk,
    SrmResult,
    StatsInputError,
    StratumInput,
    VariantInput,
    VariantStats,
    parse_analysis_input,
    parse_power_input,
)
from dataeng_agents.core.stats.multiple import adjust_pvalues
from dataeng_agents.core.stats.power import (
    analysis_mde,
    analysis_power,
    analysis_sample_size,
    mde_at_n,
    plan_analysis,
    power,
    power_at_n,
    sample_size_per_variant,
)
from dataeng_agents.core.stats.srm import srm_test

__all__ = [
    "AnalysisInput",
    "AnalysisOutput",
    "AnalysisPlan",
    "AnalysisSettings",
    "ArrayResults",
    "ColumnarResults",
    "MetricInput",
    "MetricResult",
    "PowerInput",
    "PowerOutput",
    "PriorInput",
    "Risk",
    "SrmResult",
    "StatsInputError",
    "StratumInput",
    "VariantInput",
    "VariantStats",
    "adjust_pvalues",
    "analysis_mde",
    "analysis_power",
    "analysis_sample_size",
    "analyze",
    "analyze_arrays",
    "analyze_columns",
    "mde_at_n",
    "parse_analysis_input",
    "parse_power_input",
    "plan_analysis",
    "power",
    "power_at_n",
    "sample_size_per_variant",
    "sequential_rho",
    "srm_test",
]
