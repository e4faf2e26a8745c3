"""Validation of Airflow schedule strings (cron expressions and presets) without croniter."""

from __future__ import annotations

import re

PRESETS = {
    "@once",
    "@continuous",
    "@hourly",
    "@daily",
    "@weekly",
    "@monthly",
    "@quarterly",
    "@yearly",
    "@annually",
    "@midnight",
}
_MONTHS = {
    m: i
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], start=1
    )
}
_DAYS = {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)
_ITEM = re.compile(r"^(?P<range>\*|\?|[0-9a-z]+(-[0-9a-z]+)?)(/(?P<step>\d+))?$", re.I)


def _value(token: str, names: dict[str, int]) -> int | None:
    if token.isdigit():
        return int(token)
    return names.get(token.lower())


def validate_schedule_string(expr: str) -> str | None:
    """None when ``expr`` is a valid preset or 5-field cron expression, else what is wrong with it."""
    s = expr.strip()
    if s.startswith("@"):
        return None if s in PRESETS else f"unknown preset {s!r}"
    parts = s.split()
    if len(parts) != 5:
        return f"a cron expression has 5 fields, got {len(parts)}"
    for text, (fname, lo, hi, names) in zip(parts, _FIELDS, strict=True):
        for item in text.split(","):
            if fname == "day of week" and "#" in item:
                item = item.split("#", 1)[0]
            if fname in {"day of month", "day of week"} and item.upper() in {"L", "LW"}:
                continue
            m = _ITEM.match(item)
            if not m:
                return f"bad {fname} field {text!r}"
            if m.group("step") is not None and int(m.group("step")) == 0:
                return f"step 0 in {fname} field"
            rng = m.group("range")
            if rng in {"*", "?"}:
                continue
            bounds = rng.split("-")
            vals = [_value(b, names) for b in bounds]
            for b, v in zip(bounds, vals, strict=True):
                if v is None:
                    return f"bad {fname} value {b!r}"
                if not lo <= v <= hi:
                    return f"{fname} value {v} out of range {lo}-{hi}"
    return None


def is_frequent(expr: str) -> bool:
    """True for cron expressions that fire more than once a day in some hour field sense (hourly or faster)."""
    if expr.startswith("@"):
        return expr in {"@hourly", "@continuous"}
    parts = expr.split()
    if len(parts) != 5:
        return False
    hour = parts[1]
    return hour == "*" or "/" in hour or "," in hour or "-" in hour
