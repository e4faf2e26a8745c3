"""Walking an OpenAPI document: operations, parameters, responses and every schema, with pointers.

Shared by the review checks, the breaking-change diff and the serving-API designer's self-check.
``$ref`` are followed through :meth:`OpenApiDocument.resolve`: local ones, and other files of a
multi-file spec where the document can read them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from dataeng_agents.core.api.loader import OpenApiDocument, Pointer

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
JSON_TYPES = ("application/json", "application/problem+json")


@dataclass
class Operation:
    method: str
    path: str
    op: dict[str, Any]
    pointer: Pointer
    parameters: dict[tuple[str, str], tuple[dict[str, Any], Pointer]] = field(default_factory=dict)

    @property
    def subject(self) -> str:
        return f"{self.method.upper()} {self.path}"

    @property
    def is_collection(self) -> bool:
        """The last path segment is a literal (``/orders``), not a parameter (``/orders/{id}``)."""
        segments = [s for s in self.path.split("/") if s]
        return bool(segments) and not (segments[-1].startswith("{") and segments[-1].endswith("}"))


def schema_types(schema: Any) -> set[str]:
    if not isinstance(schema, dict):
        return set()
    t = schema.get("type")
    if isinstance(t, str):
        return {t}
    if isinstance(t, list):
        return {str(x) for x in t}
    if "properties" in schema:
        return {"object"}
    if "items" in schema:
        return {"array"}
    return set()


def operations(doc: OpenApiDocument) -> Iterator[Operation]:
    """Every operation under ``paths`` (webhooks are implemented by the client and not listed)."""
    paths = doc.data.get("paths")
    if not isinstance(paths, dict):
        return
    for path, raw_item in paths.items():
        item = doc.resolve(raw_item)
        if not isinstance(item, dict):
            continue
        base: Pointer = ("paths", str(path))
        shared = _parameters(doc, item.get("parameters"), (*base, "parameters"))
        for method in HTTP_METHODS:
            # OpenAPI has no $ref for an operation, but multi-file specs use one (DigitalOcean's, read by
            # Redocly): OAS001 reports it, and the operation it names is still reviewed and compared
            op = doc.resolve(item.get(method))
            if not isinstance(op, dict):
                continue
            ptr = (*base, method)
            params = dict(shared)
            params.update(_parameters(doc, op.get("parameters"), (*ptr, "parameters")))
            yield Operation(method, str(path), op, ptr, params)


def _parameters(
    doc: OpenApiDocument, raw: Any, ptr: Pointer
) -> dict[tuple[str, str], tuple[dict[str, Any], Pointer]]:
    out: dict[tuple[str, str], tuple[dict[str, Any], Pointer]] = {}
    if not isinstance(raw, list):
        return out
    for i, p in enumerate(raw):
        where = doc.ref_pointer(p) or (*ptr, str(i))
        param = doc.resolve(p)
        if isinstance(param, dict) and isinstance(param.get("name"), str):
            out[(str(param.get("in", "")), param["name"])] = (param, where)
    return out


def responses(doc: OpenApiDocument, op: Operation) -> dict[str, tuple[dict[str, Any], Pointer]]:
    """Status code (``"200"``, ``"4XX"``, ``"default"``) -> resolved response and its pointer."""
    raw = op.op.get("responses")
    out: dict[str, tuple[dict[str, Any], Pointer]] = {}
    if isinstance(raw, dict):
        for code, resp in raw.items():
            where = doc.ref_pointer(resp) or (*op.pointer, "responses", str(code))
            r = doc.resolve(resp)
            if isinstance(r, dict):
                out[str(code)] = (r, where)
    return out


def header_names(doc: OpenApiDocument, response: dict[str, Any]) -> set[str]:
    headers = response.get("headers")
    return {str(h).lower() for h in headers} if isinstance(headers, dict) else set()


def json_media(doc: OpenApiDocument, holder: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(media type, media object)`` of a response/request body's JSON-ish content."""
    content = holder.get("content")
    if not isinstance(content, dict):
        return
    for mt, media in content.items():
        mt_l = str(mt).lower()
        if isinstance(media, dict) and ("json" in mt_l or mt_l == "*/*"):
            yield str(mt), media


FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def schema_media(doc: OpenApiDocument, holder: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(media type, media object)`` of every body whose schema describes fields: the JSON-ish ones and
    HTML forms. Form bodies carry properties like JSON ones (Stripe's whole request side is
    ``application/x-www-form-urlencoded``), so a contract diff must compare them too."""
    yield from json_media(doc, holder)
    content = holder.get("content")
    if isinstance(content, dict):
        for mt, media in content.items():
            if isinstance(media, dict) and str(mt).lower().split(";")[0].strip() in FORM_TYPES:
                yield str(mt), media


def merged_properties(doc: OpenApiDocument, schema: Any, depth: int = 0) -> dict[str, Any]:
    """Properties of a schema including its ``allOf`` parts (resolved), one level of composition deep."""
    schema = doc.resolve(schema)
    if not isinstance(schema, dict) or depth > 8:
        return {}
    props: dict[str, Any] = {}
    for part in schema.get("allOf") or []:
        props.update(merged_properties(doc, part, depth + 1))
    if isinstance(schema.get("properties"), dict):
        props.update(schema["properties"])
    return props


def merged_required(doc: OpenApiDocument, schema: Any, depth: int = 0) -> set[str]:
    schema = doc.resolve(schema)
    if not isinstance(schema, dict) or depth > 8:
        return set()
    out = {str(r) for r in schema.get("required") or [] if isinstance(r, str)}
    for part in schema.get("allOf") or []:
        out |= merged_required(doc, part, depth + 1)
    return out


_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_SCHEMA_ONES = ("items", "additionalProperties", "not", "contains", "if", "then", "else", "propertyNames")


def _walk_schema(node: Any, ptr: Pointer, out: list[tuple[Pointer, dict[str, Any]]], depth: int = 0) -> None:
    if not isinstance(node, dict) or "$ref" in node or depth > 64:
        return
    out.append((ptr, node))
    for key in _SCHEMA_MAPS:
        m = node.get(key)
        if isinstance(m, dict):
            for name, sub in m.items():
                _walk_schema(sub, (*ptr, key, str(name)), out, depth + 1)
    for key in _SCHEMA_LISTS:
        seq = node.get(key)
        if isinstance(seq, list):
            for i, sub in enumerate(seq):
                _walk_schema(sub, (*ptr, key, str(i)), out, depth + 1)
    for key in _SCHEMA_ONES:
        sub = node.get(key)
        if isinstance(sub, dict):
            _walk_schema(sub, (*ptr, key), out, depth + 1)
        elif isinstance(sub, list):  # OpenAPI 3.0 tuple-style items never existed, but be lenient
            for i, s in enumerate(sub):
                _walk_schema(s, (*ptr, key, str(i)), out, depth + 1)


def _content_schemas(holder: Any, ptr: Pointer, out: list[tuple[Pointer, dict[str, Any]]]) -> None:
    if not isinstance(holder, dict) or "$ref" in holder:
        return
    content = holder.get("content")
    if isinstance(content, dict):
        for mt, media in content.items():
            if isinstance(media, dict):
                _walk_schema(media.get("schema"), (*ptr, "content", str(mt), "schema"), out)
    headers = holder.get("headers")
    if isinstance(headers, dict):
        for h, header in headers.items():
            if isinstance(header, dict) and "$ref" not in header:
                _walk_schema(header.get("schema"), (*ptr, "headers", str(h), "schema"), out)


def all_schemas(doc: OpenApiDocument) -> list[tuple[Pointer, dict[str, Any]]]:
    """Every schema object written in the document (each once, where it is defined)."""
    out: list[tuple[Pointer, dict[str, Any]]] = []
    comps = doc.data.get("components")
    if isinstance(comps, dict):
        for name, s in (comps.get("schemas") or {}).items():
            _walk_schema(s, ("components", "schemas", str(name)), out)
        for name, p in (comps.get("parameters") or {}).items():
            if isinstance(p, dict) and "$ref" not in p:
                _walk_schema(p.get("schema"), ("components", "parameters", str(name), "schema"), out)
        for name, h in (comps.get("headers") or {}).items():
            if isinstance(h, dict) and "$ref" not in h:
                _walk_schema(h.get("schema"), ("components", "headers", str(name), "schema"), out)
        for section in ("requestBodies", "responses"):
            for name, holder in (comps.get(section) or {}).items():
                _content_schemas(holder, ("components", section, str(name)), out)
    for op in operations(doc):
        raw_params = op.op.get("parameters")
        if isinstance(raw_params, list):
            for i, p in enumerate(raw_params):
                if isinstance(p, dict) and "$ref" not in p:
                    _walk_schema(p.get("schema"), (*op.pointer, "parameters", str(i), "schema"), out)
        _content_schemas(op.op.get("requestBody"), (*op.pointer, "requestBody"), out)
        resps = op.op.get("responses")
        if isinstance(resps, dict):
            for code, r in resps.items():
                _content_schemas(r, (*op.pointer, "responses", str(code)), out)
    paths = doc.data.get("paths")
    if isinstance(paths, dict):  # path-level parameters
        for path, item in paths.items():
            if isinstance(item, dict) and isinstance(item.get("parameters"), list):
                for i, p in enumerate(item["parameters"]):
                    if isinstance(p, dict) and "$ref" not in p:
                        _walk_schema(
                            p.get("schema"), ("paths", str(path), "parameters", str(i), "schema"), out
                        )
    return out


def security_schemes(doc: OpenApiDocument) -> dict[str, dict[str, Any]]:
    comps = doc.data.get("components")
    schemes = comps.get("securitySchemes") if isinstance(comps, dict) else None
    if not isinstance(schemes, dict):
        return {}
    return {str(k): doc.resolve(v) for k, v in schemes.items() if isinstance(doc.resolve(v), dict)}


def effective_security(doc: OpenApiDocument, op: Operation) -> list[dict[str, Any]] | None:
    """The operation's security requirements (its own, else the root's); ``None`` when neither declares any."""
    sec = op.op["security"] if "security" in op.op else doc.data.get("security")
    return [s for s in sec if isinstance(s, dict)] if isinstance(sec, list) else None


def version_segment(segment: str) -> bool:
    """``v1``, ``v2``, ``v1.1``, ``v2beta``: a major-version path segment."""
    if len(segment) < 2 or segment[0] not in "vV":
        return False
    digits = ""
    for ch in segment[1:]:
        if ch.isdigit():
            digits += ch
        else:
            break
    return bool(digits)
