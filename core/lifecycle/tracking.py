"""Tracking plan: the events and properties a feature must emit, and a warehouse check of them.

:func:`build_tracking_plan` derives the plan from the experiment config — the exposure event from
the assignment source, one event per metric source with the columns its metrics' expressions read —
and merges the ``tracking.events`` section (property types, enums, ranges, ingestion-time columns,
events that no metric reads yet). The plan is a versioned JSON Schema (draft 2020-12) document.

:func:`check_tracking` runs one aggregate query per event against the warehouse and reports, per
variant, events that are missing, properties that are missing (NULL) or malformed (outside their
enum or range), and events that arrived late. A difference between variants in any of these is an
instrumentation bug until proven otherwise: it would look exactly like a treatment effect.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Literal

from dataeng_agents.core.errors import ConfigError, WarehouseError
from dataeng_agents.core.lifecycle.config import EventSpec, LifecycleConfig, PropertySpec
from dataeng_agents.core.lifecycle.sources import col, count_if, minutes, ts_literal, units_query
from pydantic import BaseModel, ConfigDict, Field
from sqlglot import exp

if TYPE_CHECKING:
    from dataeng_agents.core.experiment.config import ExperimentConfig, Source
    from dataeng_agents.core.warehouse import Warehouse

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
# RFC 3339 date-time as a pattern too: `format` is an annotation unless the validator opts in
RFC3339_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}([.][0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
EXPOSURE_EVENT = "experiment_exposure"


# ------------------------------------------------------------------------------------------ the plan
class PlannedEvent(BaseModel):
    """One event of the plan, resolved to where it lives in the warehouse."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str
    source_path: str = Field(description="Config path of the source, for error messages.")
    source: dict[str, Any] = Field(description="The source (table/sql/file, unit, timestamp, where).")
    unit_column: str
    timestamp_column: str
    event_column: str | None = None
    event_key: str = Field(
        default="event",
        description="Payload key that names the event in the JSON Schema: `event_column`, else the plan's "
        "`tracking.event_key`.",
    )
    loaded_at_column: str | None = None
    max_delay_hours: float = 6.0
    properties: dict[str, PropertySpec] = Field(default_factory=dict)
    used_by: list[str] = Field(default_factory=list, description="Metrics computed from this event.")

    @property
    def discriminator(self) -> str:
        """The payload key whose value is the event name."""
        return self.event_column or self.event_key


class TrackingPlan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    experiment_id: str
    version: str
    fingerprint: str
    events: list[PlannedEvent]

    def event_schema(self, ev: PlannedEvent) -> dict[str, Any]:
        """The JSON Schema of one event's payload (a ``$defs`` entry of :meth:`json_schema`)."""
        key = ev.discriminator
        props: dict[str, Any] = {
            key: {"const": ev.name, "description": "Names the event."},
            ev.unit_column: {"type": ["string", "integer"], "description": "Randomisation unit id."},
            ev.timestamp_column: {
                "type": "string",
                "format": "date-time",
                "pattern": RFC3339_PATTERN,
                "description": "When it happened (UTC).",
            },
        }
        required = [key, ev.unit_column, ev.timestamp_column]
        if ev.loaded_at_column:
            props[ev.loaded_at_column] = {
                "type": "string",
                "format": "date-time",
                "pattern": RFC3339_PATTERN,
                "description": f"Ingestion time; later than {ev.max_delay_hours:g} h after the event is late.",
            }
        for name, p in ev.properties.items():
            props[name] = _property_schema(p)
            if p.required and name not in required:
                required.append(name)
        return {
            "type": "object",
            "title": ev.name,
            "description": ev.description,
            "properties": props,
            "required": required,
            "additionalProperties": True,
            "x-warehouse-source": ev.source,
            "x-max-delay-hours": ev.max_delay_hours,
            "x-used-by-metrics": ev.used_by,
        }

    def json_schema(self) -> dict[str, Any]:
        """The plan as a JSON Schema 2020-12 document: one ``$defs`` entry per event.

        The root dispatches on the event name (``if`` the payload names event E ``then`` it must match
        E's definition) instead of ``oneOf`` the definitions: two definitions can accept the same
        payload (sources sharing column names, an event renamed from its source), and ``oneOf``
        then rejects every good event. A payload naming no planned event is rejected by the ``anyOf``.
        """
        defs = {ev.name: self.event_schema(ev) for ev in self.events}

        def names(ev: PlannedEvent) -> dict[str, Any]:
            return {"properties": {ev.discriminator: {"const": ev.name}}, "required": [ev.discriminator]}

        return {
            "$schema": SCHEMA_DIALECT,
            "$id": f"urn:dataeng-agents:tracking-plan:{self.experiment_id}:{self.version}",
            "title": f"Tracking plan of experiment {self.experiment_id}",
            "description": "Events and properties the feature must emit. Generated by dataeng-agents from the "
            "experiment's metric definitions and its `tracking:` section. Each payload names its event "
            "(in its `event_column`, else in the plan's event key) and is validated against that event's "
            "definition.",
            "version": self.version,
            "x-fingerprint": self.fingerprint,
            "type": "object",
            "anyOf": [names(ev) for ev in self.events],
            "allOf": [{"if": names(ev), "then": {"$ref": f"#/$defs/{ev.name}"}} for ev in self.events],
            "$defs": defs,
        }


def _property_schema(p: PropertySpec) -> dict[str, Any]:
    out: dict[str, Any]
    out = (
        {"type": "string", "format": "date-time", "pattern": RFC3339_PATTERN}
        if p.type == "timestamp"
        else {"type": p.type}
    )
    if not p.required:
        out["type"] = [out["type"], "null"]
    if p.enum is not None:
        out["enum"] = list(p.enum) + ([None] if not p.required else [])
    if p.minimum is not None:
        out["minimum"] = p.minimum
    if p.maximum is not None:
        out["maximum"] = p.maximum
    if p.description:
        out["description"] = p.description
    return out


def _columns_of(text: str | None, dialect: str, path: str) -> list[str]:
    if not text:
        return []
    from dataeng_agents.core.warehouse import parse_scalar

    node = parse_scalar(text, dialect, path)
    return sorted({c.name for c in node.find_all(exp.Column)})


def _source_dict(src: Source) -> dict[str, Any]:
    return {k: v for k, v in src.model_dump().items() if v is not None}


def build_tracking_plan(cfg: ExperimentConfig, life: LifecycleConfig) -> TrackingPlan:
    """Derives the events from the metric definitions and merges the ``tracking:`` section."""
    dialect = cfg.dialect or "duckdb"
    events: dict[str, PlannedEvent] = {}
    a = cfg.assignment
    events[EXPOSURE_EVENT] = PlannedEvent(
        name=EXPOSURE_EVENT,
        description="The unit saw the experiment (one row per exposure).",
        source_path="assignment",
        source=_source_dict(a),
        unit_column=a.unit,
        timestamp_column=a.timestamp,
        properties={
            a.variant: PropertySpec(
                type="string",
                enum=[v.name for v in cfg.variants],
                description="Variant the unit was assigned.",
            ),
            **{
                c: PropertySpec(type="string", description="Read by the `where` filter.")
                for c in _columns_of(a.where, dialect, "assignment.where")
                if c not in (a.unit, a.timestamp, a.variant)
            },
        },
    )
    for i, m in enumerate(cfg.metrics):
        src = cfg.metric_source(m)
        key = m.source if isinstance(m.source, str) else f"{m.name}_event"
        spath = f"sources.{m.source}" if isinstance(m.source, str) else f"metrics[{i}].source"
        ev = events.get(key) or PlannedEvent(
            name=key,
            description=f"Rows of {src.table or 'the source query'}; metrics are computed from them.",
            source_path=spath,
            source=_source_dict(src),
            unit_column=src.unit,
            timestamp_column=src.timestamp,
        )
        props = dict(ev.properties)
        for c in _columns_of(m.value, dialect, f"metrics[{i}].value") + _columns_of(
            m.denominator, dialect, f"metrics[{i}].denominator"
        ):
            if c not in (src.unit, src.timestamp):
                props.setdefault(c, PropertySpec(type="number", description=f"Summed by metric {m.name}."))
        for c in _columns_of(src.where, dialect, f"{spath}.where"):
            if c not in (src.unit, src.timestamp):
                props.setdefault(
                    c, PropertySpec(type="string", description="Read by the source's `where` filter.")
                )
        events[key] = ev.model_copy(update={"properties": props, "used_by": [*ev.used_by, m.name]})

    # which derived event each `sources:` entry became, to merge renamed tracking events into it
    derived_by_source = {
        m.source: m.source for m in cfg.metrics if isinstance(m.source, str) and m.source in events
    }
    for j, spec in enumerate(life.tracking.events):
        path = f"tracking.events[{j}]"
        target = _derived_target(cfg, spec, events, derived_by_source, path)
        base = events.pop(target) if target is not None else events.get(spec.name)
        events[spec.name] = _merge(base, spec, path, keep_source=target is not None)
        if target is not None:
            derived_by_source = {k: v for k, v in derived_by_source.items() if v != target}

    key = life.tracking.event_key
    for ev in events.values():
        if ev.event_column is None and (key in ev.properties or key in (ev.unit_column, ev.timestamp_column)):
            raise ConfigError(
                "tracking.event_key",
                f"event {ev.name} has a column named {key!r}; choose another `event_key` (it names the event "
                "in the JSON payload) or give the event an `event_column`",
            )
    events = {n: ev.model_copy(update={"event_key": key}) for n, ev in events.items()}

    plan_events = list(events.values())
    canonical = json.dumps([e.model_dump(mode="json") for e in plan_events], sort_keys=True)
    return TrackingPlan(
        experiment_id=cfg.id,
        version=life.tracking.version,
        fingerprint="sha256:" + hashlib.sha256(canonical.encode()).hexdigest()[:16],
        events=plan_events,
    )


def _derived_target(
    cfg: ExperimentConfig,
    spec: EventSpec,
    events: dict[str, PlannedEvent],
    derived_by_source: dict[str, str],
    path: str,
) -> str | None:
    """The metric-derived event a differently named tracking event describes, if any.

    Explicit with ``source:``; otherwise the source read from the same table with the same unit and
    timestamp columns, neither side filtering rows (a filtered source may be a subset of the table).
    Without this merge the same rows are checked twice under two names (duplicate findings).
    """
    if spec.source is not None:
        if spec.source not in cfg.sources:
            raise ConfigError(
                f"{path}.source", f"unknown source {spec.source!r}; the config defines {sorted(cfg.sources)}"
            )
        target = derived_by_source.get(spec.source)
        if target is None:
            return None  # no metric reads it (or an earlier event already took it)
        src = cfg.sources[spec.source]
        if src.table is not None and src.table != spec.table:
            raise ConfigError(
                f"{path}.table", f"source {spec.source} reads {src.table}, the event says {spec.table}"
            )
        if (src.unit, src.timestamp) != (spec.unit_column, spec.timestamp_column):
            raise ConfigError(
                f"{path}.unit_column",
                f"source {spec.source} has unit {src.unit!r} and timestamp {src.timestamp!r}; the event says "
                f"{spec.unit_column!r} and {spec.timestamp_column!r}",
            )
        return target if target != spec.name else None
    if spec.name in events or spec.event_column is not None:
        return None
    for key, target in derived_by_source.items():
        src = cfg.sources[key]
        if (
            src.table == spec.table
            and src.where is None
            and (src.unit, src.timestamp) == (spec.unit_column, spec.timestamp_column)
        ):
            return target
    return None


def _merge(
    base: PlannedEvent | None, spec: EventSpec, path: str, *, keep_source: bool = False
) -> PlannedEvent:
    from dataeng_agents.core.warehouse.identifiers import check_identifier

    try:
        check_identifier(spec.table, dotted=True)
        for c in (
            spec.unit_column,
            spec.timestamp_column,
            spec.event_column,
            spec.loaded_at_column,
            *spec.properties,
        ):
            if c is not None:
                check_identifier(c)
    except ValueError as err:
        raise ConfigError(path, str(err)) from None
    props = dict(base.properties) if base else {}
    props.update(spec.properties)
    source = (
        dict(base.source)
        if keep_source and base is not None
        else {"table": spec.table, "unit": spec.unit_column, "timestamp": spec.timestamp_column}
    )
    return PlannedEvent(
        name=spec.name,
        description=spec.description or (base.description if base else f"Event {spec.name}."),
        source_path=base.source_path if keep_source and base is not None else path,
        source=source,
        unit_column=spec.unit_column,
        timestamp_column=spec.timestamp_column,
        event_column=spec.event_column,
        loaded_at_column=spec.loaded_at_column,
        max_delay_hours=spec.max_delay,
        properties=props,
        used_by=base.used_by if base else [],
    )


# ----------------------------------------------------------------------------------------- the check
Severity = Literal["error", "warning"]
FindingKind = Literal[
    "missing_table",
    "missing_column",
    "missing_event",
    "missing_property",
    "malformed_property",
    "late_events",
    "variant_difference",
]


class EventVariantStats(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event: str
    variant: str
    exposed_units: int
    events: int
    units_with_event: int
    late: int | None = None
    null_counts: dict[str, int] = Field(default_factory=dict)
    invalid_counts: dict[str, int] = Field(
        default_factory=dict, description="Malformed values: of the wrong type, or outside the enum or range."
    )
    type_error_counts: dict[str, int] = Field(
        default_factory=dict, description="Values not of the planned type (e.g. '12,50' for a number)."
    )

    @property
    def unit_coverage(self) -> float:
        return self.units_with_event / self.exposed_units if self.exposed_units else 0.0


class TrackingFinding(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    severity: Severity
    kind: FindingKind
    event: str
    variant: str | None = None
    property: str | None = None
    rate: float | None = None
    control_rate: float | None = None
    p_value: float | None = None
    message: str


class TrackingCheckReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    experiment_id: str
    plan_version: str
    plan_fingerprint: str
    checked_at: datetime
    control: str
    window: tuple[str | None, str | None]
    stats: list[EventVariantStats]
    findings: list[TrackingFinding]

    @property
    def ok(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)

    def summary(self) -> dict[str, Any]:
        return {
            "experiment_id": self.experiment_id,
            "plan_version": self.plan_version,
            "ok": self.ok,
            "errors": sum(f.severity == "error" for f in self.findings),
            "warnings": sum(f.severity == "warning" for f in self.findings),
            "findings": [f.id for f in self.findings],
        }

    def to_markdown(self) -> str:
        lines = [
            f"# Tracking check — {self.experiment_id}",
            "",
            f"Plan version {self.plan_version} ({self.plan_fingerprint}), checked {self.checked_at.isoformat()}; "
            f"**{'OK' if self.ok else 'FAILED'}**.",
            "",
            "| event | variant | exposed units | events | units with event | late | NULL properties | malformed |",
            "|---|---|---:|---:|---:|---:|---|---|",
        ]
        for s in self.stats:
            nulls = ", ".join(f"{k}: {v}" for k, v in s.null_counts.items() if v) or "—"
            bad = ", ".join(f"{k}: {v}" for k, v in s.invalid_counts.items() if v) or "—"
            late = "—" if s.late is None else str(s.late)
            lines.append(
                f"| {s.event} | {s.variant} | {s.exposed_units} | {s.events} | {s.units_with_event} "
                f"({s.unit_coverage:.1%}) | {late} | {nulls} | {bad} |"
            )
        lines += ["", "## Findings", ""]
        lines += [f"- **{f.severity}** `{f.id}`: {f.message}" for f in self.findings] or ["- none"]
        return "\n".join(lines) + "\n"


# Text shapes a value must have to be read as its planned type. Patterns avoid backslashes (BigQuery
# string literals treat them as escapes) and are matched on the value cast to text, so a VARCHAR
# column holding '12,50' or 'N/A' is counted as malformed instead of failing a CAST for the whole
# query. A value only reaches a CAST once its text matched.
_NUMBER_TEXT = "^[ ]*[-+]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?[ ]*$"
_TIMESTAMP_TEXT = (
    "^[ ]*[0-9]{4}-[0-9]{2}-[0-9]{2}([ T][0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]+)?)?)?"
    "[ ]*(Z|z|UTC|[+-][0-9]{2}(:?[0-9]{2})?)?[ ]*$"
)
_BOOLEAN_TEXT = ("true", "false", "t", "f", "1", "0")


def _text(c: exp.Expr) -> exp.Expr:
    return exp.cast(c.copy(), "VARCHAR")


def _matches(c: exp.Expr, pattern: str) -> exp.Expr:
    return exp.RegexpLike(this=_text(c), expression=exp.Literal.string(pattern))


def _safe_number(c: exp.Expr) -> exp.Expr:
    """The value as DOUBLE when its text is a number, else NULL (a portable TRY_CAST)."""
    return exp.Case(
        ifs=[exp.If(this=_matches(c, _NUMBER_TEXT), true=exp.cast(exp.Trim(this=_text(c)), "DOUBLE"))]
    )


def _type_violation(c: exp.Expr, p: PropertySpec) -> exp.Expr | None:
    """True for a non-NULL value that is not of the planned type (None: every value is a string)."""
    if p.type == "number":
        return exp.Not(this=_matches(c, _NUMBER_TEXT))
    if p.type == "integer":
        n = _safe_number(c)
        return exp.or_(
            exp.Not(this=_matches(c, _NUMBER_TEXT)),
            exp.NEQ(this=n, expression=exp.Floor(this=n.copy())),
        )
    if p.type == "boolean":
        return exp.Not(
            this=exp.Lower(this=exp.Trim(this=_text(c))).isin(*[exp.Literal.string(v) for v in _BOOLEAN_TEXT])
        )
    if p.type == "timestamp":
        return exp.Not(this=_matches(c, _TIMESTAMP_TEXT))
    return None


def _value_violation(c: exp.Expr, p: PropertySpec) -> exp.Expr | None:
    """True for a well-typed value outside the planned enum or range."""
    parts: list[exp.Expr] = []
    numeric = p.type in ("number", "integer")
    if p.enum is not None:
        if numeric:
            nums = [v for v in p.enum if isinstance(v, int | float) and not isinstance(v, bool)]
            parts.append(exp.Not(this=_safe_number(c).isin(*[exp.Literal.number(v) for v in nums])))
        elif p.type == "boolean":
            allowed = {str(v).lower() for v in p.enum}
            texts = [
                t
                for t in _BOOLEAN_TEXT
                if ("true" in allowed and t in ("true", "t", "1"))
                or ("false" in allowed and t in ("false", "f", "0"))
            ]
            parts.append(
                exp.Not(
                    this=exp.Lower(this=exp.Trim(this=_text(c))).isin(*[exp.Literal.string(t) for t in texts])
                )
            )
        else:
            parts.append(exp.Not(this=_text(c).isin(*[exp.Literal.string(str(v)) for v in p.enum])))
    if p.minimum is not None:
        parts.append(_safe_number(c) < exp.Literal.number(p.minimum))
    if p.maximum is not None:
        parts.append(_safe_number(c) > exp.Literal.number(p.maximum))
    return exp.or_(*parts) if parts else None


def _violation_conditions(name: str, p: PropertySpec) -> tuple[exp.Expr | None, exp.Expr | None]:
    """(wrong type, malformed = wrong type or outside enum/range), both false for NULL."""
    c = col(name, "e")
    present = exp.Not(this=exp.Is(this=c.copy(), expression=exp.Null()))
    typ = _type_violation(c, p)
    val = _value_violation(c, p)
    if val is not None and typ is not None:
        # a wrong-typed value is malformed already; the range is only read from well-typed ones
        val = exp.and_(exp.Not(this=exp.paren(typ.copy())), val)
    any_bad = exp.or_(*[x.copy() for x in (typ, val) if x is not None]) if (typ or val) else None
    return (
        exp.and_(present, exp.paren(typ)) if typ is not None else None,
        exp.and_(present.copy(), exp.paren(any_bad)) if any_bad is not None else None,
    )


def tracking_query(
    cfg: ExperimentConfig,
    ev: PlannedEvent,
    dialect: str,
    *,
    start: datetime | date | None,
    end: datetime | date | None,
) -> exp.Select:
    """Per variant: exposed units, events after first exposure, units with the event, NULL / malformed
    counts per property and late arrivals."""
    from dataeng_agents.core.experiment.config import Source
    from dataeng_agents.core.warehouse import parse_scalar
    from dataeng_agents.core.warehouse.sql import source_from

    src = Source.model_validate({k: v for k, v in ev.source.items() if k in Source.model_fields})
    inner_cols: list[exp.Expr] = [
        exp.alias_(col(ev.unit_column), "unit_id"),
        exp.alias_(col(ev.timestamp_column), "event_ts"),
    ]
    if ev.loaded_at_column:
        inner_cols.append(exp.alias_(col(ev.loaded_at_column), "loaded_at"))
    prop_alias = {name: f"p{k}" for k, name in enumerate(ev.properties)}
    inner_cols += [exp.alias_(col(name), prop_alias[name]) for name in ev.properties]
    inner = exp.select(*inner_cols).from_(source_from(src, dialect, ev.source_path, cfg.base_dir))
    conds: list[exp.Expr] = []
    if ev.event_column:
        conds.append(exp.cast(col(ev.event_column), "VARCHAR").eq(exp.Literal.string(ev.name)))
    if src.where and ev.name != EXPOSURE_EVENT:
        conds.append(parse_scalar(src.where, dialect, f"{ev.source_path}.where"))
    if end is not None:
        conds.append(col(ev.timestamp_column) < ts_literal(end, dialect))
    if conds:
        inner = inner.where(exp.and_(*conds))

    units = units_query(cfg, dialect, start=start, end=end)
    per_unit_cols: list[exp.Expr] = [
        col("variant", "u"),
        exp.alias_(exp.Count(this=col("unit_id", "e")), "events"),
        exp.alias_(
            exp.Case(
                ifs=[
                    exp.If(
                        this=exp.GT(
                            this=exp.Count(this=col("unit_id", "e")), expression=exp.Literal.number(0)
                        ),
                        true=exp.Literal.number(1),
                    )
                ],
                default=exp.Literal.number(0),
            ),
            "has_event",
        ),
    ]
    if ev.loaded_at_column:
        late = exp.GT(
            this=col("loaded_at", "e"),
            expression=exp.Add(this=col("event_ts", "e"), expression=minutes(ev.max_delay_hours)),
        )
        per_unit_cols.append(exp.alias_(count_if(late), "late"))
    for name, p in ev.properties.items():
        alias = prop_alias[name]
        is_null = exp.and_(
            exp.Not(this=exp.Is(this=col("unit_id", "e"), expression=exp.Null())),
            exp.Is(this=col(alias, "e"), expression=exp.Null()),
        )
        per_unit_cols.append(exp.alias_(count_if(is_null), f"{alias}_null"))
        wrong_type, bad = _violation_conditions(alias, p)
        if wrong_type is not None:
            per_unit_cols.append(exp.alias_(count_if(wrong_type), f"{alias}_type"))
        if bad is not None:
            per_unit_cols.append(exp.alias_(count_if(bad), f"{alias}_invalid"))
    per_unit = (
        exp.select(*per_unit_cols)
        .from_(units.subquery("u"))
        .join(
            inner.subquery("e"),
            on=exp.and_(
                exp.EQ(this=col("unit_id", "e"), expression=col("unit_id", "u")),
                col("event_ts", "e") >= col("first_exposure", "u"),
            ),
            join_type="left",
        )
        .where(exp.Not(this=exp.Is(this=col("variant", "u"), expression=exp.Null())))
        .group_by(col("unit_id", "u"), col("variant", "u"))
    )
    out_cols: list[exp.Expr] = [
        col("variant"),
        exp.alias_(exp.Count(this=exp.Star()), "exposed_units"),
        exp.alias_(exp.Sum(this=col("events")), "events"),
        exp.alias_(exp.Sum(this=col("has_event")), "units_with_event"),
    ]
    extra = [c.alias_or_name for c in per_unit_cols[3:]]
    out_cols += [exp.alias_(exp.Sum(this=col(a)), a) for a in extra]
    return (
        exp.select(*out_cols).from_(per_unit.subquery("pu")).group_by(col("variant")).order_by(col("variant"))
    )


def _diagnose(
    cfg: ExperimentConfig, ev: PlannedEvent, warehouse: Warehouse, err: WarehouseError
) -> list[TrackingFinding]:
    """Why an event's check query failed: the table, or which of its columns, cannot be read.

    Runs only after a failure: one probe of the source, then one per column, so a dropped column is
    reported as that column (for every variant), not as a missing table.
    """
    from dataeng_agents.core.experiment.config import Source
    from dataeng_agents.core.warehouse.sql import source_from

    dialect = warehouse.dialect
    src = Source.model_validate({k: v for k, v in ev.source.items() if k in Source.model_fields})
    where = ev.source.get("table") or ev.source_path

    def readable(*columns: str) -> bool:
        cols = [exp.Count(this=col(c)) for c in columns] or [exp.Count(this=exp.Star())]
        q = (
            exp.select(*cols)
            .from_(source_from(src, dialect, ev.source_path, cfg.base_dir))
            .where(exp.false())
        )
        try:
            warehouse.query(q.sql(dialect=dialect))
        except WarehouseError:
            return False
        return True

    if not readable():
        return [
            TrackingFinding(
                id=f"tracking:{ev.name}:missing_table",
                severity="error",
                kind="missing_table",
                event=ev.name,
                message=f"event {ev.name} cannot be read from {where}: {err}",
            )
        ]
    columns = [ev.unit_column, ev.timestamp_column, ev.event_column, ev.loaded_at_column, *ev.properties]
    missing = [c for c in dict.fromkeys(columns) if c is not None and not readable(c)]
    if not missing:
        return [
            TrackingFinding(
                id=f"tracking:{ev.name}:query_failed",
                severity="error",
                kind="missing_table",
                event=ev.name,
                message=f"the check of event {ev.name} on {where} failed: {err}",
            )
        ]
    return [
        TrackingFinding(
            id=f"tracking:{ev.name}:missing_column:{c}",
            severity="error",
            kind="missing_column",
            event=ev.name,
            property=c,
            message=f"{where} has no column {c}"
            + (
                f" (property {c} of event {ev.name})" if c in ev.properties else f" (read by event {ev.name})"
            ),
        )
        for c in missing
    ]


def _two_prop_p(x1: float, n1: float, x2: float, n2: float) -> float | None:
    if n1 <= 0 or n2 <= 0:
        return None
    p = (x1 + x2) / (n1 + n2)
    if p <= 0 or p >= 1:
        return None if x1 / n1 == x2 / n2 else 0.0
    z = (x1 / n1 - x2 / n2) / math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
    return math.erfc(abs(z) / math.sqrt(2))


def check_tracking_plan(
    cfg: ExperimentConfig,
    life: LifecycleConfig,
    warehouse: Warehouse,
    *,
    start: datetime | date | None = None,
    end: datetime | date | None = None,
    now: datetime | None = None,
    progress: bool = False,
) -> TrackingCheckReport:
    """Runs the tracking plan against the warehouse; one small aggregate query per event."""
    plan = build_tracking_plan(cfg, life)
    start = start if start is not None else cfg.start
    end = end if end is not None else (now or cfg.end)
    control = cfg.control_name
    variants = [v.name for v in cfg.variants]
    tol, alpha = life.tracking.max_missing_rate, life.tracking.alpha
    stats: list[EventVariantStats] = []
    findings: list[TrackingFinding] = []

    bar = None
    if progress:
        from rich.console import Console
        from rich.progress import Progress

        bar = Progress(console=Console(stderr=True), transient=True)
        bar.start()
        task = bar.add_task("checking tracking plan", total=len(plan.events))
    try:
        for ev in plan.events:
            sql = tracking_query(cfg, ev, warehouse.dialect, start=start, end=end).sql(
                dialect=warehouse.dialect
            )
            try:
                rows = warehouse.query(sql)
            except WarehouseError as err:
                findings += _diagnose(cfg, ev, warehouse, err)
                continue
            finally:
                if bar is not None:
                    bar.update(task, advance=1)
            by_variant = {str(r["variant"]): r for r in rows}
            prop_alias = {name: f"p{k}" for k, name in enumerate(ev.properties)}
            for v in variants:
                r = by_variant.get(v)
                if r is None:
                    continue
                s = EventVariantStats(
                    event=ev.name,
                    variant=v,
                    exposed_units=int(r["exposed_units"] or 0),
                    events=int(r["events"] or 0),
                    units_with_event=int(r["units_with_event"] or 0),
                    late=int(r["late"] or 0) if ev.loaded_at_column else None,
                    null_counts={n: int(r.get(f"{a}_null") or 0) for n, a in prop_alias.items()},
                    invalid_counts={
                        n: int(r.get(f"{a}_invalid") or 0)
                        for n, a in prop_alias.items()
                        if f"{a}_invalid" in r
                    },
                    type_error_counts={
                        n: int(r.get(f"{a}_type") or 0) for n, a in prop_alias.items() if f"{a}_type" in r
                    },
                )
                stats.append(s)
            findings += _judge(ev, [s for s in stats if s.event == ev.name], control, tol, alpha)
    finally:
        if bar is not None:
            bar.stop()

    unique: dict[str, TrackingFinding] = {}
    for f in findings:
        unique.setdefault(f.id, f)
    findings = list(unique.values())

    def _iso(x: datetime | date | None) -> str | None:
        return x.isoformat() if x is not None else None

    return TrackingCheckReport(
        experiment_id=cfg.id,
        plan_version=plan.version,
        plan_fingerprint=plan.fingerprint,
        checked_at=now or datetime.now(UTC),
        control=control,
        window=(_iso(start), _iso(end)),
        stats=stats,
        findings=findings,
    )


def _judge(
    ev: PlannedEvent, rows: list[EventVariantStats], control: str, tol: float, alpha: float
) -> list[TrackingFinding]:
    out: list[TrackingFinding] = []
    ctrl = next((s for s in rows if s.variant == control), None)

    def found(
        kind: FindingKind,
        s: EventVariantStats,
        message: str,
        *,
        rate: float,
        severity: Severity = "error",
        prop: str | None = None,
        key: str | None = None,
        control_rate: float | None = None,
        p_value: float | None = None,
    ) -> None:
        """A finding about variant ``s`` of this event, id ``tracking:<event>:<variant>:<key or
        kind>[:<prop>]``."""
        out.append(
            TrackingFinding(
                id=f"tracking:{ev.name}:{s.variant}:{key or kind}" + (f":{prop}" if prop else ""),
                severity=severity,
                kind=kind,
                event=ev.name,
                variant=s.variant,
                property=prop,
                rate=rate,
                control_rate=control_rate,
                p_value=p_value,
                message=message,
            )
        )

    def diff(
        kind: str, what: str, s: EventVariantStats, x: int, n: int, cx: int, cn: int, prop: str | None
    ) -> None:
        if ctrl is None or s.variant == control or n == 0 or cn == 0:
            return
        p = _two_prop_p(x, n, cx, cn)
        if p is not None and p < alpha:
            found(
                "variant_difference",
                s,
                f"{what} differs between {s.variant} ({x / n:.2%}) and {control} ({cx / cn:.2%}), "
                f"p = {p:.2g}: "
                + (
                    "an instrumentation difference looks exactly like a treatment effect"
                    if kind != "coverage"
                    else "a real effect of the feature, or the variant does not emit the event"
                ),
                rate=x / n,
                severity="error" if kind != "coverage" else "warning",
                prop=prop,
                key=kind,
                control_rate=cx / cn,
                p_value=p,
            )

    def property_error(kind: FindingKind, s: EventVariantStats, prop: str, count: int, says: str) -> None:
        """``count`` of the variant's events break property ``prop``: "<count> of <events> ... <says>"."""
        found(
            kind,
            s,
            f"{count} of {s.events} {ev.name} events in {s.variant} {says}",
            rate=count / s.events,
            prop=prop,
        )

    for s in rows:
        if s.exposed_units and s.events == 0:
            found(
                "missing_event",
                s,
                f"no {ev.name} events from the {s.exposed_units} units exposed to {s.variant}",
                rate=0.0,
            )
            continue
        for prop, spec in ev.properties.items():
            nulls = s.null_counts.get(prop, 0)
            if spec.required and s.events and nulls / s.events > tol:
                property_error(
                    "missing_property",
                    s,
                    prop,
                    nulls,
                    f"lack property {prop} ({nulls / s.events:.1%} > {tol:.1%} tolerated)",
                )
            bad = s.invalid_counts.get(prop, 0)
            if s.events and bad / s.events > tol:
                wrong_type = s.type_error_counts.get(prop, 0)
                what = (
                    f"{wrong_type} not of type {spec.type}"
                    + (f", {bad - wrong_type} outside its allowed values" if bad > wrong_type else "")
                    if wrong_type
                    else "outside its allowed values"
                )
                property_error(
                    "malformed_property",
                    s,
                    prop,
                    bad,
                    f"have a malformed {prop} ({what}; {bad / s.events:.1%})",
                )
            if ctrl is not None:
                diff(
                    "nulls",
                    f"share of {ev.name} events without {prop}",
                    s,
                    nulls,
                    s.events,
                    ctrl.null_counts.get(prop, 0),
                    ctrl.events,
                    prop,
                )
                diff(
                    "malformed",
                    f"share of {ev.name} events with a malformed {prop}",
                    s,
                    bad,
                    s.events,
                    ctrl.invalid_counts.get(prop, 0),
                    ctrl.events,
                    prop,
                )
        if s.late is not None and s.events and s.late / s.events > tol:
            found(
                "late_events",
                s,
                f"{s.late} of {s.events} {ev.name} events in {s.variant} arrived more than "
                f"{ev.max_delay_hours:g} h late ({s.late / s.events:.1%}); a scheduled analysis would miss them",
                rate=s.late / s.events,
                severity="warning",
            )
        if ctrl is not None and s.late is not None and ctrl.late is not None:
            diff("late", f"share of late {ev.name} events", s, s.late, s.events, ctrl.late, ctrl.events, None)
        if ctrl is not None and ev.name != EXPOSURE_EVENT:
            diff(
                "coverage",
                f"share of exposed units with a {ev.name} event",
                s,
                s.units_with_event,
                s.exposed_units,
                ctrl.units_with_event,
                ctrl.exposed_units,
                None,
            )
    return out
