"""A seeded product whose truth is known, for the lifecycle: pre-period, experiment, rollout.

:func:`generate_lifecycle_data` writes into a DuckDB file:

* ``sessions(user_id, started_at)`` — daily visits: user ``i`` visits on day ``d`` with probability
  ``visit_rate × traffic_weekday[d]`` (day-of-week traffic seasonality);
* ``engagement(user_id, event_ts, minutes, loaded_at)`` — one row per visit,
  ``minutes = level × level_weekday[d] + u_i + ε``, ``u_i ~ N(0, σ_u²)``, ``ε ~ N(0, σ_e²)``: a known
  daily level and variance (``σ_u² + σ_e²``), a known weekly pattern and a known correlation of a
  unit's window sums (what CUPED exploits);
* ``orders(user_id, ordered_at, amount, currency, loaded_at)`` — a visit converts with probability
  ``order_rate``; ``amount`` is log-normal with rare whales (a heavy tail worth capping);
* ``exposures(user_id, variant, exposed_at)`` — users visiting during the experiment, at their first
  visit, split between ``control`` and ``treatment``;
* ``checkout_events(user_id, event_ts, event_name, price, currency, loaded_at)`` — the event the
  feature emits after exposure; with ``bug_variant`` set, that variant drops ``price`` (NULL): the
  planted instrumentation bug the tracking check must find.

:func:`truth` returns the planted parameters (and :func:`expected_correlation` the closed-form
correlation of window sums) so tests compare estimates against the model, not against a re-run of
the same SQL.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

# Monday first, as Python's date.weekday()
TRAFFIC_WEEKDAY = (1.0, 1.0, 1.0, 1.0, 0.9, 0.7, 0.75)
LEVEL_WEEKDAY = (1.0, 0.98, 1.0, 1.02, 1.1, 1.3, 1.25)


@dataclass(frozen=True)
class LifecycleTruth:
    users: int
    start: date
    pre_days: int
    experiment_days: int
    visit_rate: float
    traffic_weekday: tuple[float, ...]
    level: float
    level_weekday: tuple[float, ...]
    sigma_unit: float
    sigma_noise: float
    order_rate: float
    amount_log_mean: float
    amount_log_sd: float
    bug_variant: str | None
    bug_property: str
    tables: dict[str, int] = field(default_factory=dict)

    @property
    def experiment_start(self) -> date:
        return self.start + timedelta(days=self.pre_days)

    def daily_variance(self) -> float:
        """Variance of a visiting unit's minutes on one day."""
        return self.sigma_unit**2 + self.sigma_noise**2

    def weekday_index(self) -> list[float]:
        m = float(np.mean(self.level_weekday))
        return [x / m for x in self.level_weekday]

    def expected_units_per_day(self, day: date) -> float:
        return self.users * self.visit_rate * self.traffic_weekday[day.weekday()]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["start"] = self.start.isoformat()
        return d


def expected_correlation(t: LifecycleTruth, covariate_days: list[date], outcome_days: list[date]) -> float:
    """Closed-form corr(X, Y) of a unit's summed minutes over two disjoint day sets, all units.

    With visits ``V_d ~ Bernoulli(π_d)`` independent of everything else and
    ``minutes = a_d + u + ε``: ``Cov = (Σ_X π)(Σ_Y π) σ_u²`` and
    ``Var = (Σ π)² σ_u² + Σ [π(1-π)(a² + σ_u²) + π σ_e²]`` (the ``a`` terms from visit counts).
    """

    def parts(days: list[date]) -> tuple[float, float]:
        pis = np.array([t.visit_rate * t.traffic_weekday[d.weekday()] for d in days])
        a = np.array([t.level * t.level_weekday[d.weekday()] for d in days])
        s_pi = float(pis.sum())
        var = s_pi**2 * t.sigma_unit**2 + float(
            (pis * (1 - pis) * (a**2 + t.sigma_unit**2) + pis * t.sigma_noise**2).sum()
        )
        return s_pi, var

    sx, vx = parts(covariate_days)
    sy, vy = parts(outcome_days)
    return sx * sy * t.sigma_unit**2 / float(np.sqrt(vx * vy))


def model_correlation(
    t: LifecycleTruth,
    covariate_days: list[date],
    outcome_days: list[date],
    *,
    units: int = 400_000,
    seed: int = 0,
) -> float:
    """corr(X, Y) of the model among units with a visit in the outcome window (the exploration's
    population), by simulating the model itself in numpy — no SQL involved. Without the
    conditioning this converges to :func:`expected_correlation`."""
    rng = np.random.default_rng(seed)
    u = rng.normal(0.0, t.sigma_unit, units)

    def window(days: list[date]) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        total = np.zeros(units)
        visited = np.zeros(units, dtype=bool)
        for d in days:
            v = rng.random(units) < t.visit_rate * t.traffic_weekday[d.weekday()]
            a = t.level * t.level_weekday[d.weekday()]
            total += v * (a + u + rng.normal(0.0, t.sigma_noise, units))
            visited |= v
        return total, visited

    x, _ = window(covariate_days)
    y, seen = window(outcome_days)
    return float(np.corrcoef(x[seen], y[seen])[0, 1])


def generate_lifecycle_data(
    path: str | Path,
    *,
    users: int = 20_000,
    seed: int = 11,
    start: date = date(2025, 1, 6),
    pre_days: int = 28,
    experiment_days: int = 14,
    visit_rate: float = 0.45,
    level: float = 12.0,
    sigma_unit: float = 6.0,
    sigma_noise: float = 5.0,
    order_rate: float = 0.08,
    bug_variant: str | None = "treatment",
    bug_property: str = "price",
    progress: bool = False,
) -> LifecycleTruth:
    """Writes the tables (replacing the file) and returns the planted truth."""
    import duckdb

    rng = np.random.default_rng(seed)
    days = pre_days + experiment_days
    day0 = np.datetime64(start.isoformat(), "us")
    u = rng.normal(0.0, sigma_unit, users)
    traffic = np.array([TRAFFIC_WEEKDAY[(start + timedelta(days=d)).weekday()] for d in range(days)])
    levels = np.array([LEVEL_WEEKDAY[(start + timedelta(days=d)).weekday()] for d in range(days)]) * level

    visits = rng.random((days, users)) < visit_rate * traffic[:, None]
    v_day, v_user = np.nonzero(visits)
    secs = rng.uniform(0, 86_400, v_day.size)
    ts = day0 + (v_day * 86_400_000_000 + (secs * 1e6).astype(np.int64)).astype("timedelta64[us]")
    minutes = levels[v_day] + u[v_user] + rng.normal(0.0, sigma_noise, v_day.size)
    delay = rng.exponential(0.5, v_day.size) * 3_600e6  # ingestion lag, mostly minutes
    loaded = ts + delay.astype(np.int64).astype("timedelta64[us]")

    order = rng.random(v_day.size) < order_rate
    amount = np.round(rng.lognormal(3.5, 0.6, int(order.sum())), 2)
    whales = rng.random(amount.size) < 0.003
    amount[whales] *= rng.uniform(20, 50, int(whales.sum()))
    currency = rng.choice(np.array(["EUR", "USD", "GBP"]), amount.size, p=[0.5, 0.35, 0.15])

    exp_day = pre_days
    in_exp = v_day >= exp_day
    e_users, first_idx = np.unique(
        v_user[in_exp], return_index=True
    )  # first visit of each user in the experiment
    first_ts = ts[in_exp][first_idx]
    arm = rng.integers(0, 2, e_users.size)
    variant_names = np.array(["control", "treatment"])
    variant_of = np.full(users, -1)
    variant_of[e_users] = arm
    first_of = np.full(users, np.datetime64("NaT"), dtype="datetime64[us]")
    first_of[e_users] = first_ts

    # the feature's event: on visits after exposure, with probability 0.6
    after = in_exp & (variant_of[v_user] >= 0) & (ts >= first_of[v_user]) & (rng.random(v_day.size) < 0.6)
    c_user = v_user[after]
    c_ts = ts[after] + np.timedelta64(30, "s")
    c_variant = variant_names[variant_of[c_user]]
    price = np.round(rng.lognormal(3.0, 0.4, c_user.size), 2)
    if bug_variant is not None:
        price[c_variant == bug_variant] = np.nan  # written as NULL
    c_currency = rng.choice(np.array(["EUR", "USD", "GBP"]), c_user.size, p=[0.5, 0.35, 0.15])
    c_loaded = c_ts + (rng.exponential(0.3, c_user.size) * 3_600e6).astype(np.int64).astype("timedelta64[us]")

    uid = np.arange(1, users + 1, dtype=np.int64)
    tables: dict[str, dict[str, Any]] = {
        "sessions": {"user_id": uid[v_user], "started_at": ts},
        "engagement": {"user_id": uid[v_user], "event_ts": ts, "minutes": minutes, "loaded_at": loaded},
        "orders": {
            "user_id": uid[v_user[order]],
            "ordered_at": ts[order] + np.timedelta64(60, "s"),
            "amount": amount,
            "currency": currency,
            "loaded_at": loaded[order],
        },
        "exposures": {"user_id": uid[e_users], "variant": variant_names[arm], "exposed_at": first_ts},
        "checkout_events": {
            "user_id": uid[c_user],
            "event_ts": c_ts,
            "event_name": np.full(c_user.size, "checkout_started"),
            "price": price,
            "currency": c_currency,
            "loaded_at": c_loaded,
        },
    }
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    for p in (tmp, Path(str(tmp) + ".wal")):
        p.unlink(missing_ok=True)
    counts: dict[str, int] = {}
    bar = None
    if progress:
        from rich.console import Console
        from rich.progress import Progress

        bar = Progress(console=Console(stderr=True), transient=True)
        bar.start()
        task = bar.add_task("writing lifecycle demo tables", total=len(tables))
    con = duckdb.connect(str(tmp))
    try:
        for name, columns in tables.items():
            con.register("frame", columns)
            select = (
                "SELECT * REPLACE (CASE WHEN isnan(price) THEN NULL ELSE price END AS price)"
                if name == "checkout_events"
                else "SELECT *"
            )
            con.execute(f"CREATE TABLE {name} AS {select} FROM frame")
            con.unregister("frame")
            counts[name] = int(next(iter(columns.values())).size)
            if bar is not None:
                bar.update(task, advance=1)
        con.execute("CHECKPOINT")
    finally:
        con.close()
        if bar is not None:
            bar.stop()
    tmp.replace(target)
    return LifecycleTruth(
        users=users,
        start=start,
        pre_days=pre_days,
        experiment_days=experiment_days,
        visit_rate=visit_rate,
        traffic_weekday=TRAFFIC_WEEKDAY,
        level=level,
        level_weekday=LEVEL_WEEKDAY,
        sigma_unit=sigma_unit,
        sigma_noise=sigma_noise,
        order_rate=order_rate,
        amount_log_mean=3.5,
        amount_log_sd=0.6,
        bug_variant=bug_variant,
        bug_property=bug_property,
        tables=counts,
    )


#: the metric sources of the generated tables (``orders``, ``engagement``; see the module doc)
_DEMO_SOURCES: dict[str, dict[str, str]] = {
    "orders": {"table": "orders", "unit": "user_id", "timestamp": "ordered_at"},
    "engagement": {"table": "engagement", "unit": "user_id", "timestamp": "event_ts"},
}


def _demo_tables(*sources: str) -> dict[str, Any]:
    """The config keys every demo shares: the ``exposures`` assignment table, the two arms, and the
    metric ``sources`` named (in that order)."""
    return {
        "assignment": {
            "table": "exposures",
            "unit": "user_id",
            "variant": "variant",
            "timestamp": "exposed_at",
        },
        "variants": [{"name": "control"}, {"name": "treatment"}],
        "control": "control",
        "sources": {name: dict(_DEMO_SOURCES[name]) for name in sources},
    }


def lifecycle_demo_config(truth: LifecycleTruth, db_path: str) -> dict[str, Any]:
    """The experiment + lifecycle config (a YAML-shaped dict) for the generated tables."""
    exp_start = truth.experiment_start
    exp_end = exp_start + timedelta(days=truth.experiment_days)
    return {
        "id": "checkout-redesign",
        "name": "Checkout redesign",
        "warehouse": f"duckdb:///{db_path}",
        "start": exp_start.isoformat(),
        "end": exp_end.isoformat(),
        **_demo_tables("engagement", "orders"),
        "metrics": [
            {
                "name": "engagement_minutes",
                "kind": "mean",
                "source": "engagement",
                "value": "minutes",
                "window": "7d",
                "role": "guardrail",
            },
            {
                "name": "conversion",
                "kind": "proportion",
                "source": "orders",
                "window": "7d",
                "role": "goal",
                "mde": 0.05,
            },
            {
                "name": "revenue",
                "kind": "mean",
                "source": "orders",
                "value": "amount",
                "window": "7d",
                "role": "goal",
                "capping": {"percentile": 0.99},
            },
        ],
        "design": {
            "baseline_start": truth.start.isoformat(),
            "baseline_end": exp_start.isoformat(),
            "population": {"table": "sessions", "unit": "user_id", "timestamp": "started_at"},
        },
        "exploration": {"covariate_days": 7},
        "hypothesis": {
            "change": "Show the order summary on the first checkout page",
            "because": "Session recordings show users leaving checkout to look for shipping costs",
            "direction": "increase",
            "primary_metric": "conversion",
            "guardrails": ["engagement_minutes", "revenue"],
            # sized for the sequential analysis, 14 days of this traffic detect a 15% lift (not 10%)
            "mde": 0.15,
            "duration_days": 14,
        },
        "tracking": {
            "version": "1.2.0",
            "events": [
                {
                    "name": "checkout_started",
                    "table": "checkout_events",
                    "unit_column": "user_id",
                    "timestamp_column": "event_ts",
                    "event_column": "event_name",
                    "loaded_at_column": "loaded_at",
                    "max_delay": "6h",
                    "description": "The user opened the redesigned checkout.",
                    "properties": {
                        "price": {"type": "number", "minimum": 0, "description": "Basket value shown."},
                        "currency": {"type": "string", "enum": ["EUR", "USD", "GBP"]},
                    },
                },
            ],
        },
        "rollout": {
            "treatment": "treatment",
            "stages": [
                {"percent": 1, "min_duration": "24h", "min_units": 100},
                {"percent": 5, "min_duration": "24h"},
                {"percent": 20, "min_duration": "24h"},
                {"percent": 50, "min_duration": "24h"},
                {"percent": 100, "min_duration": "24h"},
            ],
            "guardrails": [
                {"metric": "engagement_minutes", "tolerance": 0.02},
                {"metric": "conversion", "tolerance": 0.0},
            ],
        },
    }


def as_datetime(d: date) -> datetime:
    return datetime(d.year, d.month, d.day)


@dataclass(frozen=True)
class RolloutTruth:
    start: datetime
    stage_starts: list[datetime]
    percents: tuple[float, ...]
    units: int
    conversion: float
    conversion_lift: float
    minutes_mean: float
    minutes_lift: float


def generate_rollout_data(
    path: str | Path,
    *,
    start: datetime = datetime(2025, 3, 3),
    percents: tuple[float, ...] = (1, 5, 20, 50, 100),
    stage_hours: float = 24.0,
    hours: int = 96,
    units_per_hour: float = 600.0,
    conversion: float = 0.10,
    conversion_lift: float = 0.0,
    minutes_mean: float = 20.0,
    minutes_sd: float = 8.0,
    minutes_lift: float = 0.0,
    seed: int = 5,
) -> RolloutTruth:
    """A staged rollout: units arrive hourly and get the feature with the stage's share (the flag is
    checked for everyone, so the exposure log holds both arms); ``orders`` and ``engagement`` carry
    the planted effects of the feature on conversion and minutes."""
    import duckdb

    rng = np.random.default_rng(seed)
    arrivals = rng.poisson(units_per_hour, hours)
    hour = np.repeat(np.arange(hours), arrivals)
    t_hours = hour + rng.random(hour.size)
    stage = np.minimum((t_hours // stage_hours).astype(np.int64), len(percents) - 1)
    share = np.asarray(percents, dtype=np.float64)[stage] / 100.0
    treated = rng.random(hour.size) < share
    base = np.datetime64(start.isoformat(), "us")

    def at(h: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        return base + (h * 3_600e6).astype(np.int64).astype("timedelta64[us]")

    converts = rng.random(hour.size) < conversion * np.where(treated, 1.0 + conversion_lift, 1.0)
    order_t = t_hours[converts] + rng.exponential(2.0, int(converts.sum()))
    minutes = rng.normal(minutes_mean * np.where(treated, 1.0 + minutes_lift, 1.0), minutes_sd)
    uid = np.arange(1, hour.size + 1, dtype=np.int64)
    tables: dict[str, dict[str, Any]] = {
        "exposures": {
            "user_id": uid,
            "variant": np.where(treated, "treatment", "control"),
            "exposed_at": at(t_hours),
        },
        "orders": {
            "user_id": uid[converts],
            "ordered_at": at(order_t),
            "amount": np.round(rng.lognormal(3.5, 0.6, order_t.size), 2),
        },
        "engagement": {"user_id": uid, "event_ts": at(t_hours + 0.05), "minutes": minutes},
    }
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    con = duckdb.connect(str(target))
    try:
        for name, columns in tables.items():
            con.register("frame", columns)
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM frame")
            con.unregister("frame")
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return RolloutTruth(
        start=start,
        stage_starts=[start + timedelta(hours=stage_hours * k) for k in range(len(percents))],
        percents=percents,
        units=int(hour.size),
        conversion=conversion,
        conversion_lift=conversion_lift,
        minutes_mean=minutes_mean,
        minutes_lift=minutes_lift,
    )


def rollout_demo_config(truth: RolloutTruth, db_path: str) -> dict[str, Any]:
    """Experiment + rollout config for :func:`generate_rollout_data`'s tables."""
    return {
        "id": "checkout-redesign-rollout",
        "warehouse": f"duckdb:///{db_path}",
        **_demo_tables("orders", "engagement"),
        "metrics": [
            {"name": "conversion", "kind": "proportion", "source": "orders", "window": "7d", "role": "goal"},
            {
                "name": "engagement_minutes",
                "kind": "mean",
                "source": "engagement",
                "value": "minutes",
                "window": "1d",
                "role": "guardrail",
            },
        ],
        "rollout": {
            "treatment": "treatment",
            "started_at": truth.start.isoformat(),
            "stages": [{"percent": p, "min_duration": "24h"} for p in truth.percents],
            "guardrails": [
                {"metric": "conversion", "tolerance": 0.0},
                {"metric": "engagement_minutes", "tolerance": 0.01},
            ],
        },
    }


class RolloutWorld:
    """A product whose feature flag the rollout moves: a closed-loop simulation in a DuckDB file.

    Every simulated hour, units arrive (new ones, and with ``returning_share`` units seen before,
    drawn among the active ones) and meet the flag as it stands *now*:

    * ``design="percentage"``: a unit gets the feature when its fixed bucket is below the flag's
      percent; every unit is logged (the flag is evaluated for everyone). A returning control unit
      switches to treatment when the percent grows past its bucket.
    * ``design="coverage"`` (GrowthBook's safe rollout): a unit is in the rollout when its bucket is
      below the percent, and then in the feature arm when a second, independent hash is below
      ``split``; only covered units are logged and no unit ever changes arm.

    Active units (``active_share`` of them) return and convert more often, so leaving out switched
    units biases a percentage rollout. ``exposure_loss`` drops that share of the treatment's exposure
    rows from ``exposure_loss_from`` hours on (a logging bug: the outcomes still arrive).
    ``set_flag`` is the flag hook (:class:`~.actions.CallableFlag`); ``advance`` simulates hours.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        start: datetime = datetime(2025, 3, 3),
        initial_percent: float = 0.0,
        design: str = "percentage",
        split: float = 0.5,
        units_per_hour: float = 400.0,
        returning_share: float = 0.0,
        active_share: float = 0.3,
        conversion: tuple[float, float] = (0.04, 0.20),
        conversion_lift: float = 0.0,
        minutes_mean: float = 20.0,
        minutes_sd: float = 8.0,
        minutes_lift: float = 0.0,
        exposure_loss: float = 0.0,
        exposure_loss_from: float = 0.0,
        seed: int = 7,
    ) -> None:
        import duckdb

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.unlink(missing_ok=True)
        self.start = start
        self.hours = 0
        self.flag_percent = initial_percent
        self.flag_changes: list[tuple[datetime, float]] = []
        self.design, self.split = design, split
        self.units_per_hour, self.returning_share, self.active_share = (
            units_per_hour,
            returning_share,
            active_share,
        )
        self.conversion, self.conversion_lift = conversion, conversion_lift
        self.minutes_mean, self.minutes_sd, self.minutes_lift = minutes_mean, minutes_sd, minutes_lift
        self.exposure_loss, self.exposure_loss_from = exposure_loss, exposure_loss_from
        self.rng = np.random.default_rng(seed)
        self.bucket = np.zeros(0)
        self.arm = np.zeros(0)
        self.active = np.zeros(0, dtype=bool)
        con = duckdb.connect(str(self.path))
        try:
            con.execute("CREATE TABLE exposures (user_id BIGINT, variant VARCHAR, exposed_at TIMESTAMP)")
            con.execute("CREATE TABLE orders (user_id BIGINT, ordered_at TIMESTAMP, amount DOUBLE)")
            con.execute("CREATE TABLE engagement (user_id BIGINT, event_ts TIMESTAMP, minutes DOUBLE)")
        finally:
            con.close()

    @property
    def now(self) -> datetime:
        return self.start + timedelta(hours=self.hours)

    def set_flag(self, experiment_id: str, percent: float) -> None:
        """The flag hook: the percent applies from the next simulated hour."""
        self.flag_percent = float(percent)
        self.flag_changes.append((self.now, float(percent)))

    def advance(self, hours: int = 1) -> None:
        """Simulates ``hours`` hours of traffic with the flag as it stands, appended to the tables."""
        import duckdb

        rng = self.rng
        frames: dict[str, list[dict[str, Any]]] = {"exposures": [], "orders": [], "engagement": []}
        for _ in range(hours):
            arrivals = int(rng.poisson(self.units_per_hour))
            n_ret = int(rng.binomial(arrivals, self.returning_share)) if self.bucket.size else 0
            n_new = arrivals - n_ret
            first = self.bucket.size
            self.bucket = np.concatenate([self.bucket, rng.random(n_new)])
            self.arm = np.concatenate([self.arm, rng.random(n_new)])
            self.active = np.concatenate([self.active, rng.random(n_new) < self.active_share])
            returning = np.zeros(0, dtype=np.int64)
            if n_ret:
                pool = np.flatnonzero(self.active[:first])
                if pool.size:
                    returning = rng.choice(pool, n_ret)
            ids = np.concatenate([np.arange(first, first + n_new), returning]).astype(np.int64)
            t = self.hours + rng.random(ids.size)
            pct = self.flag_percent / 100.0
            if self.design == "coverage":
                logged = self.bucket[ids] < pct
                treated = logged & (self.arm[ids] < self.split)
            else:
                logged = np.ones(ids.size, dtype=bool)
                treated = self.bucket[ids] < pct
            lost = (
                treated & (rng.random(ids.size) < self.exposure_loss)
                if self.hours >= self.exposure_loss_from
                else np.zeros(ids.size, dtype=bool)
            )
            at = self._at
            frames["exposures"].append(
                {
                    "user_id": ids[logged & ~lost] + 1,
                    "variant": np.where(treated, "treatment", "control")[logged & ~lost],
                    "exposed_at": at(t[logged & ~lost]),
                }
            )
            rate = np.where(self.active[ids], self.conversion[1], self.conversion[0])
            rate = rate * np.where(treated, 1.0 + self.conversion_lift, 1.0)
            converts = rng.random(ids.size) < rate
            frames["orders"].append(
                {
                    "user_id": ids[converts] + 1,
                    "ordered_at": at(t[converts] + rng.exponential(1.0, int(converts.sum()))),
                    "amount": np.round(rng.lognormal(3.5, 0.6, int(converts.sum())), 2),
                }
            )
            minutes = rng.normal(
                self.minutes_mean * np.where(treated, 1.0 + self.minutes_lift, 1.0), self.minutes_sd
            )
            frames["engagement"].append({"user_id": ids + 1, "event_ts": at(t + 0.02), "minutes": minutes})
            self.hours += 1
        con = duckdb.connect(str(self.path))
        try:
            for name, parts in frames.items():
                cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
                con.register("frame", cols)
                con.execute(f"INSERT INTO {name} SELECT * FROM frame")
                con.unregister("frame")
        finally:
            con.close()

    def _at(self, h: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        base = np.datetime64(self.start.isoformat(), "us")
        return base + (h * 3_600e6).astype(np.int64).astype("timedelta64[us]")

    def config(self, stages: list[dict[str, Any]], **rollout: Any) -> dict[str, Any]:
        """The experiment + rollout config of this world (the flag starts at stage 1)."""
        return {
            "id": "world-rollout",
            "warehouse": f"duckdb:///{self.path}",
            **_demo_tables("orders", "engagement"),
            "metrics": [
                {"name": "conversion", "kind": "proportion", "source": "orders", "window": "2d"},
                {
                    "name": "engagement_minutes",
                    "kind": "mean",
                    "source": "engagement",
                    "value": "minutes",
                    "window": "1d",
                },
            ],
            "rollout": {
                "treatment": "treatment",
                "started_at": self.start.isoformat(),
                "design": self.design,
                "split": self.split,
                "stages": stages,
                "guardrails": [
                    {"metric": "conversion", "tolerance": 0.0},
                    {"metric": "engagement_minutes", "tolerance": 0.01},
                ],
                **rollout,
            },
        }
