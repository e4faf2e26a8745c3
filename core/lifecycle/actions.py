"""What happens after a rollout decision: record it, move the flag, tell people — in that order.

:func:`apply_decision` is the one place that acts on a :class:`RolloutDecision`:

1. the decision is written to the decisions table (:class:`~.state.DecisionStore`) — the rollout's
   memory, so a failing step after it never loses the decision;
2. the flag hook moves the feature flag when the decision changes it (advance → next stage's
   percent, roll back → 0). If the hook fails, the recorded decision is rewritten as a ``hold`` that
   pages (the flag did not move, so the history must not say it did) and the next scheduled check
   decides again;
3. every callback (notifications, tickets, a second table) runs, each isolated from the others.

Any failure in 2 or 3 is raised afterwards as one :class:`RolloutActionError` that carries the
decision and each failure; an orchestrator's task fails visibly and retries.
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

from dataeng_agents.core.errors import DataengError, InputError
from dataeng_agents.core.lifecycle.rollout import RolloutDecision
from dataeng_agents.core.lifecycle.state import DecisionStore


@runtime_checkable
class RolloutCallback(Protocol):
    """Called with every decision (after it was recorded and the flag moved). Must be idempotent per
    ``(experiment_id, stage, checked_at)``: orchestrators retry."""

    def __call__(self, decision: RolloutDecision) -> None: ...


@runtime_checkable
class FlagHook(Protocol):
    """Moves the feature flag of ``experiment_id`` to ``percent`` (0 turns the feature off)."""

    def __call__(self, experiment_id: str, percent: float, decision: RolloutDecision) -> None: ...


class RolloutActionError(DataengError):
    """A flag hook or callback failed after the decision was recorded.

    :ivar decision: the decision as recorded (a ``hold`` when the flag hook failed).
    :ivar failures: ``(step, message)`` per failed step, e.g. ``("flag", "HTTP 503 …")``.
    """

    def __init__(self, decision: RolloutDecision, failures: list[tuple[str, str]]) -> None:
        self.decision = decision
        self.failures = failures
        steps = "; ".join(f"{step}: {msg}" for step, msg in failures)
        super().__init__(
            f"rollout decision '{decision.decision}' for {decision.experiment_id} stage {decision.stage} was "
            f"recorded, but {len(failures)} action(s) failed — {steps}"
        )


def flag_moves(decision: RolloutDecision) -> bool:
    """An advance to a new stage or a roll back moves the flag; a hold or a completed rollout does not."""
    return decision.decision == "roll back" or (
        decision.decision == "advance" and decision.next_stage_percent is not None
    )


def apply_decision(
    decision: RolloutDecision,
    *,
    store: DecisionStore | None = None,
    flag: FlagHook | None = None,
    callbacks: RolloutCallback | Iterable[RolloutCallback] | None = None,
) -> RolloutDecision:
    """Records the decision, moves the flag, runs the callbacks (see the module docstring).

    :returns: the decision as recorded (a ``hold`` that pages if the flag hook failed).
    :raises WarehouseError: the decision could not be recorded (nothing else was done).
    :raises RolloutActionError: the flag hook or a callback failed (the decision is recorded).
    """
    if store is not None:
        store.record(decision)
    failures: list[tuple[str, str]] = []
    if flag is not None and flag_moves(decision):
        try:
            flag(decision.experiment_id, decision.flag_percent, decision)
        except Exception as err:  # any hook failure: the flag did not move
            failures.append(("flag", f"{type(err).__name__}: {err}"))
            decision = decision.model_copy(
                update={
                    "decision": "hold",
                    "flag_percent": decision.stage_percent,
                    "page": True,
                    "reasons": [
                        f"the flag hook failed ({type(err).__name__}: {err}); the '{decision.decision}' decision "
                        "was not applied and the next check decides again",
                        *decision.reasons,
                    ],
                }
            )
            if store is not None:
                store.record(decision)  # same (experiment, stage, checked_at): replaces the row
    if callbacks is not None:
        for i, cb in enumerate([callbacks] if callable(callbacks) else list(callbacks)):
            try:
                cb(decision)
            except Exception as err:  # isolated: one broken notifier does not stop the others
                name = getattr(cb, "__name__", type(cb).__name__)
                failures.append((f"callbacks[{i}] {name}", f"{type(err).__name__}: {err}"))
    if failures:
        raise RolloutActionError(decision, failures)
    return decision


class CallableFlag:
    """A flag hook from a plain function ``set_percent(experiment_id, percent)`` (an SDK call, a
    config-store write, an in-memory dict in tests)."""

    def __init__(self, set_percent: Callable[[str, float], Any]) -> None:
        self._set = set_percent

    def __call__(self, experiment_id: str, percent: float, decision: RolloutDecision) -> None:
        self._set(experiment_id, percent)


class HttpFlagHook:
    """Moves a flag through a feature-flag service's HTTP API.

    The request is ``method url`` with a JSON body from ``body(percent, decision)``; the token is read
    from the environment variable ``token_env`` at call time (never stored in a config or a log) and
    sent as ``Authorization: <token_prefix><token>``; an orchestrator passes ``token_provider``
    instead (an Airflow connection's password, a Prefect ``SecretStr``). A non-2xx answer raises.

    Example — Unleash's admin API, flexible-rollout strategy of one environment::

        HttpFlagHook(
            "https://unleash.example.com/api/admin/projects/default/features/checkout-redesign"
            "/environments/production/strategies/4f0c…",
            method="PUT",
            body=lambda pct, d: {
                "name": "flexibleRollout",
                "parameters": {"rollout": str(round(pct)), "stickiness": "default", "groupId": "checkout-redesign"},
            },
            token_env="UNLEASH_ADMIN_TOKEN",
            token_prefix="",
        )

    :param url: the endpoint; ``{experiment_id}`` and ``{percent}`` are filled in.
    :param opener: sends a :class:`urllib.request.Request` (default ``urllib.request.urlopen``);
        tests pass a stub.
    """

    def __init__(
        self,
        url: str,
        *,
        method: str = "PATCH",
        body: Callable[[float, RolloutDecision], Mapping[str, Any]] | None = None,
        token_env: str | None = None,
        token_provider: Callable[[], str | None] | None = None,
        token_prefix: str = "Bearer ",
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        opener: Callable[..., Any] | None = None,
    ) -> None:
        if not url.startswith(("https://", "http://")):
            raise InputError(
                "url", "the flag service URL must start with https:// (or http:// for a local stub)"
            )
        self.url = url
        self.method = method.upper()
        self.body = body or (lambda pct, d: {"percent": pct, "decision": d.decision})
        self.token_env = token_env
        self._token_provider = token_provider
        self.token_prefix = token_prefix
        self.headers = dict(headers or {})
        self.timeout = timeout
        self._open = opener or urllib.request.urlopen

    def request(
        self, experiment_id: str, percent: float, decision: RolloutDecision
    ) -> urllib.request.Request:
        """The HTTP request the hook sends (without sending it)."""
        headers = {"Content-Type": "application/json", "Accept": "application/json", **self.headers}
        if self._token_provider is not None:
            token = self._token_provider()
            if not token:
                raise InputError("token", "the flag service's token is empty")
            headers["Authorization"] = self.token_prefix + token
        elif self.token_env:
            token = os.environ.get(self.token_env)
            if not token:
                raise InputError("token_env", f"environment variable {self.token_env} is not set")
            headers["Authorization"] = self.token_prefix + token
        url = self.url.format(experiment_id=experiment_id, percent=f"{percent:g}")
        data = json.dumps(self.body(percent, decision)).encode()
        return urllib.request.Request(url, data=data, headers=headers, method=self.method)

    def __call__(self, experiment_id: str, percent: float, decision: RolloutDecision) -> None:
        req = self.request(experiment_id, percent, decision)
        with self._open(req, timeout=self.timeout) as resp:
            status = getattr(resp, "status", 200)
            if not 200 <= int(status) < 300:
                raise RuntimeError(f"{self.method} {req.full_url} answered HTTP {status}")
