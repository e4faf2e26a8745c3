"""The guarded-rollout decision engine: advance, hold or roll back, with always-valid evidence.

A rollout exposes a growing share of units to a feature in stages (1% → 5% → 20% → 50% → 100%).
At every scheduled check the engine compares treatment with control on each guardrail metric using
all stages seen so far:

* per stage, the difference of means (the allocation is constant within a stage, so a stage is a
  clean randomised comparison even when the allocation changes between stages);
* stages combined with design weights ``n_t·n_c/(n_t+n_c)`` — they depend only on the allocation,
  never on outcomes, so the combination is unbiased under any time trend that hits both arms and is
  the efficient weighting for a constant effect;
* a relative lift with the delta method, oriented so that negative is a regression;
* an always-valid confidence sequence (:mod:`.sequential`) at level ``alpha / guardrails``.

A guardrail shows **harm** when its whole sequence lies beyond the tolerated regression, and is
**non-inferior** when the whole sequence lies above it. Any harm → ``roll back``. Otherwise a stage
advances once it ran its minimum duration and exposed its minimum units (and, under the
``non_inferiority`` rule, every guardrail is non-inferior); else ``hold``.

The same vectorised functions score one real check (arrays of one row) and thousands of simulated
rollouts (:func:`simulate_rollouts`), so the simulated false-alarm and detection rates are the rates
of the code that makes the real decisions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

import numpy as np
from dataeng_agents.core.errors import InputError
from dataeng_agents.core.lifecycle.config import RolloutPlan
from dataeng_agents.core.lifecycle.sequential import always_valid_p_value, cs_halfwidth
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

Decision = Literal["advance", "hold", "roll back"]
GuardrailStatus = Literal["harm", "non-inferior", "inconclusive", "insufficient data"]

HOLD, ADVANCE, ROLL_BACK = 0, 1, 2
DECISIONS: dict[int, Decision] = {HOLD: "hold", ADVANCE: "advance", ROLL_BACK: "roll back"}
INSUFFICIENT, INCONCLUSIVE, NON_INFERIOR, HARM = 0, 1, 2, 3
STATUSES: dict[int, GuardrailStatus] = {
    INSUFFICIENT: "insufficient data",
    INCONCLUSIVE: "inconclusive",
    NON_INFERIOR: "non-inferior",
    HARM: "harm",
}
_Z90 = 1.2815515655446004


@dataclass(frozen=True)
class GuardrailRule:
    """A guardrail resolved against its metric definition."""

    metric: str
    kind: Literal["proportion", "mean", "ratio"]
    higher_is_better: bool = True
    tolerance: float = 0.0


@dataclass
class StageStats:
    """Per-stage, per-arm sufficient statistics; every array has shape ``(..., stages, guardrails)``.

    ``n_*`` are units (for a proportion, ``ss_* == sum_*``). Ratio guardrails also carry the
    denominator's sum (``dsum_*``), sum of squares (``dss_*``) and the cross product (``prod_*``);
    they stay zero for the other kinds. ``cube_*`` (Σx³ of mean guardrails) feeds the skewness
    guard; without it the guard is off.
    """

    n_t: FloatArray
    sum_t: FloatArray
    ss_t: FloatArray
    n_c: FloatArray
    sum_c: FloatArray
    ss_c: FloatArray
    dsum_t: FloatArray | None = None
    dss_t: FloatArray | None = None
    prod_t: FloatArray | None = None
    dsum_c: FloatArray | None = None
    dss_c: FloatArray | None = None
    prod_c: FloatArray | None = None
    cube_t: FloatArray | None = None
    cube_c: FloatArray | None = None

    @classmethod
    def zeros(cls, shape: tuple[int, ...], *, cubes: bool = False) -> StageStats:
        """All-zero statistics; ``cubes=True`` also allocates Σx³ (which turns the skewness guard on)."""
        return cls(*(np.zeros(shape) for _ in range(14 if cubes else 12)))


@dataclass
class GuardrailEvaluation:
    """Per-guardrail evidence, arrays of shape ``(..., guardrails)``."""

    control_mean: FloatArray
    treatment_mean: FloatArray
    lift: FloatArray  # relative, (treatment - control) / |control|, NOT oriented
    lower: FloatArray
    upper: FloatArray
    std_error: FloatArray
    p_value: FloatArray  # always-valid, against "regression exactly at tolerance"
    n_treatment: FloatArray
    n_control: FloatArray
    status: IntArray
    units_needed: FloatArray  # per arm, for the normal approximation of a skewed metric (0 if not skewed)


def _arm_var(is_prop: BoolArray, n: FloatArray, s: FloatArray, ss: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = s / n
        var_prop = mean * (1.0 - mean)
        var_mean = (ss - s * s / n) / (n - 1.0)
    v = np.where(is_prop, var_prop, var_mean)
    return np.asarray(np.maximum(v, 0.0), dtype=np.float64)


def _arm_estimate(
    is_prop: BoolArray,
    is_ratio: BoolArray,
    n: FloatArray,
    s: FloatArray,
    ss: FloatArray,
    dsum: FloatArray | None,
    dss: FloatArray | None,
    prod: FloatArray | None,
) -> tuple[FloatArray, FloatArray]:
    """An arm's estimate and the estimator's variance: the mean (``var/n``), or for a ratio
    ``Σnum/Σden`` with the delta method ``(v_num − 2R·c + R²·v_den) / (n·mean_den²)``."""
    mean = s / n
    var_mean = _arm_var(is_prop, n, s, ss) / n
    if dsum is None or dss is None or prod is None or not is_ratio.any():
        return np.asarray(mean, dtype=np.float64), var_mean
    ratio = s / dsum
    v_num = (ss - s * s / n) / (n - 1.0)
    v_den = (dss - dsum * dsum / n) / (n - 1.0)
    cov = (prod - s * dsum / n) / (n - 1.0)
    mean_den = dsum / n
    var_ratio = np.maximum(v_num - 2.0 * ratio * cov + ratio**2 * v_den, 0.0) / (n * mean_den**2)
    return (
        np.asarray(np.where(is_ratio, ratio, mean), dtype=np.float64),
        np.asarray(np.where(is_ratio, var_ratio, var_mean), dtype=np.float64),
    )


def skew_min_units(stats: StageStats, *, is_mean: BoolArray) -> FloatArray:
    """``355·γ²`` per guardrail, γ the skewness of unit values pooled over arms and stages (0 without Σx³)."""
    if stats.cube_t is None or stats.cube_c is None or not is_mean.any():
        return np.zeros(stats.n_t.shape[:-2] + stats.n_t.shape[-1:])
    # the stages that enter the comparison (both arms present), as evaluate_guardrails uses them
    use = (stats.n_t >= 2) & (stats.n_c >= 2)

    def pooled(t: FloatArray, c: FloatArray) -> FloatArray:
        return np.asarray(np.where(use, t + c, 0.0).sum(axis=-2), dtype=np.float64)

    n = pooled(stats.n_t, stats.n_c)
    with np.errstate(divide="ignore", invalid="ignore"):
        m1 = pooled(stats.sum_t, stats.sum_c) / n
        m2 = pooled(stats.ss_t, stats.ss_c) / n
        m3 = pooled(stats.cube_t, stats.cube_c) / n
        var = m2 - m1 * m1
        gamma = (m3 - 3.0 * m1 * m2 + 2.0 * m1**3) / var**1.5
    need = np.where(is_mean & np.isfinite(gamma) & (var > 0), 355.0 * gamma**2, 0.0)
    return np.asarray(need, dtype=np.float64)


def evaluate_guardrails(
    stats: StageStats,
    rules: Sequence[GuardrailRule],
    *,
    alpha: float,
    tuning: float,
    min_units: int,
    sequential: bool = True,
) -> GuardrailEvaluation:
    """Scores every guardrail over all stages seen so far (vectorised over leading dimensions).

    ``sequential=False`` swaps the confidence sequence for a fixed-horizon z interval: wrong for
    repeated checks, kept so the simulation can show how wrong (docs/lifecycle.md).
    """
    g = len(rules)
    is_prop = np.array([r.kind == "proportion" for r in rules])
    sign = np.array([1.0 if r.higher_is_better else -1.0 for r in rules])
    tol = np.array([r.tolerance for r in rules])
    a = alpha / max(g, 1)

    is_ratio = np.array([r.kind == "ratio" for r in rules])
    n_t, n_c = stats.n_t, stats.n_c
    usable = (n_t >= 2) & (n_c >= 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        m_t, v_t = _arm_estimate(
            is_prop, is_ratio, n_t, stats.sum_t, stats.ss_t, stats.dsum_t, stats.dss_t, stats.prod_t
        )
        m_c, v_c = _arm_estimate(
            is_prop, is_ratio, n_c, stats.sum_c, stats.ss_c, stats.dsum_c, stats.dss_c, stats.prod_c
        )
        usable = usable & np.isfinite(m_t) & np.isfinite(m_c)
        m_t, m_c = np.where(usable, m_t, 0.0), np.where(usable, m_c, 0.0)
        v_t, v_c = np.where(usable, v_t, 0.0), np.where(usable, v_c, 0.0)
        w = np.where(usable, n_t * n_c / (n_t + n_c), 0.0)
    wsum = w.sum(axis=-2)
    with np.errstate(divide="ignore", invalid="ignore"):
        wn = w / np.expand_dims(wsum, -2)
        wn = np.where(usable, wn, 0.0)
        mu_t = (wn * m_t).sum(axis=-2)
        mu_c = (wn * m_c).sum(axis=-2)
        var_t = (wn**2 * v_t).sum(axis=-2)
        var_c = (wn**2 * v_c).sum(axis=-2)
        d = mu_t - mu_c
        abs_c = np.abs(mu_c)
        lift = d / abs_c
        # delta method for (mu_t - mu_c)/|mu_c| with independent arms
        var_lift = var_t / abs_c**2 + (mu_t**2) * var_c / abs_c**4
        # Intrinsic time of the sequence: the balanced-design sample size with the same information.
        # With a 1% allocation most units are control and carry little information about the
        # difference; 4·Σ n_t n_c/(n_t+n_c) equals n for a 50/50 split (gbstats' convention).
        n_tot = 4.0 * wsum
        units_t = np.where(usable, n_t, 0.0).sum(axis=-2)
        units_c = np.where(usable, n_c, 0.0).sum(axis=-2)
    se = np.sqrt(var_lift)
    if sequential:
        hw = cs_halfwidth(var_lift, n_tot, a, tuning)
    else:
        from scipy.special import ndtri

        hw = np.where(var_lift > 0, float(ndtri(1 - a / 2)) * se, np.nan)
    valid = (
        (units_t >= min_units) & (units_c >= min_units) & np.isfinite(lift) & np.isfinite(hw) & (abs_c > 0)
    )
    # A skewed metric needs more units before its mean is near-normal (Kohavi et al. 2014: n > 355·γ²
    # per arm); before that a small arm's mean and variance are biased low and fake regressions, so
    # the guardrail stays inconclusive: it neither rolls back nor vouches for non-inferiority.
    needed = skew_min_units(stats, is_mean=np.array([r.kind == "mean" for r in rules]))
    normal_ok = np.minimum(units_t, units_c) >= needed
    oriented = sign * lift
    o_low, o_up = oriented - hw, oriented + hw
    status = np.where(
        ~valid,
        INSUFFICIENT,
        np.where(
            normal_ok & (o_up < -tol), HARM, np.where(normal_ok & (o_low > -tol), NON_INFERIOR, INCONCLUSIVE)
        ),
    ).astype(np.int64)
    p = always_valid_p_value(oriented, var_lift, n_tot, a, tuning, null=-tol)
    lower = np.where(sign > 0, o_low, -o_up)
    upper = np.where(sign > 0, o_up, -o_low)
    nan = np.nan
    return GuardrailEvaluation(
        control_mean=np.where(wsum > 0, mu_c, nan),
        treatment_mean=np.where(wsum > 0, mu_t, nan),
        lift=np.where(valid, lift, nan),
        lower=np.where(valid, lower, nan),
        upper=np.where(valid, upper, nan),
        std_error=np.where(valid, se, nan),
        p_value=np.where(valid, p, nan),
        n_treatment=units_t,
        n_control=units_c,
        status=status,
        units_needed=np.asarray(needed, dtype=np.float64),
    )


def srm_p_value(n_t: FloatArray, n_c: FloatArray, share: FloatArray) -> FloatArray:
    """Pearson χ² over stages of the treatment share against each stage's planned share.

    ``n_t``, ``n_c``: units per stage, shape ``(..., stages)``; ``share``: planned treatment share per
    stage, shape ``(stages,)``. Stages without units or with a share of 0 or 1 do not count.
    """
    from scipy.stats import chi2

    tot = n_t + n_c
    ok = (tot > 0) & (share > 0) & (share < 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        x2 = np.where(ok, (n_t - tot * share) ** 2 / (tot * share * (1 - share)), 0.0).sum(axis=-1)
    df = ok.sum(axis=-1)
    p = np.where(df > 0, chi2.sf(x2, np.maximum(df, 1)), 1.0)
    return np.asarray(p, dtype=np.float64)


def decide(
    status: IntArray,
    stage_complete: BoolArray,
    srm_mismatch: BoolArray,
    advance_rule: Literal["no_harm", "non_inferiority"],
) -> IntArray:
    """Decision codes (``HOLD``/``ADVANCE``/``ROLL_BACK``) from guardrail statuses ``(..., guardrails)``."""
    harm = (status == HARM).any(axis=-1)
    insufficient = (status == INSUFFICIENT).any(axis=-1)
    if advance_rule == "non_inferiority":
        evidence_ok = (status == NON_INFERIOR).all(axis=-1)
    else:
        evidence_ok = ~insufficient
    advance = stage_complete & ~srm_mismatch & evidence_ok
    return np.where(harm, ROLL_BACK, np.where(advance, ADVANCE, HOLD)).astype(np.int64)


# ------------------------------------------------------------------------------------------ planning
def stage_schedule(plan: RolloutPlan, units_per_hour: float) -> list[tuple[float, float]]:
    """(hours, units) of each stage when the rollout advances as soon as it may.

    A stage may advance once it ran ``min_duration``, exposed its ``min_units`` treatment units, and
    every guardrail has ``min_units_for_test`` units per arm (counted over all stages so far, as the
    check counts them): at a 1% stage the last rule usually decides, not the duration.
    """
    out = []
    cum_t = cum_c = 0.0
    for k, st in enumerate(plan.stages, start=1):
        pct = st.percent / 100.0
        share = plan.treatment_share(k)
        t_rate = units_per_hour * pct * (share if plan.design == "coverage" else 1.0)
        c_rate = (
            units_per_hour * pct * (1.0 - share) if plan.design == "coverage" else units_per_hour * (1 - pct)
        )
        hours = st.min_duration
        if units_per_hour > 0 and t_rate > 0:
            hours = max(hours, st.min_units / t_rate, (plan.min_units_for_test - cum_t) / t_rate)
        if units_per_hour > 0 and c_rate > 0:
            hours = max(hours, (plan.min_units_for_test - cum_c) / c_rate)
        cum_t += hours * t_rate
        cum_c += hours * c_rate
        out.append((hours, hours * units_per_hour * (pct if plan.design == "coverage" else 1.0)))
    return out


def information_by_stage(plan: RolloutPlan, units_per_hour: float) -> list[float]:
    """Equivalent balanced units (the sequence's intrinsic time) at the end of each stage, minimum schedule."""
    out, wsum = [], 0.0
    for k, (_, units) in enumerate(stage_schedule(plan, units_per_hour), start=1):
        share = plan.treatment_share(k)
        if share < 1.0:
            wsum += units * share * (1 - share)
        out.append(4.0 * wsum)
    return out


def suggest_tuning(plan: RolloutPlan, units_per_hour: float) -> float:
    """A tuning parameter N* for the plan: half the information gathered before the last stage.

    The confidence sequence is tightest around N*; putting it mid-rollout keeps the first hours at
    1% (few units, a poor normal approximation) conservative and the later stages sharp.
    """
    return max(information_by_stage(plan, units_per_hour)[-1] / 2.0, 1000.0)


def detectable_regression(
    plan: RolloutPlan,
    rule: GuardrailRule,
    *,
    baseline_mean: float,
    baseline_sd: float | None,
    units_per_hour: float,
    guardrails: int | None = None,
    power: float = 0.9,
) -> list[float]:
    """Smallest relative regression detected with ``power`` by the end of each stage.

    Assumes the minimum schedule, baseline variance in both arms and detection only at the stage's
    last check (any earlier check can only add detections), so it is a conservative plan.
    """
    from scipy.stats import norm

    g = guardrails if guardrails is not None else len(plan.guardrails)
    a = plan.alpha / max(g, 1)
    var1 = (
        baseline_mean * (1 - baseline_mean) if rule.kind == "proportion" else float(baseline_sd or 0.0) ** 2
    )
    z = float(norm.ppf(power))
    cv2 = var1 / baseline_mean**2
    out: list[float] = []
    wsum = 0.0
    for k, (_, units) in enumerate(stage_schedule(plan, units_per_hour), start=1):
        share = plan.treatment_share(k)
        if share < 1.0:
            wsum += units * share * (1 - share)
        if wsum <= 0:
            out.append(float("inf"))
            continue
        var_lift = cv2 / wsum  # with weights n_t·n_c/(n_t+n_c), var(difference) = σ²/Σw
        hw = float(cs_halfwidth(var_lift, 4.0 * wsum, a, plan.sequential_tuning))
        out.append(rule.tolerance + hw + z * float(np.sqrt(var_lift)))
    return out


# ------------------------------------------------------------------------------------------ decision
class GuardrailEvidence(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    metric: str
    kind: Literal["proportion", "mean", "ratio"]
    higher_is_better: bool
    tolerance: float
    status: GuardrailStatus
    control_mean: float | None
    treatment_mean: float | None
    lift: float | None = Field(description="Relative (treatment - control) / |control|.")
    ci: tuple[float | None, float | None] = Field(description="Always-valid confidence sequence of the lift.")
    p_value: float | None = Field(
        description="Always-valid p-value against a regression exactly at tolerance."
    )
    alpha: float
    units: dict[str, int]


class RolloutDecision(BaseModel):
    """One scheduled check of a guarded rollout: the decision and all the evidence behind it."""

    model_config = ConfigDict(extra="forbid")

    experiment_id: str
    stage: int = Field(description="1-based stage index that was checked.")
    stage_percent: float
    next_stage_percent: float | None = Field(
        description="The stage the flag moves to when this stage advances (None after the last stage and on "
        "a roll back)."
    )
    flag_percent: float = Field(
        default=0.0,
        description="Where the flag must stand after this decision: the next stage's percent on advance, "
        "the current one on hold, 0 on roll back.",
    )
    decision: Decision
    reasons: list[str]
    warnings: list[str] = Field(
        default_factory=list, description="Not blocking, but the team should know (e.g. weak guardrails)."
    )
    notify: list[str] = Field(
        default_factory=list, description="Notify-only guardrails that show harm (they do not roll back)."
    )
    page: bool = Field(
        default=False, description="A human must look: SRM past its hold limit, biased comparison."
    )
    checked_at: datetime
    stage_started_at: datetime | None
    stage_starts: list[datetime] = Field(
        default_factory=list,
        description="Start of stages 1..stage as the check used them (from the history).",
    )
    stage_hours: float
    stage_units: dict[str, int]
    stage_min_duration: float
    stage_min_units: int
    srm_p_value: float | None
    srm_mismatch: bool = False
    srm_since: datetime | None = Field(
        default=None, description="First check of the current run of mismatches (from the history)."
    )
    units_in_both_arms: int = Field(
        default=0, description="Units exposed to both arms (left out of the comparison)."
    )
    guardrails: list[GuardrailEvidence]
    method: str = "sequential (asymptotic confidence sequences, Waudby-Smith et al. 2023)"
    settings: dict[str, Any] = Field(default_factory=dict)
    narrative: dict[str, Any] | None = None

    @property
    def complete(self) -> bool:
        """True when the last stage was checked and may advance: the rollout is done."""
        return self.decision == "advance" and self.next_stage_percent is None

    def summary(self) -> dict[str, Any]:
        """Compact, secret-free summary for XCom / Prefect results."""
        return {
            "experiment_id": self.experiment_id,
            "stage": self.stage,
            "stage_percent": self.stage_percent,
            "decision": self.decision,
            "next_stage_percent": self.next_stage_percent if self.decision == "advance" else None,
            "flag_percent": self.flag_percent,
            "complete": self.complete,
            "page": self.page,
            "reasons": self.reasons,
            "warnings": self.warnings,
            "notify": self.notify,
            "harmful_guardrails": [g.metric for g in self.guardrails if g.status == "harm"],
            "units_in_both_arms": self.units_in_both_arms,
            "checked_at": self.checked_at.isoformat(),
        }


def _f(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def build_decision(
    *,
    experiment_id: str,
    plan: RolloutPlan,
    rules: Sequence[GuardrailRule],
    stage: int,
    stats: StageStats,
    checked_at: datetime,
    stage_started_at: datetime | None,
    stage_hours: float,
    stage_starts: Sequence[datetime] = (),
    units_in_both_arms: int = 0,
    srm_since: datetime | None = None,
    actions: Sequence[Literal["roll back", "notify"]] | None = None,
    detectable_harm: Sequence[float] | None = None,
) -> RolloutDecision:
    """The decision of one real check. ``stats`` has shape ``(stages, guardrails)``.

    :param srm_since: when the current run of sample-ratio mismatches began (the history's first
        check of it); with the plan's SRM policy it turns a long mismatch into a roll back or a page.
    :param units_in_both_arms: units seen in both arms (not in ``stats``); above the plan's
        ``max_crossover_share`` the comparison is refused as biased.
    :param actions: per guardrail, ``roll back`` (default) or ``notify``.
    :param detectable_harm: per guardrail, the regression it should catch (default the plan's).
    """
    st = plan.stages[stage - 1]
    n_stages = len(plan.stages)
    acts = list(actions) if actions is not None else ["roll back"] * len(rules)
    harm_targets = (
        list(detectable_harm) if detectable_harm is not None else [plan.detectable_harm] * len(rules)
    )
    ev = evaluate_guardrails(
        stats, rules, alpha=plan.alpha, tuning=plan.sequential_tuning, min_units=plan.min_units_for_test
    )
    needed = ev.units_needed
    policy = plan.srm_policy
    shares = np.array([plan.treatment_share(k) for k in range(1, n_stages + 1)])
    srm_p = float(srm_p_value(stats.n_t[..., 0], stats.n_c[..., 0], shares))
    srm_bad = bool(srm_p < policy.threshold)
    n_t_stage = int(stats.n_t[stage - 1, 0])
    n_c_stage = int(stats.n_c[stage - 1, 0])
    time_ok = stage_hours >= st.min_duration
    units_ok = n_t_stage >= st.min_units
    compared = float(stats.n_t[..., 0].sum() + stats.n_c[..., 0].sum())
    crossover_share = units_in_both_arms / (compared + units_in_both_arms) if units_in_both_arms else 0.0
    biased = crossover_share > plan.max_crossover_share
    # notify-only guardrails never roll back nor hold the rollout: they are left out of the decision
    decisive = np.array([a == "roll back" for a in acts], dtype=bool)
    code = int(
        decide(
            ev.status[decisive][None, :],
            np.array([time_ok and units_ok]),
            np.array([srm_bad or biased]),
            plan.advance_rule,
        )[0]
    )
    a = plan.alpha / max(len(rules), 1)
    evidence: list[GuardrailEvidence] = []
    reasons: list[str] = []
    warnings: list[str] = []
    notify: list[str] = []
    page = False
    z80 = 0.8416212335729143
    for i, r in enumerate(rules):
        status = STATUSES[int(ev.status[i])]
        evidence.append(
            GuardrailEvidence(
                id=f"guardrail:{r.metric}",
                metric=r.metric,
                kind=r.kind,
                higher_is_better=r.higher_is_better,
                tolerance=r.tolerance,
                status=status,
                control_mean=_f(ev.control_mean[i]),
                treatment_mean=_f(ev.treatment_mean[i]),
                lift=_f(ev.lift[i]),
                ci=(_f(ev.lower[i]), _f(ev.upper[i])),
                p_value=_f(ev.p_value[i]),
                alpha=a,
                units={"treatment": int(ev.n_treatment[i]), "control": int(ev.n_control[i])},
            )
        )
        if status == "harm" and acts[i] == "notify":
            notify.append(r.metric)
            reasons.append(
                f"guardrail {r.metric} regressed beyond its {r.tolerance:.1%} tolerance (lift {ev.lift[i]:+.2%}, "
                f"always-valid CI [{ev.lower[i]:+.2%}, {ev.upper[i]:+.2%}]); it is notify-only, so the rollout goes on"
            )
        elif status == "harm":
            reasons.append(
                f"guardrail {r.metric} regressed beyond its {r.tolerance:.1%} tolerance: lift {ev.lift[i]:+.2%}, "
                f"always-valid CI [{ev.lower[i]:+.2%}, {ev.upper[i]:+.2%}]"
            )
        elif status == "insufficient data":
            reasons.append(
                f"guardrail {r.metric} cannot be judged yet (fewer than {plan.min_units_for_test} units per arm)"
            )
        elif status == "inconclusive" and needed[i] > min(ev.n_treatment[i], ev.n_control[i]):
            reasons.append(
                f"guardrail {r.metric} is skewed: its interval is trusted from {needed[i]:,.0f} units per arm "
                f"(355·skewness²), it has {int(min(ev.n_treatment[i], ev.n_control[i])):,}; until then it cannot "
                "trigger a roll back — cap the metric (`capping:`) to judge it sooner"
            )
        elif status == "inconclusive" and plan.advance_rule == "non_inferiority" and acts[i] != "notify":
            reasons.append(f"guardrail {r.metric} has not shown non-inferiority yet")
        if code == ADVANCE and acts[i] != "notify" and np.isfinite(ev.std_error[i]):
            # the regression this guardrail would catch with 80% power at the information it has now
            hw = ev.upper[i] - ev.lower[i]
            reach = r.tolerance + hw / 2.0 + z80 * float(ev.std_error[i])
            if reach > harm_targets[i]:
                warnings.append(
                    f"guardrail {r.metric} can only catch a regression of {reach:.1%} or more (80% power) with "
                    f"{int(min(ev.n_treatment[i], ev.n_control[i])):,} units per arm; the plan wants "
                    f"{harm_targets[i]:.1%}: its 'no harm' is weak evidence"
                )
    srm_hours = 0.0
    if srm_bad:
        since = srm_since or checked_at
        srm_hours = max((checked_at - since).total_seconds() / 3600.0, 0.0)
        text = (
            f"sample ratio mismatch against the planned shares (p = {srm_p:.2g}): the assignment or the "
            f"exposure log is suspect; mismatched for {srm_hours:.1f} h"
        )
        if srm_hours >= policy.max_hold and code != ROLL_BACK:
            if policy.then == "roll back":
                code = ROLL_BACK
                reasons.append(text + f", past the {policy.max_hold:g} h hold limit: roll back (srm.then)")
            else:
                page = True
                reasons.append(text + f", past the {policy.max_hold:g} h hold limit: paging (srm.then)")
        else:
            reasons.append(text + f"; holding up to {policy.max_hold:g} h, then {policy.then}")
    if units_in_both_arms:
        text = (
            f"{units_in_both_arms:,} units ({crossover_share:.2%}) were exposed to both arms and are left out"
        )
        if biased:
            page = True
            reasons.append(
                text
                + (
                    ": returning units switch arms when a percentage rollout grows, and leaving them out biases "
                    "the comparison (they are the active ones); it is refused — run the rollout with "
                    "`design: coverage` (a fixed control while coverage ramps)"
                    if plan.design == "percentage"
                    else ": in a coverage rollout no unit may switch arms, so the assignment is broken; the "
                    "comparison is refused"
                )
            )
        else:
            warnings.append(text)
    if not time_ok and code == HOLD:
        reasons.append(f"stage has run {stage_hours:.1f} h of its minimum {st.min_duration:.1f} h")
    if not units_ok and code == HOLD:
        reasons.append(f"stage has exposed {n_t_stage} treatment units of its minimum {st.min_units}")
    nxt = plan.stages[stage].percent if stage < n_stages else None
    if code == ADVANCE:
        reasons.insert(
            0,
            "stage complete and no guardrail shows harm"
            + (f": advance to {nxt:g}%" if nxt is not None else ": rollout complete"),
        )
    flag = {ADVANCE: nxt if nxt is not None else st.percent, HOLD: st.percent, ROLL_BACK: 0.0}[code]
    return RolloutDecision(
        experiment_id=experiment_id,
        stage=stage,
        stage_percent=st.percent,
        next_stage_percent=nxt if code != ROLL_BACK else None,
        flag_percent=flag,
        decision=DECISIONS[code],
        reasons=reasons,
        warnings=warnings,
        notify=notify,
        page=page,
        checked_at=checked_at,
        stage_started_at=stage_started_at,
        stage_starts=list(stage_starts),
        stage_hours=stage_hours,
        stage_units={"treatment": n_t_stage, "control": n_c_stage},
        stage_min_duration=st.min_duration,
        stage_min_units=st.min_units,
        srm_p_value=srm_p if np.isfinite(srm_p) else None,
        srm_mismatch=srm_bad,
        srm_since=(srm_since or checked_at) if srm_bad else None,
        units_in_both_arms=units_in_both_arms,
        guardrails=evidence,
        settings={
            "alpha": plan.alpha,
            "alpha_per_guardrail": a,
            "sequential_tuning": plan.sequential_tuning,
            "min_units_for_test": plan.min_units_for_test,
            "advance_rule": plan.advance_rule,
            "design": plan.design,
            "srm_policy": policy.model_dump(),
        },
    )


# ---------------------------------------------------------------------------------------- simulation
@dataclass(frozen=True)
class SimulatedGuardrail:
    """A guardrail of the simulation: its rule, its baseline, and the true relative effect."""

    rule: GuardrailRule
    baseline_mean: float
    baseline_sd: float | None = None
    true_lift: float = 0.0
    distribution: Literal["normal", "lognormal"] = "normal"  # of a mean guardrail's unit values
    cap: float | None = None  # log-normal only: each unit's value is capped here (the metric's capping)


@dataclass
class RolloutSimulation:
    n_rollouts: int
    hours: int
    rollback_rate: float
    completed_rate: float
    rollback_stage: IntArray  # (R,) 1-based stage of the roll-back, 0 = never
    rollback_hour: IntArray  # (R,) hour of the roll-back, -1 = never
    final_stage: IntArray  # (R,) 1-based stage reached
    rolled_back_by_stage: list[float] = field(default_factory=list)  # cumulative share by the end of stage k

    def summary(self) -> dict[str, Any]:
        return {
            "rollouts": self.n_rollouts,
            "hours": self.hours,
            "rollback_rate": self.rollback_rate,
            "completed_rate": self.completed_rate,
            "rolled_back_by_end_of_stage": self.rolled_back_by_stage,
        }


def simulate_rollouts(
    plan: RolloutPlan,
    guardrails: Sequence[SimulatedGuardrail],
    *,
    units_per_hour: float,
    hours: int = 168,
    check_every: int = 1,
    n_rollouts: int = 2000,
    hourly_profile: Sequence[float] | None = None,
    seed: int = 0,
    progress: bool = False,
    sequential: bool = True,
    skew_guard: bool = True,
) -> RolloutSimulation:
    """Runs ``n_rollouts`` rollouts hour by hour, each deciding with :func:`evaluate_guardrails`/:func:`decide`.

    Each hour, Poisson(``units_per_hour`` × profile) new units arrive and get the feature with the
    current stage's share; each unit contributes one observation per guardrail (Bernoulli for a
    proportion, normal for a mean), drawn as exact per-hour sufficient statistics (a normal sample's
    mean and sum of squares via the χ² law), so a week of 2,000 rollouts needs no per-unit arrays.
    """
    rng = np.random.default_rng(seed)
    rules = [g.rule for g in guardrails]
    if any(r.kind == "ratio" for r in rules):
        raise InputError("guardrails", "the simulation draws proportion and mean guardrails only")
    n_g, n_s, r_n = len(guardrails), len(plan.stages), n_rollouts
    shares = np.array([plan.treatment_share(k) for k in range(1, len(plan.stages) + 1)])
    coverage = np.array([s.percent / 100.0 for s in plan.stages])
    min_h = np.array([s.min_duration for s in plan.stages])
    min_u = np.array([s.min_units for s in plan.stages], dtype=np.float64)
    is_prop = np.array([r.kind == "proportion" for r in rules])
    mu_c = np.array([g.baseline_mean for g in guardrails])
    mu_t = mu_c * (1.0 + np.array([g.true_lift for g in guardrails]))
    sd = np.array([g.baseline_sd or 0.0 for g in guardrails])
    profile = np.asarray(hourly_profile if hourly_profile is not None else [1.0], dtype=np.float64)
    heavy = np.array([g.distribution == "lognormal" and g.rule.kind == "mean" for g in guardrails])
    caps = [g.cap for g in guardrails]
    # σ² of log X for a log-normal with coefficient of variation sd/mean
    ln_s2 = np.log1p((sd / np.where(mu_c != 0, np.abs(mu_c), 1.0)) ** 2)

    stats = StageStats.zeros((r_n, n_s, n_g), cubes=True)
    stage = np.zeros(r_n, dtype=np.int64)  # 0-based
    stage_hours = np.zeros(r_n)
    stage_units_t = np.zeros(r_n)
    active = np.ones(r_n, dtype=bool)
    completed = np.zeros(r_n, dtype=bool)
    rb_stage = np.zeros(r_n, dtype=np.int64)
    rb_hour = np.full(r_n, -1, dtype=np.int64)
    rows = np.arange(r_n)

    def draw(n: FloatArray, mean: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        # n: (R, 1) units; mean: (R, G) → sum, sum of squares (R, G)
        nn = np.broadcast_to(n, mean.shape)
        s_prop = rng.binomial(nn.astype(np.int64), np.clip(mean, 0.0, 1.0)).astype(np.float64)
        safe = np.maximum(nn, 1.0)
        xbar = mean + rng.standard_normal(mean.shape) * sd / np.sqrt(safe)
        within = sd**2 * rng.chisquare(np.maximum(nn - 1.0, 1.0)) * (nn >= 2)
        s_mean = np.where(nn >= 1, nn * xbar, 0.0)
        ss_mean = np.where(nn >= 1, within + nn * xbar**2, 0.0)
        s_out, ss_out = np.where(is_prop, s_prop, s_mean), np.where(is_prop, s_prop, ss_mean)
        # normal draws carry no skew: the Σx³ that makes the sample skewness exactly 0
        with np.errstate(divide="ignore", invalid="ignore"):
            m1, m2 = s_out / np.maximum(nn, 1.0), ss_out / np.maximum(nn, 1.0)
        cube_out = np.where(is_prop, s_prop, nn * (3.0 * m1 * m2 - 2.0 * m1**3))
        for j in np.flatnonzero(heavy):
            # log-normal unit values with the guardrail's mean and sd: drawn unit by unit (no closed
            # form for the sum), owners by bincount, so a heavy tail meets the normal approximation
            counts = nn[:, j].astype(np.int64)
            m = mean[:, j]
            owner = np.repeat(np.arange(r_n), counts)
            scale = np.repeat(m, counts)
            x = scale * rng.lognormal(-ln_s2[j] / 2.0, np.sqrt(ln_s2[j]), owner.size)
            cap_j = caps[j]
            if cap_j is not None:
                x = np.minimum(x, cap_j)
            s_out[:, j] = np.bincount(owner, weights=x, minlength=r_n)
            ss_out[:, j] = np.bincount(owner, weights=x * x, minlength=r_n)
            cube_out[:, j] = np.bincount(owner, weights=x**3, minlength=r_n)
        return s_out, ss_out, cube_out

    bar = None
    if progress:
        from rich.console import Console
        from rich.progress import Progress

        bar = Progress(console=Console(stderr=True), transient=True)
        bar.start()
        task = bar.add_task(f"simulating {r_n} rollouts", total=hours)
    try:
        for h in range(hours):
            lam = units_per_hour * profile[h % len(profile)]
            arrivals = rng.poisson(lam, r_n).astype(np.float64) * active
            if plan.design == "coverage":  # only covered units are compared
                arrivals = rng.binomial(arrivals.astype(np.int64), coverage[stage]).astype(np.float64)
            share = shares[stage]
            n_t = rng.binomial(arrivals.astype(np.int64), share).astype(np.float64)
            n_c = arrivals - n_t
            st, sst, cut = draw(n_t[:, None], np.broadcast_to(mu_t, (r_n, n_g)))
            sc, ssc, cuc = draw(n_c[:, None], np.broadcast_to(mu_c, (r_n, n_g)))
            stats.n_t[rows, stage] += n_t[:, None]
            stats.n_c[rows, stage] += n_c[:, None]
            stats.sum_t[rows, stage] += st
            stats.ss_t[rows, stage] += sst
            stats.sum_c[rows, stage] += sc
            stats.ss_c[rows, stage] += ssc
            assert stats.cube_t is not None and stats.cube_c is not None
            stats.cube_t[rows, stage] += cut
            stats.cube_c[rows, stage] += cuc
            stage_hours += active
            stage_units_t += n_t
            if (h + 1) % check_every == 0:
                ev = evaluate_guardrails(
                    stats if skew_guard else replace(stats, cube_t=None, cube_c=None),
                    rules,
                    alpha=plan.alpha,
                    tuning=plan.sequential_tuning,
                    min_units=plan.min_units_for_test,
                    sequential=sequential,
                )
                srm = srm_p_value(stats.n_t[..., 0], stats.n_c[..., 0], shares) < plan.srm_policy.threshold
                complete = (stage_hours >= min_h[stage]) & (stage_units_t >= min_u[stage])
                code = decide(ev.status, complete, srm, plan.advance_rule)
                back = active & (code == ROLL_BACK)
                rb_stage[back] = stage[back] + 1
                rb_hour[back] = h
                active &= ~back
                adv = active & (code == ADVANCE)
                last = adv & (stage == n_s - 1)
                completed |= last
                active &= ~last
                move = adv & ~last
                stage[move] += 1
                stage_hours[move] = 0.0
                stage_units_t[move] = 0.0
            if bar is not None:
                bar.update(task, advance=1)
    finally:
        if bar is not None:
            bar.stop()

    by_stage = [float(np.mean((rb_stage >= 1) & (rb_stage <= k))) for k in range(1, n_s + 1)]
    return RolloutSimulation(
        n_rollouts=r_n,
        hours=hours,
        rollback_rate=float(np.mean(rb_stage > 0)),
        completed_rate=float(np.mean(completed)),
        rollback_stage=rb_stage,
        rollback_hour=rb_hour,
        final_stage=stage + 1,
        rolled_back_by_stage=by_stage,
    )
