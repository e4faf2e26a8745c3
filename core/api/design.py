"""``design_serving_api``: the serving API for a pipeline's output tables, designed after the data layer.

From a :class:`PipelineSpec` (its sinks, their grain ``upsert_key`` and ``partition_by``, the freshness
SLO, the declared volumes and consumers) this builds an OpenAPI 3.1 document with one read resource
per output table: cursor pagination, equality filters on the grain keys and range filters on the
partition keys, ETag/Cache-Control caching and rate limits sized from the volumes, OAuth2 client
credentials with one read scope per table, and RFC 9457 problem details on every error. It then
reviews its own document with the API reviewer at the ``strict`` profile and openapi-spec-validator,
and lists the resilience and observability decisions (timeouts, retry budgets, circuit breakers,
SLOs) as structured notes, each with the formula that sized it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import yaml
from dataeng_agents.core.pipeline_spec import PipelineSpec, Sink, load_spec
from pydantic import BaseModel, ConfigDict, Field

#: assumed average serialised row size when turning GB/day into rows/day (documented in every note)
ASSUMED_ROW_BYTES = 1024
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
#: a client may use at most this share of its quota just to keep up with arriving rows
KEEP_UP_SHARE = 0.1
MIN_RPM, MAX_RPM = 60, 6000
MIN_MAX_AGE, MAX_MAX_AGE = 5, 3600
KEY_MAX_LENGTH = 256
CURSOR_MAX_LENGTH = 512


class ServingResource(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    sink: str
    path: str
    item_path: str | None
    grain: list[str]
    partition_keys: list[str]
    rows_per_day: int
    cache_max_age_seconds: int
    rate_limit_per_minute: int
    scope: str
    rationale: str


class ServingNote(BaseModel):
    """One resilience / observability / sizing decision, with the numbers it rests on."""

    model_config = ConfigDict(extra="forbid")

    id: str
    area: Literal["timeouts", "resilience", "slo", "observability", "caching", "rate-limit", "auth"]
    title: str
    detail: str
    values: dict[str, float | int | str] = Field(default_factory=dict)


class ServingApiDesign(BaseModel):
    model_config = ConfigDict(extra="forbid")

    spec_name: str
    openapi: dict[str, Any]
    resources: list[ServingResource]
    notes: list[ServingNote]
    review_findings: int = Field(
        description="Findings of the API reviewer at the strict profile (0 expected)."
    )
    review_rules: dict[str, int] = Field(default_factory=dict)
    validator_errors: list[str] = Field(default_factory=list)

    def openapi_yaml(self) -> str:
        return str(yaml.safe_dump(self.openapi, sort_keys=False, allow_unicode=True, width=110))


def _kebab(name: str) -> str:
    return name.strip().replace("_", "-").lower()


def _camel(name: str) -> str:
    parts = [p for p in name.replace("-", "_").split("_") if p]
    return parts[0].lower() + "".join(p[:1].upper() + p[1:].lower() for p in parts[1:]) if parts else name


def _pascal(name: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in name.replace("-", "_").split("_") if p)


def _clamp(x: float, lo: int, hi: int) -> int:
    return int(min(max(x, lo), hi))


def _sizing(spec: PipelineSpec, sink: Sink) -> tuple[int, int, int]:
    """rows/day, cache max-age (s) and requests/minute for one sink."""
    rows_per_day = int(spec.total_gb_per_day * 1e9 / ASSUMED_ROW_BYTES / max(len(spec.sinks), 1))
    # cache at most a quarter of the freshness budget: served data stays within the SLO
    max_age = _clamp(spec.freshness_slo_minutes * 60 / 4, MIN_MAX_AGE, MAX_MAX_AGE)
    pages_per_minute = rows_per_day / 1440 / MAX_PAGE_SIZE
    rpm = _clamp(math.ceil(pages_per_minute / KEEP_UP_SHARE), MIN_RPM, MAX_RPM)
    return rows_per_day, max_age, rpm


def _str(desc: str, max_length: int = KEY_MAX_LENGTH, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "maxLength": max_length, "description": desc, **extra}


def _problem_components() -> dict[str, Any]:
    problem = {
        "type": "object",
        "description": "RFC 9457 problem details.",
        "required": ["type", "title", "status"],
        "properties": {
            "type": _str("URI reference that identifies the problem type.", 512, format="uri-reference"),
            "title": _str("Short, human-readable summary of the problem type.", 256),
            "status": {"type": "integer", "minimum": 100, "maximum": 599, "description": "HTTP status code."},
            "detail": _str("Explanation specific to this occurrence.", 2048),
            "instance": _str("URI reference of this occurrence.", 512, format="uri-reference"),
        },
        "example": {
            "type": "https://problems.example.com/invalid-cursor",
            "title": "Invalid cursor",
            "status": 400,
            "detail": "The cursor has expired; restart from the first page.",
        },
    }
    headers = {
        "RateLimit": {
            "description": "Remaining quota in the current window (IETF RateLimit header fields).",
            "schema": _str("For example `limit=600, remaining=599, reset=60`.", 128),
        },
        "RateLimit-Policy": {
            "description": "The quota policy.",
            "schema": _str("For example `600;w=60`.", 128),
        },
        "ETag": {
            "description": "Entity tag of the representation; send it back in If-None-Match.",
            "schema": _str("Opaque entity tag.", 128),
        },
        "Cache-Control": {
            "description": "Caching directives sized to the freshness SLO.",
            "schema": _str("For example `max-age=300, stale-if-error=600`.", 128),
        },
        "Retry-After": {
            "description": "Seconds to wait before retrying.",
            "schema": {"type": "integer", "minimum": 1, "maximum": 3600},
        },
    }

    def problem_response(description: str, extra_headers: tuple[str, ...] = ()) -> dict[str, Any]:
        resp: dict[str, Any] = {
            "description": description,
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        if extra_headers:
            resp["headers"] = {h: {"$ref": f"#/components/headers/{h}"} for h in extra_headers}
        return resp

    responses = {
        "BadRequest": problem_response("The request is malformed (bad filter or cursor)."),
        "Unauthorized": problem_response("Missing or invalid access token."),
        "Forbidden": problem_response("The token lacks the read scope of this resource."),
        "NotFound": problem_response("No row with this key."),
        "TooManyRequests": problem_response(
            "Rate limit exceeded; retry after Retry-After seconds.",
            ("Retry-After", "RateLimit", "RateLimit-Policy"),
        ),
        "InternalError": problem_response("Unexpected server error."),
        "Unavailable": problem_response(
            "The warehouse is unavailable (circuit open); retry after Retry-After seconds.", ("Retry-After",)
        ),
        "NotModified": {
            "description": "The representation has not changed since the ETag sent in If-None-Match.",
            "headers": {h: {"$ref": f"#/components/headers/{h}"} for h in ("ETag", "Cache-Control")},
        },
    }
    return {"schemas": {"Problem": problem}, "headers": headers, "responses": responses}


_ERRORS = {
    "304": "NotModified",
    "400": "BadRequest",
    "401": "Unauthorized",
    "403": "Forbidden",
    "429": "TooManyRequests",
    "500": "InternalError",
    "503": "Unavailable",
}


def _error_refs(*extra: tuple[str, str]) -> dict[str, Any]:
    out = {code: {"$ref": f"#/components/responses/{name}"} for code, name in _ERRORS.items()}
    for code, name in extra:
        out[code] = {"$ref": f"#/components/responses/{name}"}
    return dict(sorted(out.items()))


def _ok_headers() -> dict[str, Any]:
    return {
        h: {"$ref": f"#/components/headers/{h}"}
        for h in ("ETag", "Cache-Control", "RateLimit", "RateLimit-Policy")
    }


def _resource(spec: PipelineSpec, sink: Sink, doc: dict[str, Any]) -> ServingResource:
    rows_per_day, max_age, rpm = _sizing(spec, sink)
    base = f"/{_kebab(sink.name)}"
    row_schema_name = _pascal(sink.name) + "Row"
    page_schema_name = _pascal(sink.name) + "Page"
    scope = f"read:{sink.name}"
    grain = list(sink.upsert_key)
    partitions = [p for p in sink.partition_by if p not in grain]
    props: dict[str, Any] = {}
    example: dict[str, Any] = {}
    for key in grain:
        props[key] = _str(f"Grain key `{key}` of {sink.name}.")
        example[key] = f"{key}-0001"
    for key in partitions:
        props[key] = {"type": "string", "format": "date", "description": f"Partition key `{key}`."}
        example[key] = "2026-01-31"
    props["updated_at"] = {
        "type": "string",
        "format": "date-time",
        "description": "When the pipeline last wrote this row (freshness).",
    }
    example["updated_at"] = "2026-01-31T06:00:00Z"
    props["attributes"] = {
        "type": "object",
        "description": f"The other columns of {sink.name}, by column name.",
        "maxProperties": 512,
        "additionalProperties": True,
    }
    example["attributes"] = {}
    doc["components"]["schemas"][row_schema_name] = {
        "type": "object",
        "description": f"One row of the output table {sink.name}.",
        "required": [*grain, "updated_at"],
        "properties": props,
        "example": example,
    }
    doc["components"]["schemas"][page_schema_name] = {
        "type": "object",
        "description": f"One page of {sink.name} rows in key order.",
        "required": ["data", "next_cursor"],
        "properties": {
            "data": {
                "type": "array",
                "maxItems": MAX_PAGE_SIZE,
                "description": "The rows of this page.",
                "items": {"$ref": f"#/components/schemas/{row_schema_name}"},
            },
            "next_cursor": {
                "type": ["string", "null"],
                "maxLength": CURSOR_MAX_LENGTH,
                "description": "Opaque cursor of the next page; null on the last page.",
            },
        },
        "example": {"data": [example], "next_cursor": "eyJrIjoiMDAwMSJ9"},
    }
    params: list[dict[str, Any]] = [
        {
            "name": "limit",
            "in": "query",
            "required": False,
            "description": "Page size.",
            "schema": {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_PAGE_SIZE,
                "default": DEFAULT_PAGE_SIZE,
            },
        },
        {
            "name": "cursor",
            "in": "query",
            "required": False,
            "description": "The `next_cursor` of the previous page; omit for the first page.",
            "schema": _str("Opaque pagination cursor.", CURSOR_MAX_LENGTH),
        },
        {"$ref": "#/components/parameters/IfNoneMatch"},
    ]
    for key in grain:
        params.append(
            {
                "name": key,
                "in": "query",
                "required": False,
                "description": f"Only rows with this `{key}`.",
                "schema": _str(f"Value of `{key}`."),
            }
        )
    for key in partitions:
        for suffix, op in (("from", ">="), ("to", "<")):
            params.append(
                {
                    "name": f"{key}_{suffix}",
                    "in": "query",
                    "required": False,
                    "description": f"Only rows with `{key}` {op} this date (partition pruning).",
                    "schema": {"type": "string", "format": "date"},
                }
            )
    ok = {
        "description": f"A page of {sink.name}.",
        "headers": _ok_headers(),
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{page_schema_name}"}}},
    }
    security = [{"oauth2": [scope]}]
    doc["paths"][base] = {
        "get": {
            "operationId": f"list{_pascal(sink.name)}",
            "summary": f"List {sink.name} rows",
            "description": (
                f"Rows of the output table {sink.name}, ordered by "
                f"{', '.join(grain) if grain else ', '.join([*partitions, 'updated_at'])} (the cursor's sort key), "
                f"one cursor page at a time. Cached for {max_age} s; {rpm} requests per minute per client."
            ),
            "tags": [sink.name],
            "security": security,
            "parameters": params,
            "responses": {"200": ok, **_error_refs()},
        }
    }
    doc["components"]["securitySchemes"]["oauth2"]["flows"]["clientCredentials"]["scopes"][scope] = (
        f"Read the rows of {sink.name}."
    )
    doc["tags"].append(
        {"name": sink.name, "description": f"Output table {sink.name} of the {spec.name} pipeline."}
    )
    item_path = None
    if len(grain) == 1:
        key = grain[0]
        item_path = f"{base}/{{{key}}}"
        doc["paths"][item_path] = {
            "get": {
                "operationId": f"get{_pascal(sink.name)}Row",
                "summary": f"Get one {sink.name} row",
                "description": f"The row of {sink.name} with this `{key}`.",
                "tags": [sink.name],
                "security": security,
                "parameters": [
                    {
                        "name": key,
                        "in": "path",
                        "required": True,
                        "description": f"The `{key}`.",
                        "schema": _str(f"Value of `{key}`."),
                    },
                    {"$ref": "#/components/parameters/IfNoneMatch"},
                ],
                "responses": {
                    "200": {
                        "description": f"The {sink.name} row.",
                        "headers": _ok_headers(),
                        "content": {
                            "application/json": {
                                "schema": {"$ref": f"#/components/schemas/{row_schema_name}"}
                            }
                        },
                    },
                    **_error_refs(("404", "NotFound")),
                },
            }
        }
    why = (
        f"one read resource for the output table; grain {grain or 'none declared'} gives "
        f"{'an item endpoint and ' if item_path else ''}equality filters, partition keys {partitions or 'none'} give "
        f"range filters; ~{rows_per_day:,} rows/day at {ASSUMED_ROW_BYTES} B/row."
    )
    return ServingResource(
        id=f"resource:{sink.name}",
        sink=sink.name,
        path=base,
        item_path=item_path,
        grain=grain,
        partition_keys=partitions,
        rows_per_day=rows_per_day,
        cache_max_age_seconds=max_age,
        rate_limit_per_minute=rpm,
        scope=scope,
        rationale=why,
    )


def _notes(spec: PipelineSpec, resources: list[ServingResource]) -> list[ServingNote]:
    external = any(c.external or c.kind in ("api", "ml_serving", "reverse_etl") for c in spec.consumers)
    availability = 99.9 if external else 99.5
    budget_minutes = round((100 - availability) / 100 * 30 * 24 * 60, 1)
    max_age = max((r.cache_max_age_seconds for r in resources), default=MIN_MAX_AGE)
    served_freshness = round(spec.freshness_slo_minutes + max_age / 60, 1)
    rpm = max((r.rate_limit_per_minute for r in resources), default=MIN_RPM)
    return [
        ServingNote(
            id="note:timeouts",
            area="timeouts",
            title="Timeout budget per request",
            detail="Warehouse query timeout 1.5 s for list pages and 0.8 s for item reads, server request "
            "timeout 2 s, client timeout 3 s: each layer gives up before its caller does.",
            values={"warehouse_list_s": 1.5, "warehouse_item_s": 0.8, "server_s": 2.0, "client_s": 3.0},
        ),
        ServingNote(
            id="note:retries",
            area="resilience",
            title="Retries with a budget",
            detail="Clients retry only GETs, on 429/503/timeouts, at most 3 attempts with exponential "
            "backoff (base 200 ms, full jitter) and always honour Retry-After; retries may add at most "
            "10% to the request rate (retry budget), so a slow warehouse is not hit by a retry storm.",
            values={"max_attempts": 3, "backoff_base_ms": 200, "retry_budget_ratio": 0.1},
        ),
        ServingNote(
            id="note:circuit-breaker",
            area="resilience",
            title="Circuit breaker in front of the warehouse",
            detail="Open after 50% failures or timeouts over the last 20 calls, stay open 30 s, then let one "
            "probe through (half-open). While open, serve cached pages (stale-if-error) or 503 with "
            "Retry-After: 30.",
            values={"failure_ratio": 0.5, "window_calls": 20, "open_seconds": 30},
        ),
        ServingNote(
            id="note:slo",
            area="slo",
            title="Service level objectives",
            detail=f"Availability {availability}% over 30 days ({budget_minutes} min error budget; "
            f"{'external' if external else 'internal'} consumers), p99 latency 300 ms for item reads and "
            f"1000 ms for list pages, served-data freshness {served_freshness} min (the pipeline's "
            f"{spec.freshness_slo_minutes:g} min SLO plus the {max_age} s cache).",
            values={
                "availability_pct": availability,
                "error_budget_minutes_30d": budget_minutes,
                "p99_item_ms": 300,
                "p99_list_ms": 1000,
                "freshness_minutes": served_freshness,
            },
        ),
        ServingNote(
            id="note:observability",
            area="observability",
            title="What to measure",
            detail="RED metrics per route (rate, errors by status, duration histogram), W3C traceparent "
            "propagated to the warehouse query, structured access logs without query-string values, "
            "and a freshness gauge (now - max(updated_at)) per table alerting at the freshness SLO.",
            values={"freshness_alert_minutes": served_freshness},
        ),
        ServingNote(
            id="note:caching",
            area="caching",
            title="Cache sized to the freshness SLO",
            detail=f"Cache-Control max-age = freshness SLO / 4, clamped to {MIN_MAX_AGE}..{MAX_MAX_AGE} s "
            f"= {max_age} s, with ETag revalidation (304) and stale-if-error for circuit-open periods; "
            "the cache is keyed on the full query string and invalidated when a pipeline run commits.",
            values={"max_age_seconds": max_age},
        ),
        ServingNote(
            id="note:rate-limit",
            area="rate-limit",
            title="Rate limit sized from the declared volume",
            detail=f"Per client: enough {MAX_PAGE_SIZE}-row pages per minute to follow the arriving rows "
            f"using {int(KEEP_UP_SHARE * 100)}% of the quota (rows/day / 1440 / {MAX_PAGE_SIZE} / "
            f"{KEEP_UP_SHARE}), clamped to {MIN_RPM}..{MAX_RPM}; the largest table needs {rpm} "
            "requests/minute. 429 carries Retry-After and RateLimit headers.",
            values={"requests_per_minute": rpm, "assumed_row_bytes": ASSUMED_ROW_BYTES},
        ),
        ServingNote(
            id="note:auth",
            area="auth",
            title="OAuth2 client credentials, one read scope per table",
            detail="Service consumers authenticate with the client-credentials flow; each table has its own "
            "read scope (least privilege). Tokens go in the Authorization header, never the query string.",
            values={"scopes": len(resources)},
        ),
    ]


def design_serving_api(spec: PipelineSpec | str | Path | dict[str, Any]) -> ServingApiDesign:
    """Design the serving API of ``spec``'s output tables and review it (strict profile + validator)."""
    sp = load_spec(spec)
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": f"{sp.name} serving API",
            "version": "1.0.0",
            "description": (sp.description or f"Read access to the output tables of the {sp.name} pipeline.")
            + f" Owned by {sp.owner}.",
            "contact": {"name": sp.owner},
        },
        "servers": [{"url": f"https://api.example.com/{_kebab(sp.name)}/v1", "description": "Production."}],
        "security": [{"oauth2": []}],
        "tags": [],
        "paths": {},
        "components": {
            "securitySchemes": {
                "oauth2": {
                    "type": "oauth2",
                    "description": "OAuth2 client credentials.",
                    "flows": {
                        "clientCredentials": {
                            "tokenUrl": "https://auth.example.com/oauth2/token",
                            "scopes": {},
                        }
                    },
                }
            },
            "parameters": {
                "IfNoneMatch": {
                    "name": "If-None-Match",
                    "in": "header",
                    "required": False,
                    "description": "ETag of a cached copy; the answer is 304 when unchanged.",
                    "schema": _str("Entity tag.", 128),
                }
            },
            **_problem_components(),
        },
    }
    doc["components"]["schemas"] = dict(doc["components"]["schemas"])
    resources = [_resource(sp, sink, doc) for sink in sp.sinks]
    notes = _notes(sp, resources)
    design = ServingApiDesign(
        spec_name=sp.name, openapi=doc, resources=resources, notes=notes, review_findings=0
    )
    _self_review(design)
    return design


def _self_review(design: ServingApiDesign) -> None:
    """Review the designed document with our own reviewer (strict) and openapi-spec-validator."""
    from dataeng_agents.core.api.config import load_api_config
    from dataeng_agents.core.api.engine import review_document
    from dataeng_agents.core.api.loader import openapi_validation_errors, parse_openapi

    text = design.openapi_yaml()
    doc = parse_openapi(f"{design.spec_name}.openapi.yaml", text)
    design.validator_errors = [f"/{'/'.join(p)}: {m}" for p, m in openapi_validation_errors(doc)]
    _report, findings, _ = review_document(doc, load_api_config(profile="strict"))
    design.review_findings = len(findings)
    counts: dict[str, int] = {}
    for f in findings:
        counts[f.rule_id] = counts.get(f.rule_id, 0) + 1
    design.review_rules = dict(sorted(counts.items()))
