"""A seeded e-commerce experiment with planted effects, written into a DuckDB file.

Tables (the bundled ``checkout_demo.yaml`` config reads them):

* ``users(unit_id, country, device, signed_up_at)``
* ``exposures(unit_id, variant, exposed_at, country, device)`` — several rows per user; a small
  share of users is (wrongly) exposed to two variants, which the analysis must count and exclude.
* ``orders(unit_id, ordered_at, revenue)`` — pre-period (before first exposure) and experiment period.
* ``sessions(unit_id, started_at, latency_ms)``

Each user has a latent order rate (Gamma) and session rate, so pre-period behaviour predicts
in-experiment behaviour (what CUPED exploits). Planted effects multiply the order rate of
``one_click`` (conversion and revenue up) and the page latency of ``recommendations`` (a guardrail
regression). :func:`generate` returns the true relative lifts of the generated population, computed
from the per-user rates, so tests can check the estimates' CIs against them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

START = datetime(2024, 3, 1)
EXPERIMENT_DAYS = 14
PRE_DAYS = 28
POST_DAYS = 14  # behaviour simulated this long after each user's first exposure
CONVERSION_WINDOW_DAYS = 7

DEFAULT_EFFECTS: dict[str, dict[str, float]] = {
    # variant -> {"orders": multiplier - 1 of the order rate, "latency": multiplier - 1 of latency}
    "control": {"orders": 0.0, "latency": 0.0},
    "one_click": {"orders": 0.12, "latency": 0.0},
    "recommendations": {"orders": 0.0, "latency": 0.08},
}

Progress = Callable[[str, float], None]


@dataclass
class SampleExperiment:
    """What :func:`generate` wrote, and the truth the analysis should recover."""

    path: str
    users: int
    rows: dict[str, int]
    variants: list[str]
    #: metric -> variant -> true relative lift vs control (expected value over the generated users)
    planted: dict[str, dict[str, float]] = field(default_factory=dict)


def _us(days: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Fractional days since START -> numpy datetime64[us]."""
    base = np.datetime64(START.isoformat(), "us")
    return base + (days * 86_400_000_000).astype("int64").astype("timedelta64[us]")


def generate(
    path: str | Path,
    *,
    users: int = 120_000,
    seed: int = 7,
    effects: dict[str, dict[str, float]] | None = None,
    multiple_exposure_rate: float = 0.004,
    progress: Progress | None = None,
) -> SampleExperiment:
    """Write the sample experiment into the DuckDB file ``path`` (replaced if it exists).

    :param users: number of users (units).
    :param seed: the numpy seed; the same seed writes the same data.
    :param effects: ``{variant: {"orders": lift, "latency": lift}}``; ``{}``-valued lifts make an A/A
        test. The first variant is the control. Default: :data:`DEFAULT_EFFECTS`.
    :param multiple_exposure_rate: share of users also exposed to a second variant.
    :param progress: ``callback(step_name, fraction_done)``.
    """
    import duckdb

    effects = DEFAULT_EFFECTS if effects is None else effects
    variants = list(effects)
    report = progress or (lambda _step, _frac: None)
    rng = np.random.default_rng(seed)
    n = int(users)
    if n < 10:
        raise ValueError("users must be at least 10")
    uid = np.arange(1, n + 1, dtype=np.int64)

    report("users", 0.0)
    countries = np.array(["US", "DE", "GB", "FR", "IN"])
    devices = np.array(["mobile", "desktop", "tablet"])
    country = countries[rng.choice(len(countries), n, p=[0.4, 0.2, 0.15, 0.1, 0.15])]
    device = devices[rng.choice(len(devices), n, p=[0.6, 0.33, 0.07])]
    signed_up = -PRE_DAYS - rng.exponential(200.0, n)
    # latent behaviour: order rate per day, session rate per day; desktop buys a bit more
    # heterogeneous buyers (Gamma shape 0.3): pre-period orders predict in-experiment orders (CUPED)
    order_rate = rng.gamma(0.3, 0.02 / 0.3, n) * np.where(device == "desktop", 1.25, 1.0)
    basket = rng.lognormal(0.0, 0.35, n)  # each user's typical basket size
    session_rate = rng.gamma(2.0, 0.35 / 2.0, n)
    first = rng.uniform(0.0, EXPERIMENT_DAYS, n)
    arm = rng.integers(0, len(variants), n)
    order_mult = np.array([1.0 + effects[v].get("orders", 0.0) for v in variants])[arm]
    latency_mult = np.array([1.0 + effects[v].get("latency", 0.0) for v in variants])[arm]

    # exposures: the first one, repeats on the same variant, and a few cross-variant contaminations
    report("exposures", 0.1)
    repeats = rng.poisson(1.5, n)
    rep_user = np.repeat(np.arange(n), repeats)
    rep_time = first[rep_user] + rng.uniform(0.0, 1.0, rep_user.size) * (EXPERIMENT_DAYS - first[rep_user])
    multi = np.flatnonzero(rng.random(n) < multiple_exposure_rate)
    multi_arm = (arm[multi] + rng.integers(1, len(variants), multi.size)) % len(variants)
    multi_time = first[multi] + rng.uniform(0.0, 1.0, multi.size) * (EXPERIMENT_DAYS - first[multi])
    e_user = np.concatenate([np.arange(n), rep_user, multi])
    e_arm = np.concatenate([arm, arm[rep_user], multi_arm])
    e_time = np.concatenate([first, rep_time, multi_time])

    # orders: pre-period at the base rate, post-exposure at the (treated) rate
    report("orders", 0.3)
    pre_orders = rng.poisson(order_rate * PRE_DAYS)
    post_orders = rng.poisson(order_rate * order_mult * POST_DAYS)
    o_pre_user = np.repeat(np.arange(n), pre_orders)
    o_post_user = np.repeat(np.arange(n), post_orders)
    o_user = np.concatenate([o_pre_user, o_post_user])
    o_time = np.concatenate(
        [
            first[o_pre_user] - rng.uniform(0.0, PRE_DAYS, o_pre_user.size),
            first[o_post_user] + rng.uniform(0.0, POST_DAYS, o_post_user.size),
        ]
    )
    revenue = np.round(basket[o_user] * rng.lognormal(np.log(36.0), 0.45, o_user.size), 2)
    whales = rng.random(o_user.size) < 0.002  # rare huge baskets: why revenue is capped
    revenue[whales] *= rng.uniform(20.0, 60.0, int(whales.sum()))

    report("sessions", 0.5)
    pre_sessions = rng.poisson(session_rate * PRE_DAYS)
    post_sessions = rng.poisson(session_rate * POST_DAYS)
    s_pre_user = np.repeat(np.arange(n), pre_sessions)
    s_post_user = np.repeat(np.arange(n), post_sessions)
    s_user = np.concatenate([s_pre_user, s_post_user])
    s_time = np.concatenate(
        [
            first[s_pre_user] - rng.uniform(0.0, PRE_DAYS, s_pre_user.size),
            first[s_post_user] + rng.uniform(0.0, POST_DAYS, s_post_user.size),
        ]
    )
    post_flag = np.concatenate([np.zeros(s_pre_user.size, bool), np.ones(s_post_user.size, bool)])
    base_latency = rng.lognormal(np.log(420.0), 0.35, s_user.size) * np.where(
        device[s_user] == "mobile", 1.3, 1.0
    )
    latency = np.round(base_latency * np.where(post_flag, latency_mult[s_user], 1.0), 1)

    report("writing", 0.7)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    for p in (tmp, Path(str(tmp) + ".wal")):
        if p.exists():
            p.unlink()
    con = duckdb.connect(str(tmp))
    try:
        tables: dict[str, dict[str, np.ndarray[Any, Any]]] = {
            "users": {"unit_id": uid, "country": country, "device": device, "signed_up_at": _us(signed_up)},
            "exposures": {
                "unit_id": uid[e_user],
                "variant": np.array(variants)[e_arm],
                "exposed_at": _us(e_time),
                "country": country[e_user],
                "device": device[e_user],
            },
            "orders": {"unit_id": uid[o_user], "ordered_at": _us(o_time), "revenue": revenue},
            "sessions": {"unit_id": uid[s_user], "started_at": _us(s_time), "latency_ms": latency},
        }
        rows: dict[str, int] = {}
        for name, columns in tables.items():
            con.register("frame", columns)
            # sorted by time like an append-only event log, which is also what DuckDB's zonemaps like
            order_col = {"exposures": "exposed_at", "orders": "ordered_at", "sessions": "started_at"}.get(
                name
            )
            order_by = f" ORDER BY {order_col}" if order_col else ""
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM frame{order_by}")
            con.unregister("frame")
            rows[name] = int(next(iter(columns.values())).size)
        con.execute("CHECKPOINT")
    finally:
        con.close()
    tmp.replace(target)
    report("done", 1.0)

    # the truth, as expectations over the generated users (independent of the Poisson noise)
    planted: dict[str, dict[str, float]] = {
        "conversion": {},
        "revenue": {},
        "orders_per_user": {},
        "latency": {},
    }
    w = CONVERSION_WINDOW_DAYS
    conv_control = float(np.mean(1.0 - np.exp(-order_rate * w)))
    for v in variants[1:]:
        m = 1.0 + effects[v].get("orders", 0.0)
        planted["conversion"][v] = float(np.mean(1.0 - np.exp(-order_rate * m * w))) / conv_control - 1.0
        planted["revenue"][v] = m - 1.0
        planted["orders_per_user"][v] = m - 1.0
        planted["latency"][v] = effects[v].get("latency", 0.0)
    return SampleExperiment(path=str(target), users=n, rows=rows, variants=variants, planted=planted)


def aa_effects(variants: tuple[str, ...] = ("control", "treatment")) -> dict[str, dict[str, float]]:
    """Effects of an A/A test: every arm behaves like control."""
    return {v: {"orders": 0.0, "latency": 0.0} for v in variants}


def experiment_dates() -> tuple[datetime, datetime]:
    """Start and end of the exposure period of the sample experiment."""
    return START, START + timedelta(days=EXPERIMENT_DAYS)
