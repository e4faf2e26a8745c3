"""The written decision rules (ids referenced by ``Decision.reasons``; documented in docs/experiments.md).

Health (experiment level, checked first; any failure -> ``investigate``):
  H1 sample ratio mismatch (p < ``analysis.srm_threshold``);
  H2 share of units exposed to several variants > ``decision.max_multiple_exposure_rate``;
  H3 a CUPED covariate differs between arms before exposure (p < ``decision.balance_threshold``).
Per variant, in order:
  D1 a guardrail is significantly worse -> ``do not ship``;
  D2 a goal is significantly worse -> ``do not ship``;
  D3 a goal is significantly better and the method allows stopping now (sequential or Bayesian at any
     time; frequentist only once the planned sample is reached) -> ``ship``;
  D4 frequentist, a goal looks significant before the planned sample -> ``keep running`` (peeking);
  D5 the planned sample (sized for the analysis run: method, Holm family, minimum counts) is reached
     and no goal is significant -> ``do not ship`` (an effect of the MDE would likely have shown;
     smaller ones are not excluded);
  D6 otherwise -> ``keep running``.
Experiment: H1–H3 -> ``investigate``; else the ``ship`` variant with the largest lift on the first goal;
else ``keep running`` if any variant keeps running; else ``do not ship``.
"""

from __future__ import annotations

import math

from dataeng_agents.core.experiment.config import ExperimentConfig
from dataeng_agents.core.report.model import (
    Decision,
    DecisionReason,
    HealthCheck,
    ResultRow,
    VariantSummary,
    Verdict,
)


def decide(
    cfg: ExperimentConfig,
    results: list[ResultRow],
    health: list[HealthCheck],
    variants: list[VariantSummary],
    planned: int | None,
) -> Decision:
    reasons: list[DecisionReason] = []
    rules = {"srm": "H1", "multiple_exposure": "H2", "pre_period_balance": "H3"}
    failing = [h for h in health if h.id in rules and h.status == "fail"]
    per_variant: dict[str, Verdict] = {}
    units = {v.name: v.units for v in variants}
    method = cfg.analysis.method
    ship_candidates: list[str] = []
    for v in [x.name for x in variants if not x.is_control]:
        rs = [r for r in results if r.variant == v]
        reached = planned is not None and units[v] >= planned and units[cfg.control_name] >= planned
        guard_bad = [r for r in rs if r.role == "guardrail" and r.significant and r.direction == "worse"]
        goal_bad = [r for r in rs if r.role == "goal" and r.significant and r.direction == "worse"]
        goal_good = [r for r in rs if r.role == "goal" and r.significant and r.direction == "better"]
        goals = [r for r in rs if r.role == "goal"]
        # (verdict, rule, reason, the results the reason rests on)
        verdict: Verdict
        if guard_bad:
            verdict, rule, text, refs = (
                "do not ship",
                "D1",
                f"{v}: guardrail regressed ({', '.join(r.metric for r in guard_bad)}).",
                guard_bad,
            )
        elif goal_bad:
            verdict, rule, text, refs = (
                "do not ship",
                "D2",
                f"{v}: goal metric worse ({', '.join(r.metric for r in goal_bad)}).",
                goal_bad,
            )
        elif goal_good and (method != "frequentist" or reached):
            verdict, rule, text, refs = (
                "ship",
                "D3",
                f"{v}: goal metric better ({', '.join(r.metric for r in goal_good)}) with no guardrail regression.",
                goal_good,
            )
            ship_candidates.append(v)
        elif goal_good:
            verdict, rule, text, refs = (
                "keep running",
                "D4",
                f"{v}: a fixed-horizon (frequentist) result before the planned sample is peeking; keep running to the plan.",
                goal_good,
            )
        elif reached:
            # what the data say, not more: no goal is significant at the planned size, where the
            # analysis had cfg.decision.power to detect each goal's MDE; an effect below the MDE
            # (or, with bad luck, at it) is not excluded - the intervals show what remains plausible
            verdict, rule, text, refs = (
                "do not ship",
                "D5",
                f"{v}: planned sample reached ({planned:,} units per arm, sized for "
                f"{cfg.decision.power:.0%} power at each goal's MDE under this analysis) and no goal "
                "metric is significant; smaller effects are not excluded (see the intervals).",
                goals,
            )
        else:
            verdict, rule, text, refs = (
                "keep running",
                "D6",
                f"{v}: no conclusive goal result yet"
                + (f" ({units[v]:,} of {planned:,} planned units)." if planned else "."),
                goals,
            )
        reasons.append(DecisionReason(rule=rule, text=text, refs=[r.id for r in refs]))
        per_variant[v] = verdict

    if failing:
        health_reasons = [
            DecisionReason(rule=rules[h.id], text=h.message, refs=[f"check:{h.id}", *h.refs]) for h in failing
        ]
        return Decision(
            verdict="investigate", variant=None, per_variant=per_variant, reasons=health_reasons + reasons
        )
    if ship_candidates:
        first_goal = next((m.name for m in cfg.metrics if m.role == "goal"), None)

        def lift(v: str) -> float:
            r = next((r for r in results if r.variant == v and r.metric == first_goal), None)
            if r is None or r.estimate is None:
                return -math.inf
            return -r.estimate if r.inverse else r.estimate

        best = max(ship_candidates, key=lift)
        return Decision(verdict="ship", variant=best, per_variant=per_variant, reasons=reasons)
    if any(v == "keep running" for v in per_variant.values()):
        return Decision(verdict="keep running", per_variant=per_variant, reasons=reasons)
    return Decision(verdict="do not ship", per_variant=per_variant, reasons=reasons)
