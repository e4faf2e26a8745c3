"""Protocol Buffers checks (PB001-PB009) over the proto-schema-parser AST."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from dataeng_agents.core.api.context import ApiCheckContext
from dataeng_agents.core.api.loader import ProtoDocument
from dataeng_agents.core.api.openapi_model import version_segment

MAX_FIELD_NUMBER = 536_870_911


@dataclass
class ProtoMessage:
    """A message flattened for checks: its fields (oneof members included) and reservations."""

    name: str  # dotted: Outer.Inner
    fields: list[tuple[str, int, str]] = field(default_factory=list)  # (name, number, type)
    reserved_numbers: list[tuple[int, int]] = field(default_factory=list)
    reserved_names: set[str] = field(default_factory=set)

    def reserved(self, number: int) -> bool:
        return any(lo <= number <= hi for lo, hi in self.reserved_numbers)


@dataclass
class ProtoEnum:
    name: str
    values: list[tuple[str, int]] = field(default_factory=list)


def parse_ranges(ranges: list[str]) -> list[tuple[int, int]]:
    """``["2", "5 to 10", "20 to max"]`` (the parser's text of each range) -> inclusive number ranges."""
    out: list[tuple[int, int]] = []
    for r in ranges:
        parts = str(r).replace(" ", "").split("to")
        try:
            lo = int(parts[0], 0)
            hi = MAX_FIELD_NUMBER if len(parts) > 1 and parts[1] == "max" else int(parts[-1], 0)
        except ValueError:
            continue
        out.append((lo, hi))
    return out


def _field_type(f: Any) -> str:
    """The field's type with its label when it changes the wire format (``repeated``)."""
    label = getattr(f.cardinality, "value", None)
    return f"repeated {f.type}" if label == "REPEATED" else str(f.type)


def collect(file: Any) -> tuple[str | None, list[ProtoMessage], list[ProtoEnum], list[tuple[str, Any]]]:
    """Package, every message and enum (nested ones with dotted names) and ``(service, method)`` pairs."""
    from proto_schema_parser import ast

    package: str | None = None
    messages: list[ProtoMessage] = []
    enums: list[ProtoEnum] = []
    rpcs: list[tuple[str, Any]] = []

    def enum_of(e: Any, prefix: str) -> None:
        pe = ProtoEnum(prefix + e.name)
        pe.values = [(v.name, int(v.number)) for v in e.elements if isinstance(v, ast.EnumValue)]
        enums.append(pe)

    def message_of(m: Any, prefix: str) -> None:
        pm = ProtoMessage(prefix + m.name)
        messages.append(pm)
        for el in m.elements:
            if isinstance(el, ast.Field):
                pm.fields.append((el.name, int(el.number), _field_type(el)))
            elif isinstance(el, ast.MapField):
                pm.fields.append((el.name, int(el.number), f"map<{el.key_type}, {el.value_type}>"))
            elif isinstance(el, ast.OneOf):
                pm.fields += [
                    (f.name, int(f.number), _field_type(f)) for f in el.elements if isinstance(f, ast.Field)
                ]
            elif isinstance(el, ast.Reserved):
                pm.reserved_numbers += parse_ranges(el.ranges)
                pm.reserved_names |= {str(n).strip("\"'") for n in el.names}
            elif isinstance(el, ast.Message):
                message_of(el, pm.name + ".")
            elif isinstance(el, ast.Enum):
                enum_of(el, pm.name + ".")

    for el in file.file_elements:
        if isinstance(el, ast.Package):
            package = el.name
        elif isinstance(el, ast.Message):
            message_of(el, "")
        elif isinstance(el, ast.Enum):
            enum_of(el, "")
        elif isinstance(el, ast.Service):
            rpcs += [(el.name, m) for m in el.elements if isinstance(m, ast.Method)]
    return package, messages, enums, rpcs


def _upper_snake(name: str) -> str:
    out = ""
    for i, ch in enumerate(name):
        if ch.isupper() and i and (name[i - 1].islower() or name[i - 1].isdigit()):
            out += "_"
        out += ch.upper()
    return out


def _pascal(name: str) -> bool:
    return name[:1].isupper() and "_" not in name


def check_proto(ctx: ApiCheckContext, doc: ProtoDocument) -> int:
    """Run every protobuf rule; returns the number of RPCs."""
    package, messages, enums, rpcs = collect(doc.file)
    if not package or not version_segment(package.split(".")[-1]):
        ctx.emit(
            "PB005",
            doc.line("package"),
            package or "(none)",
            f"package {package!r} has no version suffix (e.g. {package or 'acme.service'}.v1)"
            if package
            else "the file declares no package",
        )
    for m in messages:
        _message(ctx, doc, m)
    for e in enums:
        _enum(ctx, doc, e)
    _rpcs(ctx, doc, messages, rpcs)
    return len(rpcs)


def _message(ctx: ApiCheckContext, doc: ProtoDocument, m: ProtoMessage) -> None:
    mline = doc.line(f"message:{m.name}")
    short = m.name.rsplit(".", 1)[-1]
    if not _pascal(short):
        ctx.emit("PB007", mline, m.name, f"message {m.name} is not PascalCase")
    seen: dict[int, str] = {}
    for name, number, _type in m.fields:
        line = doc.line(f"field:{m.name}.{name}")
        subject = f"{m.name}.{name}"
        if number in seen:
            ctx.emit(
                "PB001", line, subject, f"{subject} reuses field number {number} of {m.name}.{seen[number]}"
            )
        else:
            seen[number] = name
        if m.reserved(number):
            ctx.emit("PB002", line, subject, f"{subject} uses the reserved field number {number}")
        if name in m.reserved_names:
            ctx.emit("PB002", line, subject, f"{subject} uses the reserved field name '{name}'")
        if not all(c.islower() or c.isdigit() or c == "_" for c in name):
            ctx.emit("PB006", line, subject, f"field {subject} is not lower_snake_case")
    if seen:
        gaps = [
            n
            for n in range(1, max(seen) + 1)
            if n not in seen and not m.reserved(n) and not 19000 <= n <= 19999
        ]
        if gaps:
            shown = ", ".join(str(n) for n in gaps[:10]) + (" ..." if len(gaps) > 10 else "")
            ctx.emit(
                "PB003",
                mline,
                m.name,
                f"message {m.name} skips field number(s) {shown} without reserving them",
            )


def _enum(ctx: ApiCheckContext, doc: ProtoDocument, e: ProtoEnum) -> None:
    eline = doc.line(f"enum:{e.name}")
    short = e.name.rsplit(".", 1)[-1]
    prefix = _upper_snake(short) + "_"
    if not _pascal(short):
        ctx.emit("PB007", eline, e.name, f"enum {e.name} is not PascalCase")
    if not e.values:
        return
    first_name, first_number = e.values[0]
    if first_number != 0:
        ctx.emit(
            "PB004",
            eline,
            e.name,
            f"enum {e.name} starts with {first_name} = {first_number}, not a zero value",
        )
    elif not first_name.endswith("_UNSPECIFIED"):
        ctx.emit(
            "PB004",
            doc.line(f"value:{e.name}.{first_name}"),
            e.name,
            f"enum {e.name}'s zero value {first_name} is not named {prefix}UNSPECIFIED",
        )
    for vname, _number in e.values:
        if vname != vname.upper():
            ctx.emit(
                "PB007",
                doc.line(f"value:{e.name}.{vname}"),
                f"{e.name}.{vname}",
                f"enum value {vname} is not UPPER_SNAKE_CASE",
            )
        elif not vname.startswith(prefix):
            ctx.emit(
                "PB007",
                doc.line(f"value:{e.name}.{vname}"),
                f"{e.name}.{vname}",
                f"enum value {vname} is not prefixed with {prefix}",
            )


def _find(messages: list[ProtoMessage], type_name: str) -> ProtoMessage | None:
    name = type_name.lstrip(".")
    for m in messages:
        if m.name == name or name.endswith("." + m.name):
            return m
    return None


def _rpcs(
    ctx: ApiCheckContext, doc: ProtoDocument, messages: list[ProtoMessage], rpcs: list[tuple[str, Any]]
) -> None:
    uses: dict[str, list[str]] = {}
    for service, method in rpcs:
        for t in (method.input_type.type, method.output_type.type):
            uses.setdefault(t, []).append(f"{service}.{method.name}")
    for service, method in rpcs:
        subject = f"{service}.{method.name}"
        line = doc.line(f"rpc:{subject}")
        if not _pascal(service):
            ctx.emit("PB007", doc.line(f"service:{service}"), service, f"service {service} is not PascalCase")
        if method.name.startswith("List"):
            req, resp = _find(messages, method.input_type.type), _find(messages, method.output_type.type)
            missing: list[str] = []
            if req is not None:
                names = {f[0] for f in req.fields}
                missing += [f"{req.name}.{n}" for n in ("page_size", "page_token") if n not in names]
            if resp is not None and "next_page_token" not in {f[0] for f in resp.fields}:
                missing.append(f"{resp.name}.next_page_token")
            if missing:
                ctx.emit("PB008", line, subject, f"List RPC {subject} lacks {', '.join(missing)}")
        for t, suffix in ((method.input_type.type, "Request"), (method.output_type.type, "Response")):
            short = t.lstrip(".").rsplit(".", 1)[-1]
            if (
                short not in (f"{method.name}{suffix}", f"{service}{method.name}{suffix}")
                and short != "Empty"
            ):
                ctx.emit(
                    "PB009",
                    line,
                    subject,
                    f"{subject} {suffix.lower()} type {t} is not named {method.name}{suffix}",
                )
        for t in dict.fromkeys((method.input_type.type, method.output_type.type)):
            others = sorted({u for u in uses[t] if u != subject})
            if t.lstrip(".") == "google.protobuf.Empty":
                ctx.emit("PB009", line, subject, f"{subject} uses google.protobuf.Empty")
            elif others:
                ctx.emit("PB009", line, subject, f"{subject} shares message {t} with {', '.join(others)}")
            elif method.input_type.type == method.output_type.type:
                ctx.emit("PB009", line, subject, f"{subject} uses {t} as both request and response")


def iter_fields(messages: list[ProtoMessage]) -> Iterator[tuple[str, str, int, str]]:
    for m in messages:
        for name, number, type_ in m.fields:
            yield m.name, name, number, type_
