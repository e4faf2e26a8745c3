"""A generated good/bad event suite for every shape of tracking config.

For each shape the test states, by hand, which events the plan must contain and what their payloads
look like (``Ev``): the generator below makes valid payloads and one payload per kind of defect
from that statement alone, never from the plan code. Then:

* every good payload validates against the generated JSON Schema (root document: it dispatches on
  the event name) and every bad one fails;
* the same payloads land as warehouse rows (text columns where a producer could write '12,50' or
  'N/A') and the warehouse check counts, per variant, exactly the NULL, wrongly typed and malformed
  values the generator planted, on DuckDB and on PostgreSQL — with no ``missing_table`` finding and
  no finding twice.
"""

from __future__ import annotations

import copy
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import jsonschema
import pyarrow as pa
import pytest
from dataeng_agents.core.commands.lifecycle import check_tracking, tracking_plan

T0 = datetime(2025, 3, 3, 8, 0, tzinfo=UTC)
END = T0 + timedelta(days=5)
VARIANTS = ("control", "treatment")


@dataclass(frozen=True)
class Prop:
    type: str
    required: bool = True
    enum: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None


@dataclass
class Ev:
    """One event as a producer emits it and as it lands in the warehouse."""

    name: str
    table: str
    unit: str
    ts: str
    props: dict[str, Prop]
    event_column: str | None = None  # the table column naming the event (several events per table)
    filter: tuple[str, str] | None = None  # (column, value) the source's `where` keeps
    text_columns: bool = True  # properties land in VARCHAR columns

    @property
    def key(self) -> str:
        return self.event_column or "event"


@dataclass
class Shape:
    config: dict[str, Any]
    events: list[Ev]
    extra_tables: dict[str, list[str]] = field(default_factory=dict)


def _base(
    sources: dict[str, Any], metrics: list[dict[str, Any]], events: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "id": "suite",
        "start": T0.date().isoformat(),
        "end": END.date().isoformat(),
        "assignment": {
            "table": "exposures",
            "unit": "user_id",
            "variant": "variant",
            "timestamp": "exposed_at",
        },
        "variants": [{"name": v} for v in VARIANTS],
        "control": "control",
        "sources": sources,
        "metrics": metrics,
        "tracking": {"version": "1.0.0", "max_missing_rate": 0.0, "events": events},
    }


EXPOSURE = Ev(
    "experiment_exposure",
    "exposures",
    "user_id",
    "exposed_at",
    {"variant": Prop("string", enum=VARIANTS)},
    text_columns=False,
)

CHECKOUT_PROPS = {
    "price": Prop("number", minimum=0),
    "quantity": Prop("integer", minimum=1, maximum=10),
    "currency": Prop("string", enum=("EUR", "USD")),
    "gift": Prop("boolean", required=False),
    "shipped_at": Prop("timestamp", required=False),
}


def _checkout_spec(name: str, **extra: Any) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for k, p in CHECKOUT_PROPS.items():
        d: dict[str, Any] = {"type": p.type, "required": p.required}
        if p.enum:
            d["enum"] = list(p.enum)
        if p.minimum is not None:
            d["minimum"] = p.minimum
        if p.maximum is not None:
            d["maximum"] = p.maximum
        props[k] = d
    return {
        "name": name,
        "table": "app_events",
        "unit_column": "user_id",
        "timestamp_column": "event_ts",
        "event_column": "event_name",
        "properties": props,
        **extra,
    }


def shape(name: str) -> Shape:
    orders_src = {"table": "orders", "unit": "user_id", "timestamp": "ordered_at"}
    conversion = {"name": "conversion", "kind": "proportion", "source": "orders"}
    revenue = {"name": "revenue", "kind": "mean", "source": "orders", "value": "amount"}
    orders_ev = Ev("orders", "orders", "user_id", "ordered_at", {"amount": Prop("number")})
    if name == "table_per_event":  # derived from the metric definitions only
        return Shape(_base({"orders": orders_src}, [conversion, revenue], []), [EXPOSURE, orders_ev])
    if name == "event_column":  # two events in one table, told apart by event_name
        cfg = _base(
            {"orders": orders_src},
            [conversion],
            [_checkout_spec("checkout_started"), _checkout_spec("checkout_done")],
        )
        evs = [
            EXPOSURE,
            Ev("orders", "orders", "user_id", "ordered_at", {}),
            Ev(
                "checkout_started",
                "app_events",
                "user_id",
                "event_ts",
                CHECKOUT_PROPS,
                event_column="event_name",
            ),
            Ev(
                "checkout_done",
                "app_events",
                "user_id",
                "event_ts",
                CHECKOUT_PROPS,
                event_column="event_name",
            ),
        ]
        return Shape(cfg, evs)
    if name == "renamed_source":  # the tracking event `purchase` is the metric source `orders`
        spec = {
            "name": "purchase",
            "table": "orders",
            "unit_column": "user_id",
            "timestamp_column": "ordered_at",
            "properties": {"items": {"type": "integer", "minimum": 1}},
        }
        cfg = _base({"orders": orders_src}, [conversion, revenue], [spec])
        ev = Ev(
            "purchase",
            "orders",
            "user_id",
            "ordered_at",
            {"amount": Prop("number"), "items": Prop("integer", minimum=1)},
        )
        return Shape(cfg, [EXPOSURE, ev])
    if name == "renamed_filtered_source":  # explicit `source:`, and the source keeps paid orders only
        src = {**orders_src, "where": "status = 'paid'"}
        spec = {
            "name": "purchase",
            "source": "orders",
            "table": "orders",
            "unit_column": "user_id",
            "timestamp_column": "ordered_at",
            "properties": {"amount": {"type": "number", "minimum": 0, "maximum": 500}},
        }
        cfg = _base({"orders": src}, [conversion, revenue], [spec])
        ev = Ev(
            "purchase",
            "orders",
            "user_id",
            "ordered_at",
            {"amount": Prop("number", minimum=0, maximum=500), "status": Prop("string")},
            filter=("status", "paid"),
        )
        return Shape(cfg, [EXPOSURE, ev])
    if name == "shared_columns":  # two sources with the same columns; typed columns on one of them
        refunds_src = {"table": "refunds", "unit": "user_id", "timestamp": "ordered_at"}
        refund = {"name": "refund_amount", "kind": "mean", "source": "refunds", "value": "amount"}
        cfg = _base({"orders": orders_src, "refunds": refunds_src}, [revenue, refund], [])
        refunds_ev = Ev(
            "refunds", "refunds", "user_id", "ordered_at", {"amount": Prop("number")}, text_columns=False
        )
        return Shape(cfg, [EXPOSURE, orders_ev, refunds_ev])
    if name == "inline_source":  # a metric with its own source mapping, and a ratio's two columns
        inline = {"table": "sessions", "unit": "user_id", "timestamp": "started_at"}
        ratio = {
            "name": "pages_per_minute",
            "kind": "ratio",
            "source": inline,
            "value": "pages",
            "denominator": "minutes",
        }
        cfg = _base({}, [ratio], [])
        ev = Ev(
            "pages_per_minute_event",
            "sessions",
            "user_id",
            "started_at",
            {"pages": Prop("number"), "minutes": Prop("number")},
        )
        return Shape(cfg, [EXPOSURE, ev])
    raise AssertionError(name)


SHAPES = [
    "table_per_event",
    "event_column",
    "renamed_source",
    "renamed_filtered_source",
    "shared_columns",
    "inline_source",
]


# ----------------------------------------------------------------------------------------- generator
def good_value(p: Prop, rng: random.Random) -> Any:
    if p.enum:
        return rng.choice(p.enum)
    if p.type == "number":
        lo = p.minimum if p.minimum is not None else 0.0
        hi = p.maximum if p.maximum is not None else lo + 200.0
        return round(rng.uniform(lo, hi), 2)
    if p.type == "integer":
        lo = int(p.minimum) if p.minimum is not None else 0
        hi = int(p.maximum) if p.maximum is not None else lo + 20
        return rng.randint(lo, hi)
    if p.type == "boolean":
        return rng.random() < 0.5
    if p.type == "timestamp":
        return (T0 + timedelta(minutes=rng.randint(0, 5000))).isoformat().replace("+00:00", "Z")
    return rng.choice(["a", "b", "paid"])


def good_event(ev: Ev, unit: int, at: datetime, rng: random.Random) -> dict[str, Any]:
    out: dict[str, Any] = {ev.key: ev.name, ev.unit: unit, ev.ts: at.isoformat().replace("+00:00", "Z")}
    for k, p in ev.props.items():
        out[k] = good_value(p, rng)
    if ev.filter:
        out[ev.filter[0]] = ev.filter[1]
    return out


def bad_values(p: Prop) -> list[tuple[str, Any, bool]]:
    """(defect, value, is a type error) — values the plan must reject for this property."""
    out: list[tuple[str, Any, bool]] = []
    if p.type == "number":
        out += [("comma decimal", "12,50", True), ("not a number", "N/A", True)]
    if p.type == "integer":
        out += [("fraction", 3.5, True), ("text", "three", True)]
    if p.type == "boolean":
        out += [("yes/no", "yes", True)]
    if p.type == "timestamp":
        out += [("not a time", "yesterday", True)]
    if p.enum is not None:
        out += [("outside the enum", "XXX" if p.type == "string" else 999, False)]
    if p.minimum is not None:
        out += [("below the minimum", p.minimum - 1, False)]
    if p.maximum is not None:
        out += [("above the maximum", p.maximum + 1, False)]
    return out


def bad_events(ev: Ev, good: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    for k, p in ev.props.items():
        if ev.filter and k == ev.filter[0]:
            continue
        if p.required:
            out.append((f"{k}: missing", {x: v for x, v in good.items() if x != k}))
        for defect, value, _ in bad_values(p):
            out.append((f"{k}: {defect}", {**good, k: value}))
    out.append(("no unit id", {x: v for x, v in good.items() if x != ev.unit}))
    out.append(("time not RFC 3339", {**good, ev.ts: "03/03/2025 10:00"}))
    out.append(("unknown event name", {**good, ev.key: ev.name + "_typo"}))
    out.append(("no event name", {x: v for x, v in good.items() if x != ev.key}))
    return out


# --------------------------------------------------------------------------------------- JSON Schema
@pytest.mark.parametrize("name", SHAPES)
def test_generated_events_validate_against_the_schema(name: str) -> None:
    sh = shape(name)
    schema = tracking_plan(sh.config)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert set(schema["$defs"]) == {ev.name for ev in sh.events}
    validator = jsonschema.Draft202012Validator(schema)
    rng = random.Random(name)
    goods, bads = 0, 0
    for ev in sh.events:
        for i in range(40):
            good = good_event(ev, i, T0 + timedelta(minutes=i), rng)
            errors = [e.message for e in validator.iter_errors(good)]
            assert not errors, (ev.name, good, errors)
            goods += 1
            for defect, bad in bad_events(ev, good):
                assert not validator.is_valid(bad), (ev.name, defect, bad)
                bads += 1
    assert goods >= 80 and bads > goods


# ------------------------------------------------------------------------------------------ warehouse
@dataclass
class Planted:
    """What the generator wrote, per (event, variant): events, and per property NULL / type / malformed."""

    events: Counter[tuple[str, str]] = field(default_factory=Counter)
    nulls: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    wrong_type: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    malformed: Counter[tuple[str, str, str]] = field(default_factory=Counter)


def generate_rows(sh: Shape, units: int, seed: int) -> tuple[dict[str, list[dict[str, Any]]], Planted]:
    """Rows per table. Control is clean but for a few NULL optionals; treatment carries every defect."""
    rng = random.Random(seed)
    tables: dict[str, list[dict[str, Any]]] = {}
    planted = Planted()
    for u in range(units):
        variant = VARIANTS[u % 2]
        exposed = T0 + timedelta(minutes=rng.randint(0, 600))
        tables.setdefault("exposures", []).append({"user_id": u, "variant": variant, "exposed_at": exposed})
        for ev in sh.events:
            if ev is EXPOSURE or ev.name == "experiment_exposure":
                continue
            for _ in range(rng.randint(0, 3)):
                at = exposed + timedelta(minutes=rng.randint(1, 3000))
                row = good_event(ev, u, at, rng)
                row.pop("event", None)
                row[ev.ts] = at
                kept = True
                if ev.filter and rng.random() < 0.25:
                    row[ev.filter[0]] = "refunded"  # filtered out by the source: its defects do not count
                    kept = False
                for k, p in ev.props.items():
                    if ev.filter and k == ev.filter[0]:
                        continue
                    roll = rng.random()
                    if variant == "treatment" and roll < 0.15:
                        choices = bad_values(p) if ev.text_columns else [b for b in bad_values(p) if not b[2]]
                        if p.type == "integer" and ev.text_columns:
                            choices = [*choices, ("integral float", "4.0", False)]  # 4.0 is an integer: fine
                        if not choices:
                            continue
                        defect, value, is_type = rng.choice(choices)
                        row[k] = value
                        if kept and defect != "integral float":
                            planted.malformed[(ev.name, variant, k)] += 1
                            planted.wrong_type[(ev.name, variant, k)] += int(is_type)
                    elif roll > 0.9 and (variant == "treatment" or not p.required):
                        row[k] = None
                        if kept:
                            planted.nulls[(ev.name, variant, k)] += 1
                    elif p.type == "timestamp" and row[k] is not None and not ev.text_columns:
                        row[k] = datetime.fromisoformat(str(row[k]).replace("Z", "+00:00"))
                if kept:
                    planted.events[(ev.name, variant)] += 1
                tables.setdefault(ev.table, []).append(row)
    return tables, planted


SQL_TYPES = {
    "number": "DOUBLE PRECISION",
    "integer": "BIGINT",
    "boolean": "BOOLEAN",
    "timestamp": "TIMESTAMP",
    "string": "TEXT",
}


def table_columns(sh: Shape) -> dict[str, dict[str, str]]:
    cols: dict[str, dict[str, str]] = {
        "exposures": {"user_id": "BIGINT", "variant": "TEXT", "exposed_at": "TIMESTAMP"}
    }
    for ev in sh.events:
        if ev.name == "experiment_exposure":
            continue
        t = cols.setdefault(ev.table, {})
        t[ev.unit] = "BIGINT"
        t[ev.ts] = "TIMESTAMP"
        if ev.event_column:
            t[ev.event_column] = "TEXT"
        for k, p in ev.props.items():
            t[k] = "TEXT" if ev.text_columns else SQL_TYPES[p.type]
    return cols


def _text(v: Any) -> Any:
    if v is None or isinstance(v, datetime):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def load(
    sh: Shape, tables: dict[str, list[dict[str, Any]]], execute: Any, copy_rows: Any, prefix: str
) -> None:
    for table, columns in table_columns(sh).items():
        ddl = ", ".join(f"{c} {t}" for c, t in columns.items())
        execute(f"CREATE TABLE {prefix}{table} ({ddl})")
        rows = []
        for r in tables.get(table, []):
            vals = []
            for c, t in columns.items():
                v = r.get(c)
                if isinstance(v, datetime):
                    v = v.astimezone(UTC).replace(tzinfo=None)
                vals.append(_text(v) if t == "TEXT" else v)
            rows.append(tuple(vals))
        copy_rows(f"{prefix}{table}", list(columns), rows)


def assert_counts(report: Any, sh: Shape, planted: Planted) -> None:
    kinds = [f.kind for f in report.findings]
    assert "missing_table" not in kinds and "missing_column" not in kinds, report.findings
    ids = [f.id for f in report.findings]
    assert len(ids) == len(set(ids)), ids
    assert {s.event for s in report.stats} == {ev.name for ev in sh.events}
    for ev in sh.events:
        if ev.name == "experiment_exposure":
            continue
        for v in VARIANTS:
            s = next(x for x in report.stats if x.event == ev.name and x.variant == v)
            assert s.events == planted.events[(ev.name, v)], (ev.name, v)
            for k, _p in ev.props.items():
                if ev.filter and k == ev.filter[0]:
                    continue
                assert s.null_counts[k] == planted.nulls[(ev.name, v, k)], (ev.name, v, k, "nulls")
                assert s.invalid_counts.get(k, 0) == planted.malformed[(ev.name, v, k)], (
                    ev.name,
                    v,
                    k,
                    "malformed",
                )
                assert s.type_error_counts.get(k, 0) == planted.wrong_type[(ev.name, v, k)], (
                    ev.name,
                    v,
                    k,
                    "type",
                )
    # treatment carries the defects: every defective property is reported there, control never
    expected = {(ev, k) for (ev, v, k), n in planted.malformed.items() if n and v == "treatment"}
    found = {(f.event, f.property) for f in report.findings if f.kind == "malformed_property"}
    assert found == expected
    assert not any(f.variant == "control" and f.severity == "error" for f in report.findings)


def duck_shape(name: str, path: Path) -> tuple[Shape, Planted, dict[str, Any]]:
    sh = shape(name)
    tables, planted = generate_rows(sh, 600, seed=len(name))
    con = duckdb.connect(str(path))

    arrow_types = {
        "BIGINT": pa.int64(),
        "TEXT": pa.string(),
        "TIMESTAMP": pa.timestamp("us"),
        "DOUBLE PRECISION": pa.float64(),
        "BOOLEAN": pa.bool_(),
    }
    columns = table_columns(sh)

    def copy_rows(table: str, cols: list[str], rows: list[tuple[Any, ...]]) -> None:
        batch = pa.table(  # noqa: F841 - read by DuckDB's replacement scan below
            {
                c: pa.array([r[i] for r in rows], type=arrow_types[columns[table][c]])
                for i, c in enumerate(cols)
            }
        )
        con.execute(f"INSERT INTO {table} SELECT * FROM batch")

    load(sh, tables, con.execute, copy_rows, "")
    con.close()
    cfg = copy.deepcopy(sh.config)
    cfg["warehouse"] = f"duckdb:///{path}"
    return sh, planted, cfg


@pytest.mark.parametrize("name", SHAPES)
def test_warehouse_check_counts_the_planted_defects_on_duckdb(name: str, tmp_path: Path) -> None:
    sh, planted, cfg = duck_shape(name, tmp_path / "suite.duckdb")
    assert sum(planted.malformed.values()) > 0 or name == "shared_columns"
    report = check_tracking(cfg, now=END)
    assert_counts(report, sh, planted)


@pytest.mark.postgres
@pytest.mark.parametrize("name", SHAPES)
def test_warehouse_check_counts_the_planted_defects_on_postgres(
    name: str, postgres_schema: tuple[str, str]
) -> None:
    import psycopg

    url, schema = postgres_schema
    sh = shape(name)
    tables, planted = generate_rows(sh, 600, seed=len(name))
    with psycopg.connect(url, autocommit=True) as conn:

        def copy_rows(table: str, cols: list[str], rows: list[tuple[Any, ...]]) -> None:
            with conn.cursor().copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as cp:
                for r in rows:
                    cp.write_row(r)

        load(sh, tables, conn.execute, copy_rows, f'"{schema}".')
    cfg = copy.deepcopy(sh.config)
    cfg["assignment"]["table"] = f"{schema}.exposures"
    for src in cfg["sources"].values():
        src["table"] = f"{schema}.{src['table']}"
    for m in cfg["metrics"]:
        if isinstance(m["source"], dict):
            m["source"]["table"] = f"{schema}.{m['source']['table']}"
    for e in cfg["tracking"]["events"]:
        e["table"] = f"{schema}.{e['table']}"
    report = check_tracking(cfg, url, now=END)
    assert_counts(report, sh, planted)


def test_a_dropped_column_is_reported_as_that_column(tmp_path: Path) -> None:
    _sh, _, cfg = duck_shape("event_column", tmp_path / "drop.duckdb")
    con = duckdb.connect(cfg["warehouse"].removeprefix("duckdb:///"))
    con.execute("ALTER TABLE app_events DROP COLUMN quantity")
    con.close()
    report = check_tracking(cfg, now=END)
    missing = {(f.kind, f.event, f.property) for f in report.findings if f.kind.startswith("missing_")}
    assert missing == {
        ("missing_column", "checkout_started", "quantity"),
        ("missing_column", "checkout_done", "quantity"),
    }
    # the other events are still checked
    assert {s.event for s in report.stats} == {"experiment_exposure", "orders"}
    cfg["tracking"]["events"][0]["table"] = "no_such_table"
    report = check_tracking(cfg, now=END)
    assert ("missing_table", "checkout_started") in {(f.kind, f.event) for f in report.findings}
