"""OpenAPI 3.0/3.1 checks (OAS001-OAS023) over a parsed :class:`OpenApiDocument`."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from dataeng_agents.core.api.context import ApiCheckContext
from dataeng_agents.core.api.loader import OpenApiDocument, openapi_validation_errors
from dataeng_agents.core.api.openapi_model import (
    Operation,
    all_schemas,
    effective_security,
    header_names,
    json_media,
    merged_properties,
    merged_required,
    operations,
    responses,
    schema_types,
    security_schemes,
    version_segment,
)

PROBLEM_FIELDS = frozenset({"type", "title", "status", "detail", "instance"})
BOUNDED_STRING_FORMATS = frozenset(
    {
        "date",
        "date-time",
        "time",
        "uuid",
        "ipv4",
        "ipv6",
        "duration",
        "int32",
        "int64",
        "byte-length",
    }
)
PATH_VERBS = frozenset(
    {
        "get",
        "list",
        "create",
        "add",
        "update",
        "delete",
        "remove",
        "set",
        "fetch",
        "make",
        "do",
        "insert",
        "modify",
        "retrieve",
        "put",
        "post",
        "patch",
        "edit",
        "save",
        "change",
    }
)
CREDENTIAL_PARAMS = frozenset(
    {
        "api_key",
        "apikey",
        "key",
        "token",
        "access_token",
        "auth",
        "auth_token",
        "password",
        "secret",
        "client_secret",
        "session",
        "sessionid",
        "jwt",
    }
)
RATE_LIMIT_HEADERS = (
    "ratelimit",
    "ratelimit-policy",
    "ratelimit-limit",
    "ratelimit-remaining",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-rate-limit-limit",
    "x-rate-limit-remaining",
)
CACHE_HEADERS = frozenset({"etag", "last-modified", "cache-control"})
IDEMPOTENCY_HEADERS = frozenset({"idempotency-key", "x-idempotency-key"})


def _norm(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def check_openapi(ctx: ApiCheckContext, doc: OpenApiDocument) -> int:
    """Run every OpenAPI rule; returns the number of operations."""
    if ctx.enabled("OAS001"):
        for pointer, message in openapi_validation_errors(doc):
            where = "/" + "/".join(pointer) if pointer else "/"
            ctx.emit("OAS001", doc.line(pointer), where, f"{where}: {message}")
    ops = list(operations(doc))
    _document_level(ctx, doc, ops)
    seen_ids: dict[str, Operation] = {}
    # names the API itself gives to resource ids (`/sessions/{session}`): a query parameter of the same
    # name filters by that resource, it is not a credential (OAS020)
    path_params = frozenset(
        _norm(seg[1:-1])
        for op in ops
        for seg in op.path.split("/")
        if seg.startswith("{") and seg.endswith("}")
    )
    for op in ops:
        _operation(ctx, doc, op, seen_ids, path_params)
    _schemas(ctx, doc)
    return len(ops)


# ---------------------------------------------------------------------------------- document level
def _servers(doc: OpenApiDocument) -> list[tuple[str, tuple[str, ...]]]:
    out: list[tuple[str, tuple[str, ...]]] = []
    for i, s in enumerate(doc.data.get("servers") or []):
        if isinstance(s, dict) and isinstance(s.get("url"), str):
            out.append((s["url"], ("servers", str(i), "url")))
    for path, item in (doc.data.get("paths") or {}).items():
        if isinstance(item, dict):
            for i, s in enumerate(item.get("servers") or []):
                if isinstance(s, dict) and isinstance(s.get("url"), str):
                    out.append((s["url"], ("paths", str(path), "servers", str(i), "url")))
    return out


def _document_level(ctx: ApiCheckContext, doc: OpenApiDocument, ops: list[Operation]) -> None:
    servers = _servers(doc)
    if ctx.enabled("OAS003"):
        versioned = any(version_segment(seg) for url, _ in servers for seg in urlparse(url).path.split("/"))
        versioned = versioned or any(version_segment(seg) for op in ops for seg in op.path.split("/")[:3])
        versioned = versioned or any(
            _norm(name) in {"api_version", "x_api_version", "version", "accept_version"}
            for op in ops
            for (_loc, name) in op.parameters
        )
        if not versioned and ops:
            where = ("servers",) if "servers" in doc.data else ("openapi",)
            ctx.emit(
                "OAS003",
                doc.line(where),
                "servers",
                "no major version in the server URLs or paths (/v1) and no version header or query parameter",
            )
    if ctx.enabled("OAS021"):
        for url, ptr in servers:
            parsed = urlparse(url)
            if parsed.scheme == "http" and parsed.hostname not in {
                "localhost",
                "127.0.0.1",
                "::1",
                "0.0.0.0",
            }:
                ctx.emit("OAS021", doc.line(ptr), url, f"server URL {url} is plain http")
    schemes = security_schemes(doc)
    if ctx.enabled("OAS020"):
        for name, scheme in schemes.items():
            if scheme.get("type") == "apiKey" and scheme.get("in") == "query":
                ctx.emit(
                    "OAS020",
                    doc.line(("components", "securitySchemes", name)),
                    name,
                    f"security scheme '{name}' sends the API key in the query parameter '{scheme.get('name')}'",
                )
    if ctx.enabled("OAS006"):
        requirement_lists: list[tuple[Any, tuple[str, ...]]] = [(doc.data.get("security"), ("security",))]
        requirement_lists += [(op.op.get("security"), (*op.pointer, "security")) for op in ops]
        for reqs, ptr in requirement_lists:
            if not isinstance(reqs, list):
                continue
            for i, req in enumerate(reqs):
                for name in req if isinstance(req, dict) else ():
                    if name not in schemes:
                        ctx.emit(
                            "OAS006",
                            doc.line((*ptr, str(i))),
                            str(name),
                            f"security requirement '{name}' is not defined in components.securitySchemes",
                        )
    if ctx.enabled("OAS014"):
        _property_casing(ctx, doc)


def _style(name: str) -> str | None:
    if "_" in name.strip("_") and name.lower() == name:
        return "snake_case"
    if name[:1].islower() and any(c.isupper() for c in name) and "_" not in name and "-" not in name:
        return "camelCase"
    return None


def _property_casing(ctx: ApiCheckContext, doc: OpenApiDocument) -> None:
    by_style: dict[str, list[tuple[str, tuple[str, ...]]]] = {"snake_case": [], "camelCase": []}
    for ptr, schema in all_schemas(doc):
        props = schema.get("properties")
        if isinstance(props, dict):
            for name in props:
                style = _style(str(name))
                if style:
                    by_style[style].append((str(name), (*ptr, "properties", str(name))))
    snake, camel = by_style["snake_case"], by_style["camelCase"]
    if not snake or not camel:
        return
    minority, majority = (snake, "camelCase") if len(snake) < len(camel) else (camel, "snake_case")
    style = "snake_case" if majority == "camelCase" else "camelCase"
    for name, ptr in minority:
        ctx.emit(
            "OAS014",
            doc.line(ptr),
            name,
            f"property '{name}' is {style} while most properties ({max(len(snake), len(camel))}) are {majority}",
        )


# ---------------------------------------------------------------------------------- per operation
def _operation(
    ctx: ApiCheckContext,
    doc: OpenApiDocument,
    op: Operation,
    seen_ids: dict[str, Operation],
    path_params: frozenset[str],
) -> None:
    line = doc.line(op.pointer)
    subj = op.subject
    resps = responses(doc, op)
    codes = set(resps)
    # OAS017 / OAS018 operationId
    op_id = op.op.get("operationId")
    if not isinstance(op_id, str) or not op_id:
        ctx.emit("OAS017", line, subj, f"{subj} has no operationId")
    elif op_id in seen_ids:
        ctx.emit(
            "OAS018",
            doc.line((*op.pointer, "operationId")),
            subj,
            f"operationId '{op_id}' of {subj} is also used by {seen_ids[op_id].subject}",
        )
    else:
        seen_ids[op_id] = op
    # OAS015 documentation
    if not op.op.get("summary") and not op.op.get("description"):
        ctx.emit("OAS015", line, subj, f"{subj} has neither a summary nor a description")
    # OAS005 security
    sec = effective_security(doc, op)
    if sec is None:
        ctx.emit(
            "OAS005", line, subj, f"{subj} has no security requirement (none on the operation or the root)"
        )
    elif not sec or all(not req for req in sec):
        ctx.emit(
            "OAS005", line, subj, f"{subj} allows anonymous access (`security` is empty or contains {{}})"
        )
    # OAS020 credentials in query parameters
    for (loc, name), (_param, ptr) in op.parameters.items():
        if loc == "query" and _norm(name) in CREDENTIAL_PARAMS and _norm(name) not in path_params:
            ctx.emit(
                "OAS020", doc.line(ptr), subj, f"{subj} takes the credential '{name}' as a query parameter"
            )
    # OAS002 pagination on list endpoints
    if op.method == "get" and op.is_collection and _returns_list(doc, resps):
        pagination = {_norm(p) for p in ctx.config.pagination_params}
        if not any(loc == "query" and _norm(name) in pagination for (loc, name) in op.parameters):
            ctx.emit(
                "OAS002", line, subj, f"{subj} returns a list but takes no page size or cursor parameter"
            )
    # OAS004 problem details
    error_codes = sorted(c for c in codes if c[:1] in "45" or c == "default")
    if not error_codes:
        ctx.emit("OAS004", line, subj, f"{subj} documents no error response (4xx/5xx/default)")
    else:
        plain = [c for c in error_codes if not _is_problem(doc, resps[c][0])]
        if plain:
            ctx.emit(
                "OAS004",
                doc.line(resps[plain[0]][1]),
                subj,
                f"{subj}: error response(s) {', '.join(plain)} do not use problem details (RFC 9457)",
            )
    # OAS007 idempotency key
    if op.method == "post" and ("201" in codes or op.is_collection):
        headers = {_norm(name).replace("_", "-") for (loc, name) in op.parameters if loc == "header"}
        if not headers & IDEMPOTENCY_HEADERS:
            ctx.emit("OAS007", line, subj, f"{subj} creates a resource without an Idempotency-Key header")
    # OAS008 429
    if "429" not in codes and "4XX" not in codes:
        ctx.emit("OAS008", line, subj, f"{subj} documents no 429 Too Many Requests response")
    elif "429" in codes and not header_names(doc, resps["429"][0]) & {"retry-after", *RATE_LIMIT_HEADERS}:
        ctx.emit(
            "OAS008",
            doc.line(resps["429"][1]),
            subj,
            f"{subj}: the 429 response declares no Retry-After header",
        )
    # OAS009 rate-limit headers on success
    success = [c for c in codes if c.startswith("2")]
    if success and not any(header_names(doc, resps[c][0]) & set(RATE_LIMIT_HEADERS) for c in success):
        ctx.emit("OAS009", line, subj, f"{subj}: no 2xx response declares RateLimit headers")
    # OAS010 caching headers on GET
    if op.method == "get" and "200" in codes and not header_names(doc, resps["200"][0]) & CACHE_HEADERS:
        ctx.emit(
            "OAS010",
            doc.line(resps["200"][1]),
            subj,
            f"{subj}: the 200 response declares no ETag, Last-Modified or Cache-Control header",
        )
    # OAS016 examples on 2xx JSON responses
    for c in success:
        for mt, media in json_media(doc, resps[c][0]):
            schema = doc.resolve(media.get("schema"))
            if not (
                media.get("example") is not None
                or media.get("examples")
                or (
                    isinstance(schema, dict) and (schema.get("example") is not None or schema.get("examples"))
                )
            ):
                ctx.emit(
                    "OAS016",
                    doc.line((*resps[c][1], "content", mt)),
                    subj,
                    f"{subj}: the {c} {mt} response has no example",
                )
    # OAS023 validation error response on writes
    if (
        op.method in ("post", "put", "patch")
        and op.op.get("requestBody") is not None
        and not codes & {"400", "422", "4XX"}
    ):
        ctx.emit("OAS023", line, subj, f"{subj} takes a request body but documents neither 400 nor 422")
    # OAS013 / OAS019 path naming (once per path: on its first operation)
    if op.method == _first_method(doc, op.path):
        _path_naming(ctx, doc, op)


def _first_method(doc: OpenApiDocument, path: str) -> str | None:
    item = doc.resolve((doc.data.get("paths") or {}).get(path))
    from dataeng_agents.core.api.openapi_model import HTTP_METHODS

    return next((m for m in HTTP_METHODS if isinstance(item, dict) and isinstance(item.get(m), dict)), None)


def _path_naming(ctx: ApiCheckContext, doc: OpenApiDocument, op: Operation) -> None:
    line = doc.line(("paths", op.path))
    literals = [s for s in op.path.split("/") if s and not (s.startswith("{") and s.endswith("}"))]
    bad = [s for s in literals if not all(c.islower() or c.isdigit() or c in "-." for c in s)]
    if bad:
        ctx.emit("OAS013", line, op.path, f"path {op.path}: segment(s) {', '.join(bad)} are not kebab-case")
    for seg in literals:
        words = _words(seg)
        if words and words[0] in PATH_VERBS:
            ctx.emit(
                "OAS019", line, op.path, f"path {op.path}: segment '{seg}' starts with the verb '{words[0]}'"
            )
            break


def _words(segment: str) -> list[str]:
    words: list[str] = []
    cur = ""
    for ch in segment:
        if ch in "-_.":
            if cur:
                words.append(cur.lower())
            cur = ""
        elif ch.isupper() and cur and not cur[-1].isupper():
            words.append(cur.lower())
            cur = ch
        else:
            cur += ch
    if cur:
        words.append(cur.lower())
    return words


def _returns_list(doc: OpenApiDocument, resps: dict[str, tuple[dict[str, Any], tuple[str, ...]]]) -> bool:
    resp = resps.get("200") or next((r for c, r in resps.items() if c.startswith("2")), None)
    if resp is None:
        return False
    for _mt, media in json_media(doc, resp[0]):
        schema = doc.resolve(media.get("schema"))
        if "array" in schema_types(schema):
            return True
        if _list_envelope(doc, schema):
            return True
    return False


def _list_envelope(doc: OpenApiDocument, schema: Any) -> bool:
    """An object that wraps one page of items (``{data: [...], has_more}``), not a resource that happens
    to hold arrays. Real specs return singletons from literal paths (``GET /account``, ``GET /v1/balance``)
    whose objects carry side arrays (``warnings``) or several array attributes; counting those as lists
    made OAS002 ask for pagination on a single resource. So: exactly one array is the payload (only the
    ``required`` arrays count when the schema declares ``required``), and the object has no ``id``
    (a page is not an entity)."""
    props = merged_properties(doc, schema)
    if "id" in props:
        return False
    required = merged_required(doc, schema)
    arrays = [
        name
        for name, prop in props.items()
        if "array" in schema_types(doc.resolve(prop)) and (not required or name in required)
    ]
    return len(arrays) == 1


def _is_problem(doc: OpenApiDocument, response: dict[str, Any]) -> bool:
    content = response.get("content")
    if not isinstance(content, dict) or not content:
        return False
    if any(str(mt).lower().startswith("application/problem+") for mt in content):
        return True
    for _mt, media in json_media(doc, response):
        if len(set(merged_properties(doc, media.get("schema"))) & PROBLEM_FIELDS) >= 3:
            return True
    return False


# ---------------------------------------------------------------------------------- schemas
def _schemas(ctx: ApiCheckContext, doc: OpenApiDocument) -> None:
    if not (ctx.enabled("OAS011") or ctx.enabled("OAS012") or ctx.enabled("OAS022")):
        return
    for ptr, schema in all_schemas(doc):
        types = schema_types(schema)
        if "const" in schema or "enum" in schema:
            continue
        where = "/" + "/".join(ptr)
        if "array" in types and "maxItems" not in schema:
            ctx.emit("OAS011", doc.line(ptr), where, f"array at {where} has no maxItems")
        if (
            "string" in types
            and "maxLength" not in schema
            and schema.get("format") not in BOUNDED_STRING_FORMATS
        ):
            ctx.emit("OAS012", doc.line(ptr), where, f"string at {where} has no maxLength")
        if "integer" in types:
            missing = [
                k
                for k, alt in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum"))
                if k not in schema and alt not in schema
            ]
            if missing:
                ctx.emit("OAS022", doc.line(ptr), where, f"integer at {where} has no {' or '.join(missing)}")
